"""A third party's backend that leaks: on the hook it is told to fail, it raises an
exception carrying passwords in the form it is told (message, arguments, cause, context,
notes, a group, an attribute, its own ``__str__``…). Found through a hand-made entry point,
as any installed plugin is; the facade alone must keep the passwords from the user."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from trackplug import Capabilities, MetricPoint, PerfRecord, Resource
from trackplug.plugin import Batch, MemoryBackend, ParamValue, Register, hookimpl, rank


class LeakError(Exception):
    """The plugin's own error type: a user can still catch it after scrubbing."""


class Quoting(LeakError):
    """Its text comes from an object it holds, not from its arguments."""

    def __init__(self, target: object) -> None:
        super().__init__()
        self._target = target

    def __str__(self) -> str:
        return f"cannot reach {self._target}"


class Target:
    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _group(text: str) -> BaseException:
    return ExceptionGroup("several failures", [LeakError(text), ValueError(text)])


def _caused(text: str) -> BaseException:
    error = LeakError("the request failed")
    error.__cause__ = OSError(111, text)
    return error


def _in_context(text: str) -> BaseException:
    try:
        raise ConnectionError(text)
    except ConnectionError:
        try:
            raise LeakError("while handling another error")
        except LeakError as error:
            return error


def _noted(text: str) -> BaseException:
    error = LeakError("failed")
    error.add_note(f"the store was {text}")
    return error


def _attribute(text: str) -> BaseException:
    error = LeakError("failed")
    error.url = text  # type: ignore[attr-defined]
    return error


#: How an exception can carry ``text`` (a URL or a password), each a factory of one.
FORMS: dict[str, Callable[[str], BaseException]] = {
    "message": lambda text: LeakError(f"cannot reach {text}"),
    "args": lambda text: LeakError("failed", text, 5),
    "nested args": lambda text: LeakError("failed", {"url": text, "tries": [text, 3]}),
    "bytes": lambda text: LeakError("failed", text.encode()),
    "cause": _caused,
    "context": _in_context,
    "notes": _noted,
    "group": _group,
    "attribute": _attribute,
    "own str": lambda text: Quoting(Target(text)),
    "os error": lambda text: FileNotFoundError(2, "No such file", text),
}

Hook = Literal[
    "open",
    "capabilities",
    "log_metric",
    "log_metrics",
    "copy_metrics",
    "log_prediction_metrics",
    "get_metric",
    "history",
    "latest",
    "resources",
    "get_perf",
    "best",
    "log_params",
    "get_params",
    "set_tags",
    "get_tags",
    "tagged",
    "flush",
    "close",
]


class LeakyBackend(MemoryBackend):
    """The reference backend, failing on one hook of the store at one URL."""

    #: ``(url, hook, exception)``: the backend opened on ``url`` raises ``exception`` in
    #: ``hook``; None: nothing fails.
    failure: ClassVar[tuple[str, str, BaseException] | None] = None

    def __init__(self, url: str) -> None:
        super().__init__("memory://")
        self.own_url = url
        self._fail("open")

    def _fail(self, hook: str) -> None:
        if self.failure is not None and self.failure[:2] == (self.own_url, hook):
            raise self.failure[2]

    @hookimpl
    def capabilities(self) -> Capabilities:
        self._fail("capabilities")
        return super().capabilities()

    @hookimpl
    def log_metric(self, batch: Batch) -> None:
        self._fail("log_metric")
        super().log_metric(batch)

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        self._fail("log_metrics")
        super().log_metrics(resource, points, perf)

    @hookimpl
    def copy_metrics(self, source: Resource, target: Resource) -> object:
        self._fail("copy_metrics")
        return NotImplemented

    @hookimpl
    def log_prediction_metrics(self, job: Resource, points: Sequence[MetricPoint]) -> object:
        self._fail("log_prediction_metrics")
        return NotImplemented

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> float | None:
        self._fail("get_metric")
        return super().get_metric(resource, key)

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        self._fail("history")
        return super().history(resource, key)

    @hookimpl
    def latest(self, resource: Resource) -> dict[str, float]:
        self._fail("latest")
        return super().latest(resource)

    @hookimpl
    def resources(self) -> list[str]:
        self._fail("resources")
        return super().resources()

    @hookimpl
    def get_perf(self, resource: Resource) -> PerfRecord | None:
        self._fail("get_perf")
        return super().get_perf(resource)

    @hookimpl
    def best(self, key: str, order: Literal["max", "min"], limit: int) -> list[tuple[str, float]]:
        self._fail("best")
        latest = ((rid, self.get_metric(Resource(rid), key)) for rid in self.resources())
        return rank(((rid, v) for rid, v in latest if v is not None), order, limit)

    @hookimpl
    def log_params(self, resource: Resource, params: Mapping[str, ParamValue]) -> None:
        self._fail("log_params")
        super().log_params(resource, params)

    @hookimpl
    def get_params(self, resource: Resource) -> dict[str, ParamValue]:
        self._fail("get_params")
        return super().get_params(resource)

    @hookimpl
    def set_tags(self, resource: Resource, tags: Mapping[str, str]) -> None:
        self._fail("set_tags")
        super().set_tags(resource, tags)

    @hookimpl
    def get_tags(self, resource: Resource) -> dict[str, str]:
        self._fail("get_tags")
        return super().get_tags(resource)

    @hookimpl
    def tagged(self, key: str, value: str | None) -> list[str]:
        self._fail("tagged")
        return super().tagged(key, value)

    @hookimpl
    def flush(self) -> None:
        self._fail("flush")

    @hookimpl
    def close(self) -> None:
        self._fail("close")


class ReturnsSecret(MemoryBackend):
    """Answers a read with a value of the wrong type that holds ``secret``."""

    secret: ClassVar[str] = ""

    @hookimpl
    def latest(self, resource: Resource) -> Any:
        return [self.secret]

    @hookimpl
    def get_metric(self, resource: Resource, key: str) -> Any:
        return self.secret


def _open_leaky(url: str) -> LeakyBackend:
    return LeakyBackend(url)


def _open_returning(url: str) -> ReturnsSecret:
    return ReturnsSecret()


class Leaky:
    @staticmethod
    @hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("leaky", _open_leaky)
        register("returns", _open_returning)
