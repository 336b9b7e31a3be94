"""A third party's backend that leaks passwords: whatever any of its hooks raises (or its
factory), the error the user sees, printed whole, holds no password of any URL the tracker
was opened with, primary or secondary, and the plugin's own exception types stay
reachable. The rule lives in one place, the facade's calls into a backend
(``trackplug._hooks.BackendHooks``, and opening in ``trackplug._opening``)."""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leaky_plugin import FORMS, LeakError, LeakyBackend, ReturnsSecret

import trackplug
from trackplug import BackendError, Registry, Tracker

REGISTRY = Registry([EntryPoint("leaky", "leaky_plugin:Leaky", "trackplug")])

#: Each hook, and what a user does that reaches it on a tracker ``t``.
WRITES: dict[str, Callable[[Tracker], object]] = {
    "log_metric": lambda t: (t.log_metric("r", "loss", 0.5), t.flush()),
    "log_metrics": lambda t: (t.log_metrics("r", {"train": {"f1": 0.5}}, "f1"), t.flush()),
    "copy_metrics": lambda t: (t.copy_metrics("seed", "r2"), t.flush()),
    "log_prediction_metrics": lambda t: (t.log_prediction_metrics("job", [1.0, 2.0]), t.flush()),
    "log_params": lambda t: t.log_params("r", {"lr": 0.1}),
    "set_tags": lambda t: t.set_tags("r", {"team": "a"}),
    "flush": lambda t: t.flush(),
    "close": lambda t: t.close(),
}
READS: dict[str, Callable[[Tracker], object]] = {
    "get_metric": lambda t: t.get_metric("seed", "loss"),
    "history": lambda t: t.history("seed", "loss"),
    "latest": lambda t: t.latest("seed"),
    "resources": lambda t: t.resources(),
    "get_perf": lambda t: t.perf("seed"),
    "best": lambda t: t.best("loss"),
    "get_params": lambda t: t.params("seed"),
    "get_tags": lambda t: t.tags("seed"),
    "tagged": lambda t: t.runs(),
}
OPENING = ("open", "capabilities")
passwords = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=6, max_size=16
)


def leaky_urls(first: str, second: str) -> tuple[str, str]:
    return (
        f"leaky://ann:{quote(first, safe='')}@primary.example/db",
        f"leaky://bob:{quote(second, safe='')}@secondary.example/db",
    )


def printed(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def chain(error: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from ``error``, as a traceback prints them."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop()
        if id(exc) not in seen:
            seen.add(id(exc))
            yield exc
            todo.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
            todo.extend(getattr(exc, "exceptions", ()))


def everything_shown(error: BaseException) -> str:
    """The printed traceback, and every argument, attribute and note of the chain. Not the
    source lines the traceback quotes: they are code, read from files, and a password that
    happens to be a piece of them (Hypothesis tries the code's own constants: ``failur``
    of ``raise self.failure[2]``) leaks nothing."""
    code = {
        frame.line.strip()
        for exc in chain(error)
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.line
    }
    lines = printed(error).splitlines(keepends=True)
    parts = ["".join(line for line in lines if line.strip() not in code)]
    for exc in chain(error):
        parts += [repr(exc.args), repr(vars(exc)), repr(getattr(exc, "__notes__", []))]
    return "\n".join(parts)


def secrets(first: str, second: str) -> list[str]:
    urls = leaky_urls(first, second)
    return [first, second, quote(first, safe=""), quote(second, safe=""), *urls]


@pytest.fixture(autouse=True)
def no_failure() -> Iterator[None]:
    LeakyBackend.failure = None
    yield
    LeakyBackend.failure = None


def seeded(urls: tuple[str, str]) -> Tracker:
    tracker = trackplug.connect(*urls, registry=REGISTRY, on_error="raise", flush_interval=3600)
    tracker.log_metric("seed", "loss", 1.0)
    tracker.log_params("seed", {"lr": 0.1})
    tracker.flush()
    return tracker


def raised(action: Callable[[], object]) -> BaseException:
    """What ``action`` raises, whatever its type (the leaky plugin chooses it)."""
    try:
        action()
    except BaseException as exc:
        return exc
    pytest.fail("nothing was raised")


def what_the_user_sees(hook: str, urls: tuple[str, str]) -> BaseException:
    """The exception a user gets when the failure is armed (LeakyBackend.failure)."""
    failing = LeakyBackend.failure
    LeakyBackend.failure = None
    if hook in OPENING:
        LeakyBackend.failure = failing
        return raised(lambda: trackplug.connect(*urls, registry=REGISTRY, on_error="raise"))
    tracker = seeded(urls)
    LeakyBackend.failure = failing
    operation = {**WRITES, **READS}[hook]
    try:
        return raised(lambda: operation(tracker))
    finally:
        LeakyBackend.failure = None
        tracker.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hook=st.sampled_from([*OPENING, *WRITES, *READS]),
    form=st.sampled_from(sorted(FORMS)),
    shown=st.sampled_from(["url", "password", "encoded password", "both urls"]),
    secondary=st.booleans(),
    first=passwords,
    second=passwords,
)
def test_no_exception_from_a_third_party_backend_shows_a_password(
    hook: str, form: str, shown: str, secondary: bool, first: str, second: str
) -> None:
    urls = leaky_urls(first, second)
    failing = urls[1] if secondary and hook not in READS else urls[0]  # reads: the primary
    text = {
        "url": failing,
        "password": first if failing == urls[0] else second,
        "encoded password": quote(first if failing == urls[0] else second, safe=""),
        "both urls": f"{urls[0]} then {urls[1]}",
    }[shown]
    LeakyBackend.failure = (failing, hook, FORMS[form](text))
    error = what_the_user_sees(hook, urls)
    seen = everything_shown(error)
    for secret in secrets(first, second):
        assert secret not in seen, f"{hook}/{form}/{shown}: {secret!r} shown"
    leaked_type = type(FORMS[form]("x"))
    assert any(isinstance(exc, leaked_type) for exc in chain(error)), "the type is lost"


def test_the_scrubbing_happens_in_the_facade_not_in_the_plugin() -> None:
    """Without the facade the plugin's exception does hold the password: the test above
    proves the facade's work, not a harmless plugin."""
    url = leaky_urls("hunter2-secret", "other-secret")[0]
    LeakyBackend.failure = (url, "history", FORMS["cause"](url))
    with pytest.raises(LeakError) as raw:
        LeakyBackend(url).history(trackplug.Resource("r"), "loss")
    assert "hunter2-secret" in printed(raw.value)


def test_a_secondary_that_spools_warns_without_a_password(tmp_path: object) -> None:
    first, second = "primary-pw-1", "secondary-pw-2"
    urls = leaky_urls(first, second)
    LeakyBackend.failure = (urls[1], "log_metric", FORMS["message"](f"{urls[0]} {urls[1]}"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with trackplug.connect(
            *urls, registry=REGISTRY, outbox=f"{tmp_path}/outbox.db", flush_interval=3600
        ) as tracker:
            tracker.log_metric("r", "loss", 0.5)
            tracker.flush()
        LeakyBackend.failure = None
    messages = " ".join(str(w.message) for w in caught)
    assert "outbox" in messages
    assert first not in messages
    assert second not in messages


def test_a_wrong_answer_holding_a_password_is_refused_without_it() -> None:
    url = "returns://ann:hunter2-secret@primary.example/db"
    ReturnsSecret.secret = url
    with trackplug.connect(url, registry=REGISTRY) as tracker:
        for read in (lambda: tracker.latest("r"), lambda: tracker.get_metric("r", "loss")):
            with pytest.raises(BackendError) as caught:
                read()
            assert "hunter2-secret" not in everything_shown(caught.value)
