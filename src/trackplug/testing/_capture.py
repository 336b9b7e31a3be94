"""The capture: one in-memory store that every tracker opened while it is on writes to."""

from __future__ import annotations

import contextlib
import fnmatch
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from .. import (
    ClosedError,
    InvalidTypeError,
    MetricPoint,
    PerfRecord,
    Registry,
    Tracker,
    TrackplugError,
    UnknownBackendError,
    redact_url,
    redirect,
)
from .._memory import MemoryBackend
from .._outbox import Outbox
from .._registry import EXTRAS
from .._urls import scheme_of
from .._validation import several, short_repr
from ..redirect import OpenURLs
from ._assertions import MetricAssertions

if TYPE_CHECKING:
    from .._model import ParamValue
    from .._runs import Runs, RunStatus

__all__ = ["CAPTURE_URL", "Capture", "capture"]

#: The capture's name among a tracker's destinations (with ``passthrough``) and in reprs.
CAPTURE_URL = "memory://trackplug-capture"


class _NoOutbox(Outbox):
    """A captured tracker's outbox: always empty, never a file. Its one backend is in
    memory and raises (it cannot fail), so nothing is ever spooled; and the user's own
    outbox must not be used, or its waiting writes would be replayed into the capture."""

    def __init__(self) -> None:
        super().__init__("<no outbox: metrics are captured>")

    def pending(self, url: str | None = None) -> int:
        return 0

    def append(self, url: str, write: object) -> None:
        raise TrackplugError("a captured tracker has no outbox")  # unreachable: see above


class Capture(MetricAssertions):
    """Every metric logged by the trackers opened while this capture is installed.

    Reads are the tracker's own (:meth:`history`, :meth:`latest`, :meth:`get_metric`,
    :meth:`perf`, :meth:`resources`, :meth:`best`); each first makes every captured tracker
    send what it buffers, so a test reads what the code logged, wherever the code's
    tracker is. The assertions of :class:`MetricAssertions` say what was logged when they
    fail.

    :param passthrough: also write to the URLs the code names, opened for real (an
        unreachable one fails as it would without the capture); the code reads from them.
    :param ignore: URL patterns (``fnmatch``: ``"mlflow+http://*"``): a ``connect()``
        naming a matching URL is left alone, opened for real and not captured.
    """

    def __init__(self, *, passthrough: bool = False, ignore: Sequence[str] = ()) -> None:
        # one pattern, or several: a str is one, not a sequence of 1-char patterns
        patterns = several(ignore, "ignore", "URL patterns")
        if not all(isinstance(pattern, str) for pattern in patterns):
            raise InvalidTypeError(
                f"ignore {short_repr(ignore)} is invalid: give URL patterns (str), e.g. "
                "'mlflow+http://*'"
            )
        self.passthrough = passthrough
        self.ignore: tuple[str, ...] = tuple(patterns)  # type: ignore[arg-type]
        self._store = MemoryBackend(CAPTURE_URL)
        self._reader = self._captured_tracker(CAPTURE_URL)
        self._opened: list[Tracker] = []
        self._connections: list[list[str]] = []
        self._lock = threading.Lock()  # code under test connects from any thread
        self._closed = False

    def __repr__(self) -> str:
        return f"<Capture of {len(self._opened)} trackers>"

    @property
    def connections(self) -> list[list[str]]:
        """The URLs of every ``connect()`` while capturing, in order, passwords redacted."""
        with self._lock:
            return [list(urls) for urls in self._connections]

    # -- the redirect: connect() asks this -------------------------------------------------

    def connect(
        self, urls: list[str], open_urls: OpenURLs, registry: Registry | None = None
    ) -> Tracker:
        """The tracker for ``connect(*urls)``: on the capture's store (and, with
        ``passthrough``, on the URLs too), or just on the URLs if one is ignored."""
        if registry is not None:
            for url in urls:
                _check_served(registry, url)
        with self._lock:  # held while opening, so close() finds every tracker made here
            if not self._closed:
                self._connections.append([redact_url(url) for url in urls])
                if not self._ignores(urls):
                    tracker = (
                        open_urls((CAPTURE_URL, self._store))
                        if self.passthrough
                        else self._captured_tracker(urls[0])
                    )
                    self._opened.append(tracker)
                    return tracker
        return open_urls()  # ignored, or the capture ended meanwhile: as without it

    def _ignores(self, urls: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(url, pattern) for url in urls for pattern in self.ignore)

    def _captured_tracker(self, url: str) -> Tracker:
        """A tracker on the store alone, named ``url`` (the code sees its own URL)."""
        return Tracker(self._store, urls=[url], on_error="raise", outbox=_NoOutbox())

    # -- reads: the tracker's own; a read the tracker gains is one line more ----------------

    def _tracker(self) -> Tracker:
        """The store's reader, once every captured tracker has sent what it buffers."""
        if self._closed:
            raise ClosedError(
                "this capture has ended (with its test or its with block), and its metrics "
                "with it: read them before"
            )
        with self._lock:
            opened = list(self._opened)
        for tracker in opened:
            with contextlib.suppress(ClosedError):  # closed: it sent everything then
                tracker.flush()
        return self._reader

    def history(self, resource: object, key: str) -> list[MetricPoint]:
        """Every point of ``key``, ordered by ``(step, timestamp, value)``."""
        return self._tracker().history(resource, key)

    def latest(self, resource: object) -> dict[str, float]:
        """``{key: latest value}`` for every key of ``resource``, sorted by key."""
        return self._tracker().latest(resource)

    def get_metric(self, resource: object, key: str) -> float | None:
        """The latest value of ``key`` (greatest ``(step, timestamp, value)``), or None."""
        return self._tracker().get_metric(resource, key)

    def perf(self, resource: object) -> PerfRecord | None:
        """The performance record that ``log_metrics(..., perf_metric=...)`` last set."""
        return self._tracker().perf(resource)

    def resources(self) -> list[str]:
        """The ids of every resource that has metrics, sorted."""
        return self._tracker().resources()

    def best(
        self, key: str, order: Literal["max", "min"] = "max", limit: int = 1
    ) -> list[tuple[str, float]]:
        """Up to ``limit`` ``(resource id, latest value of key)``, best first."""
        return self._tracker().best(key, order, limit)

    def params(self, resource: object) -> dict[str, ParamValue]:
        """``{key: value}`` of every param logged for ``resource`` (a run's id too), sorted."""
        return self._tracker().params(resource)

    def tags(self, resource: object) -> dict[str, str]:
        """``{key: value}`` of every tag the code set on ``resource``, sorted."""
        return self._tracker().tags(resource)

    def runs(
        self,
        name: str | None = None,
        *,
        status: RunStatus | None = None,
        params: Mapping[str, ParamValue] | None = None,
    ) -> Runs:
        """Every run the code started (of ``name``, with ``status``, whose params include
        ``params``), oldest first, with its params, tags and latest metrics."""
        return self._tracker().runs(name, status=status, params=params)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop capturing, then close every tracker opened meanwhile (all of them, even
        if one fails: the first error is raised after). The captured data goes too."""
        redirect.uninstall(self)
        with self._lock:
            self._closed = True
            trackers = [*self._opened, self._reader]
        errors: list[Exception] = []
        for tracker in trackers:
            try:
                tracker.close()
            except Exception as exc:  # the others are closed all the same
                errors.append(exc)
        if errors:
            raise errors[0]


def _check_served(registry: Registry, url: str) -> None:
    """Fail for ``url`` as ``connect()`` would without the capture — a malformed URL, a
    scheme nothing serves (a typo) — except for a backend of trackplug's own that is not
    installed: a test environment may leave out trackplug-mlflow (mlflow is heavy)."""
    try:
        registry.lookup(url)
    except UnknownBackendError:
        if scheme_of(url).partition("+")[0] not in EXTRAS:
            raise


@contextlib.contextmanager
def capture(*, passthrough: bool = False, ignore: Sequence[str] = ()) -> Iterator[Capture]:
    """Capture every metric logged in the block (see :class:`Capture` for the options);
    at its end, every tracker opened in it is closed."""
    captured = Capture(passthrough=passthrough, ignore=ignore)
    try:
        redirect.install(captured)
        yield captured
    finally:
        captured.close()
