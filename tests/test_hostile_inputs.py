"""Hostile input at every argument the fuzz of ``test_fuzz.py`` does not reach: reads of a
history in pages and columns, samples, frames, params, tags and runs, ``connect``'s
settings, and URLs whose passwords hold the characters a URL is made of.

Each property draws one argument from a wide strategy of hostile values (odd unicode with
surrogates and NUL, huge and negative ints, NaN, bools, numpy scalars and arrays,
``Decimal``, ``Fraction``, ``None``, nested containers…) and holds that the call works or
raises a documented trackplug error: never a raw ``TypeError``, ``ValueError``,
``AttributeError``, ``OverflowError`` or ``OSError``. A second property holds that no
password, however spelled, shows in a message, a warning, a traceback or a ``repr``.
"""

from __future__ import annotations

import math
import os
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trackplug
from trackplug import Resource, Tracker, TrackplugError
from trackplug._memory import MemoryBackend
from trackplug._urls import redact_url, secrets_of
from trackplug._validation import check_key, to_resource
from trackplug.testing import Capture, capture

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _huge() -> int:
    return 10**5000  # built, not a just(): Hypothesis prints a just()'s repr, and this has none


_ODD = [
    np.bool_(True),
    np.int64(-1),
    np.uint64(2**64 - 1),
    np.float32("nan"),
    np.longdouble("1e4000"),
    np.array(1.0),
    np.array([1.0, 2.0]),
    np.array([]),
    np.array(["a", "b"]),
    Decimal("nan"),
    Decimal("1e400"),
    Fraction(10**400, 3),
    Resource(None),  # type: ignore[arg-type]
    Resource(""),
    1j,
    object(),
    range(3),
    b"\x00",
    Path("."),
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(2**63 - 2, 2**80) | st.integers(-(2**80), -(2**63) + 1),
    st.floats(),
    st.text(),  # surrogates and NUL included
    st.text(st.sampled_from("\x00\ud800é\u212a/.:_ -@#?%"), max_size=6),
    st.text(min_size=251, max_size=300),
    st.sampled_from(["", "max", "min", "finished", "running", "loss", "r1", "train", "a/b"]),
    st.decimals(),
    st.fractions(),
    st.builds(_huge),
    st.integers(0, len(_ODD) - 1).map(_ODD.__getitem__),
)
#: Any value at all, containers of them included (lolpop's nested dicts, tuples of steps…).
hostile = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3),
    ),
    max_leaves=6,
)


class Item(Mapping[Any, Any]):
    """A mapping of one item whose key may be anything, unhashable too (a user's own
    mapping type may allow that)."""

    def __init__(self, key: Any, value: Any) -> None:
        self._key, self._value = key, value

    def __getitem__(self, key: Any) -> Any:
        if key is self._key:
            return self._value
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        return iter([self._key])

    def __len__(self) -> int:
        return 1


class Call(NamedTuple):
    """One public call with one argument hostile."""

    name: str
    run: Callable[[Tracker, Any], object]

    def __repr__(self) -> str:
        return self.name


def _consume(result: object) -> object:
    """A generator's errors come when it is read: read it."""
    return list(result) if isinstance(result, Iterator) else result


def _end_a_run(t: Tracker, status: Any) -> None:
    run = t.start_run("hostile")
    try:
        run.end(status)
    finally:
        run.end()


def _in_a_run(t: Tracker) -> Any:
    run = t.start_run("hostile")
    run.end()  # its counters work as well ended: the calls need no open run
    return run


TRACKER_CALLS = [
    Call("iter_history(h, key)", lambda t, h: t.iter_history(h, "loss")),
    Call("iter_history(r, h)", lambda t, h: t.iter_history("r1", h)),
    Call("iter_history(page_size=h)", lambda t, h: t.iter_history("r1", "loss", page_size=h)),
    Call("iter_history(since=h)", lambda t, h: t.iter_history("r1", "loss", since=h)),
    Call("history_columns(h, key)", lambda t, h: t.history_columns(h, "loss")),
    Call("history_columns(r, h)", lambda t, h: t.history_columns("r1", h)),
    Call("history_columns(numpy=h)", lambda t, h: t.history_columns("r1", "loss", numpy=h)),
    Call("history_columns(page_size=h)", lambda t, h: t.history_columns("r1", "loss", page_size=h)),
    Call("history_sampled(h, key, 8)", lambda t, h: t.history_sampled(h, "loss", 8)),
    Call("history_sampled(r, h, 8)", lambda t, h: t.history_sampled("r1", h, 8)),
    Call("history_sampled(r, key, h)", lambda t, h: t.history_sampled("r1", "loss", h)),
    Call("frame(h)", lambda t, h: t.frame(h)),
    Call("frame(keys=h)", lambda t, h: t.frame(keys=h)),
    Call("best(key, run_name=h)", lambda t, h: t.best("loss", run_name=h)),
    Call("log_params(r, h)", lambda t, h: t.log_params("p1", h)),
    Call("log_params(r, {k: h})", lambda t, h: t.log_params("p1", {"k": h})),
    Call("set_tags(r, h)", lambda t, h: t.set_tags("p1", h)),
    Call("set_tags(r, {k: h})", lambda t, h: t.set_tags("p1", {"k": h})),
    Call("params(h)", lambda t, h: t.params(h)),
    Call("tags(h)", lambda t, h: t.tags(h)),
    Call("start_run(h)", lambda t, h: t.start_run(h).end()),
    Call("start_run(n, params=h)", lambda t, h: t.start_run("n", params=h).end()),
    Call("start_run(n, tags=h)", lambda t, h: t.start_run("n", tags=h).end()),
    Call("run.end(h)", _end_a_run),
    Call("run.log_metric(k, 1, step=h)", lambda t, h: _in_a_run(t).log_metric("k", 1.0, step=h)),
    Call("run.log_metric(k, h)", lambda t, h: _in_a_run(t).log_metric("k", h)),
    Call("run.log_metrics(h)", lambda t, h: _in_a_run(t).log_metrics(h)),
    Call("run.log_metrics(m, step=h)", lambda t, h: _in_a_run(t).log_metrics({"k": 1}, h)),
    Call("runs(h)", lambda t, h: t.runs(h)),
    Call("runs(status=h)", lambda t, h: t.runs(status=h)),
    Call("runs(params=h)", lambda t, h: t.runs(params=h)),
    Call("log_prediction_metrics(r, [h])", lambda t, h: t.log_prediction_metrics("r2", [h])),
    Call("log_metrics(r, {split: {h: 1}})", lambda t, h: t.log_metrics("r2", {"t": Item(h, 1)})),
    Call("log_params(r, {h: 1})", lambda t, h: t.log_params("p1", Item(h, 1))),
    Call("set_tags(r, {h: v})", lambda t, h: t.set_tags("p1", Item(h, "v"))),
    Call("log_metrics(r, {h: 1}, perf_metric=h)", lambda t, h: t.log_metrics("r2", h, h)),
    Call("redact_url(h)", lambda t, h: trackplug.redact_url(h)),
]


def _settings_call(name: str) -> Call:
    return Call(f"connect(memory://, {name}=h)", lambda _, h: _connect_and_close(**{name: h}))


def _connect_and_close(**settings: Any) -> None:
    trackplug.connect("memory://", **settings).close()


CONNECT_CALLS = [
    _settings_call(name)
    for name in ("on_error", "outbox", "retry_interval", "flush_interval", "buffer_size")
]


def _check_only_trackplug_errors(call: Call, tracker: Tracker, value: Any) -> None:
    """The call works, or raises a trackplug error whose message can be shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _consume(call.run(tracker, value))
        except TrackplugError as error:
            message = str(error)
        else:
            return
    assert message.strip()


@pytest.fixture(scope="module")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    outbox = tmp_path_factory.mktemp("outbox") / "outbox.db"
    with trackplug.connect("memory://", outbox=str(outbox)) as t:
        t.log_metrics("r1", {"loss": 0.5, "train": {"f1": 0.25}}, perf_metric="f1", step=1)
        t.log_metric("r1", "loss", math.nan, step=2)
        t.start_run("n").end()
        yield t


@SETTINGS
@given(call=st.sampled_from(TRACKER_CALLS), value=hostile)
def test_every_argument_of_the_reads_runs_and_params_takes_anything(
    tracker: Tracker, call: Call, value: Any
) -> None:
    _check_only_trackplug_errors(call, tracker, value)


@SETTINGS
@given(call=st.sampled_from(CONNECT_CALLS), value=hostile)
def test_every_setting_of_connect_takes_anything(
    call: Call, value: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # an outbox named by the draw lands here, if anywhere
    _check_only_trackplug_errors(call, None, value)  # type: ignore[arg-type]


# Each defect the properties found, as an explicit case: each failed before its fix.
FOUND = [
    (TRACKER_CALLS, "frame(h)", np.array(1.0)),  # TypeError: iteration over a 0-d array
    (TRACKER_CALLS, "frame(keys=h)", True),  # TypeError: 'bool' object is not iterable
    (TRACKER_CALLS, "history_columns(numpy=h)", np.array([1, 2])),  # ValueError: truth
    (TRACKER_CALLS, "log_params(r, {k: h})", Fraction(10**400, 3)),  # OverflowError
    (TRACKER_CALLS, "log_prediction_metrics(r, [h])", Resource(None)),  # TypeError: __str__
    (TRACKER_CALLS, "start_run(n, params=h)", np.array([1, 2])),  # ValueError: `params or {}`
    (TRACKER_CALLS, "start_run(n, tags=h)", np.array([1, 2])),
    (TRACKER_CALLS, "runs(params=h)", np.array([1, 2])),
    (TRACKER_CALLS, "runs(status=h)", np.array(["a", "b"])),  # ValueError: truth of ==
    (TRACKER_CALLS, "run.end(h)", np.array(["a", "b"])),
    (TRACKER_CALLS, "redact_url(h)", True),  # AttributeError: "never raises"
    (TRACKER_CALLS, "redact_url(h)", [1]),  # TypeError: unhashable
    (CONNECT_CALLS, "connect(memory://, on_error=h)", ["memory://"]),  # AttributeError: .get
    (CONNECT_CALLS, "connect(memory://, on_error=h)", {1: "warn", "x": "warn"}),  # sorted()
    (CONNECT_CALLS, "connect(memory://, outbox=h)", True),  # TypeError: os.fspath
    (CONNECT_CALLS, "connect(memory://, outbox=h)", "."),  # ValueError: empty name
    (CONNECT_CALLS, "connect(memory://, outbox=h)", "x" * 300),  # OSError: name too long
    (CONNECT_CALLS, "connect(memory://, buffer_size=h)", None),  # TypeError: compared
]


@pytest.mark.parametrize(("calls", "name", "value"), FOUND, ids=[f[1] for f in FOUND])
def test_what_the_properties_found(
    calls: list[Call],
    name: str,
    value: Any,
    tracker: Tracker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (call,) = [call for call in calls if call.name == name]
    _check_only_trackplug_errors(call, tracker, value)


# -- the testing fixture's assertions --------------------------------------------------------

CAPTURE_CALLS = [
    Call("assert_latest(r, k, h)", lambda c, h: c.assert_latest("r1", "loss", h)),
    Call("assert_latest(at_least=h)", lambda c, h: c.assert_latest("r1", "loss", at_least=h)),
    Call("assert_latest(at_most=h)", lambda c, h: c.assert_latest("r1", "loss", at_most=h)),
    Call("assert_latest(h, k)", lambda c, h: c.assert_latest(h, "loss")),
    Call("assert_logged(r, h)", lambda c, h: c.assert_logged("r1", h)),
    Call("assert_logged(steps=h)", lambda c, h: c.assert_logged("r1", "loss", steps=h)),
    Call("assert_best(h, r)", lambda c, h: c.assert_best(h, "r1")),
    Call("assert_best(k, r, order=h)", lambda c, h: c.assert_best("loss", "r1", order=h)),
    Call("runs(status=h)", lambda c, h: c.runs(status=h)),
]


def _capture_a_connect(_: object, ignore: Any) -> None:
    with capture(ignore=ignore), trackplug.connect("memory://"):
        pass


@pytest.fixture
def captured() -> Iterator[Capture]:
    """A capture for one test (one capture at a time: not the module's)."""
    with capture() as c:
        with trackplug.connect("sqlite:///never-written.db") as t:
            t.log_metric("r1", "loss", 0.5, step=1)
            t.log_metric("r1", "loss", 0.25, step=2)
        yield c


def _check_a_failure_or_a_trackplug_error(call: Call, c: Capture, value: Any) -> None:
    """An assertion that fails says so (``AssertionError``); a bad argument is a trackplug
    error; nothing else escapes."""
    failure = ""
    try:
        _check_only_trackplug_errors(call, c, value)  # type: ignore[arg-type]
    except AssertionError as failed:
        failure = str(failed)
    assert failure == "" or failure.startswith(("expected ", "no metric ", "nothing was"))


@SETTINGS
@given(call=st.sampled_from(CAPTURE_CALLS), value=hostile)
def test_every_argument_of_the_testing_fixture_takes_anything(
    captured: Capture, call: Call, value: Any
) -> None:
    _check_a_failure_or_a_trackplug_error(call, captured, value)


@SETTINGS
@given(value=hostile)
def test_the_patterns_a_capture_ignores_take_anything(value: Any) -> None:
    _check_only_trackplug_errors(Call("capture(ignore=h)", _capture_a_connect), None, value)  # type: ignore[arg-type]


CAPTURE_FOUND = [
    ("assert_latest(at_least=h)", "0.5"),  # TypeError: '>=' between float and str
    ("assert_latest(r, k, h)", 10**400),  # OverflowError: the message's float(10**400)
    ("assert_latest(r, k, h)", np.array([0.25, 0.25])),  # ValueError: truth of an array
    ("assert_logged(steps=h)", [None, 1]),  # TypeError: sorted() of None and ints
    ("assert_logged(steps=h)", True),  # TypeError: set(True)
    ("capture(ignore=h)", 5),  # TypeError: tuple(5)
    ("capture(ignore=h)", [b"memory*"]),  # TypeError: fnmatch of bytes, at connect
]


@pytest.mark.parametrize(("name", "value"), CAPTURE_FOUND, ids=[f[0] for f in CAPTURE_FOUND])
def test_what_the_fixture_property_found(name: str, value: Any) -> None:
    if name == "capture(ignore=h)":
        _check_only_trackplug_errors(Call(name, _capture_a_connect), None, value)  # type: ignore[arg-type]
        return
    (call,) = [call for call in CAPTURE_CALLS if call.name == name]
    with capture() as c:
        with trackplug.connect("memory://") as t:
            t.log_metric("r1", "loss", 0.25, step=1)
        _check_a_failure_or_a_trackplug_error(call, c, value)


@pytest.mark.parametrize(
    ("backends", "options"),
    [
        ((MemoryBackend,), {}),  # TypeError: capabilities() missing 'self', from pluggy
        ((np.array([1, 2]),), {}),  # TypeError: unhashable, from the plugin manager
        ((MemoryBackend(), {}), {}),  # TypeError: unhashable
        ((MemoryBackend(),), {"urls": np.array(["a", "b"])}),  # ValueError: truth
        ((MemoryBackend(),), {"urls": [1]}),  # a URL that is no string
    ],
    ids=["a class", "an array", "a dict", "urls an array", "urls of ints"],
)
def test_tracker_refuses_what_is_not_a_backend_object(
    backends: tuple[object, ...], options: dict[str, Any]
) -> None:
    """``Tracker(backend, …)`` (tests, the contract suite, embedded use) let pluggy's and
    numpy's TypeError and ValueError out for an object that is no backend."""
    with pytest.raises(TrackplugError):
        Tracker(*backends, **options).close()


def test_a_run_step_is_checked_and_a_refused_call_moves_no_counter() -> None:
    """``run.log_metric(key, v, step=(1,))`` raised TypeError (``step + 1``) before any
    check, and a refused value moved the key's counter: the next point skipped a step."""
    with trackplug.connect("memory://") as t, t.start_run("n") as run:
        with pytest.raises(trackplug.InvalidTypeError, match="step"):
            run.log_metric("loss", 1.0, step=(1,))  # type: ignore[arg-type]
        with pytest.raises(trackplug.InvalidTypeError):
            run.log_metric("loss", "high")  # type: ignore[arg-type]
        run.log_metric("loss", 0.5)
        assert [p.step for p in t.history(run.id, "loss")] == [0]


def test_an_unknown_status_is_refused_not_an_empty_list() -> None:
    """``runs(status="finshed")`` listed nothing, silently, as if no run had finished."""
    with trackplug.connect("memory://") as t:
        t.start_run("n").end()
        with pytest.raises(trackplug.ValidationError, match=r"finshed.*running, finished"):
            t.runs(status="finshed")  # type: ignore[arg-type]
        assert [run.status for run in t.runs(status="finished")] == ["finished"]


@pytest.mark.parametrize("capturing", [False, True], ids=["connect", "connect-in-a-capture"])
def test_settings_out_of_range_are_refused_with_what_to_give(capturing: bool) -> None:
    """A flush interval of 0, NaN or infinity was taken, and failed later in the flusher
    thread (``Event.wait(inf)``: OverflowError) or spun it; ``on_error`` naming a URL
    not connected showed that URL's password. In a capture (``trackplug.testing``) the
    settings went unchecked: code passed its tests and failed without the capture."""
    for settings_, shown in [
        ({"flush_interval": 0}, "flush_interval 0 is invalid: give 0.001"),
        ({"flush_interval": math.inf}, "flush_interval inf is invalid"),
        ({"retry_interval": -1}, "retry_interval -1 is invalid"),
        ({"retry_interval": math.nan}, "retry_interval nan is invalid"),
        ({"buffer_size": 10, "max_buffer": 5}, "need buffer_size <= max_buffer"),
        ({"on_error": {"postgresql://u:s3cret@h/db": "warn"}}, "not connected: postgresql"),
    ]:
        with ExitStack() as stack:
            if capturing:
                stack.enter_context(capture())
            with pytest.raises(trackplug.ValidationError, match=shown) as error:
                _connect_and_close(**settings_)
        assert "s3cret" not in str(error.value)


# -- passwords made of a URL's own characters ---------------------------------------------

#: Found in no message by chance: whatever surrounds it, it must never show.
SECRET = "Zq7Secret"
special = st.text(st.sampled_from("@:/?#%[] +&=;'\"\\é"), max_size=4)
passwords = st.builds(lambda left, right: left + SECRET + right, special, special)
SCHEMES = ["postgresql", "mlflow+postgresql", "mlflow+http", "sqlite", "nosuch", "memory"]


def _every_text(call: Callable[[], object]) -> list[str]:
    """What a user may see of ``call``: its warnings, and its error with the whole chain."""
    texts: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as error:
            texts.append("".join(traceback.format_exception(error)))
            texts.extend(repr(arg) for arg in error.args)
        else:
            texts.append(repr(result))
            texts.append(str(getattr(result, "url", "")))
            close = getattr(result, "close", None)
            if close is not None:
                close()
    texts.extend(str(warning.message) for warning in caught)
    return texts


@settings(max_examples=60, deadline=None, database=None)
@given(scheme=st.sampled_from(SCHEMES), password=passwords)
def test_no_password_shows_whatever_characters_it_holds(scheme: str, password: str) -> None:
    """A password holding ``@ : / ? #`` unencoded cuts a URL's host part short; it was
    shown whole in ``connect``'s error ("'postgresql://u:p/ss@h/db' is not a valid
    URL…") and by ``redact_url``."""
    url = f"{scheme}://user:{password}@127.0.0.1:1/db?timeout=1"
    assert SECRET not in redact_url(url)
    assert all(SECRET not in shown for shown in secrets_of(url).values())
    for text in _every_text(lambda: trackplug.connect(url, probe_timeout=1)):
        assert SECRET not in text


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p/Zq7Secret@127.0.0.1:1/db",  # urlsplit: port 'p', no password
        "postgresql://u:1234/Zq7Secret@127.0.0.1:1/db",  # urlsplit: port 1234, host 'u'
        "postgresql://u:x@y/Zq7Secret@127.0.0.1:1/db",  # urlsplit: password 'x'
        "mlflow+http://u:p#Zq7Secret@127.0.0.1:1",
        "mlflow+http://u:p?Zq7Secret@127.0.0.1:1",
    ],
)
def test_a_password_that_breaks_the_host_part_is_hidden(url: str) -> None:
    assert SECRET not in redact_url(url)
    for text in _every_text(lambda: trackplug.connect(url, probe_timeout=1)):
        assert SECRET not in text


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///runs%00.db",  # ValueError: embedded null byte
        "postgresql://u:s3cret@127.0.0.1:1/d%00b",  # libpq read "d" on port 5432
        "mlflow+sqlite:///m%00.db",  # MLflow retried its engine for ~2 minutes
        "mlflow+sqlite:///m.db\x00",
        "memory://?x=%00",
    ],
)
def test_a_nul_in_a_url_is_refused_before_any_driver_sees_it(url: str) -> None:
    with pytest.raises(trackplug.ValidationError, match="NUL character") as error:
        trackplug.connect(url)
    assert "s3cret" not in str(error.value)


def test_a_lone_surrogate_in_a_url_is_refused() -> None:
    """``sqlite:///runs\ud800.db`` raised UnicodeEncodeError from the SQLite backend."""
    with pytest.raises(trackplug.ValidationError, match="lone surrogate"):
        trackplug.connect("sqlite:///runs\ud800.db")


def test_options_a_database_driver_cannot_read_are_a_validation_error(tmp_path: Path) -> None:
    """SQLAlchemy's ValueError ("String is not true/false: 'maybe'") left MLflow's store
    raw, for a file that is there (read by tables) and one that is not (MLflow's client)."""
    pytest.importorskip("trackplug_mlflow")
    path = tmp_path / "m.db"
    with trackplug.connect(f"mlflow+sqlite:///{path}") as t:
        t.log_metric("r", "loss", 1.0)
    for name in (path, tmp_path / "not-there.db"):
        with pytest.raises(trackplug.ValidationError, match=r"maybe.*check its path and options"):
            trackplug.connect(f"mlflow+sqlite:///{name}?check_same_thread=maybe")


_QUERY_NAMES = st.sampled_from(["timeout", "mode", "cache", "uri", "immutable", "x", ""])
_QUERY_VALUES = st.text(max_size=6) | st.sampled_from(["nan", "inf", "-1", "1e400", "%zz", "&"])
queries = st.lists(st.tuples(_QUERY_NAMES, _QUERY_VALUES), max_size=3).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
)


@settings(max_examples=80, deadline=None, database=None)
@given(
    base=st.sampled_from(
        ["sqlite:///q.db", "sqlite://", "memory://", "sqlite:///.", "SQLite:///Q"]
    ),
    mark=st.sampled_from(["?", "??", "#", ""]),
    query=queries,
)
def test_any_path_and_query_opens_or_is_a_trackplug_error(
    base: str, mark: str, query: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytest.importorskip("trackplug_sql")
    url = base.replace(":///", f":///{tmp_path_factory.getbasetemp()}/", 1) + mark + query
    _check_only_trackplug_errors(Call("connect", lambda _, u: _open_and_write(u)), None, url)  # type: ignore[arg-type]


def _open_and_write(url: str) -> None:
    with trackplug.connect(url) as t:
        t.log_metric("r", "loss", 1.0)
        t.latest("r")


def test_an_unparsable_url_says_to_percent_encode_the_password() -> None:
    with pytest.raises(trackplug.ValidationError, match=r"percent-encode .*quote") as error:
        trackplug.connect("postgresql://u:p/Zq7Secret@127.0.0.1:1/db")
    assert SECRET not in str(error.value)
    assert "Zq7" not in str(error.value)  # nor a piece of it (urlsplit's "port 'p/Zq7…'")


def test_the_password_a_driver_sees_is_a_secret_too() -> None:
    """``urlsplit`` (and a driver) reads ``u:pw@h/db?x=a@b`` as password ``pw``; redaction
    hides up to the last ``@``: both are scrubbed from a driver's message."""
    found = secrets_of("postgresql://u:pass1@h/db?x=a@b", min_password=4)
    assert found["pass1"] == "***"
    assert found[":pass1@"] == ":***@"


@pytest.mark.skipif(not os.environ.get("TRACKPLUG_TEST_POSTGRESQL_URL"), reason="no PostgreSQL")
def test_a_wrong_password_with_special_characters_is_hidden_by_postgresql() -> None:
    base = os.environ["TRACKPLUG_TEST_POSTGRESQL_URL"]
    host = base.partition("@")[2]
    url = f"postgresql://nosuchuser:a@b/{SECRET}#x@{host}"
    for text in _every_text(lambda: trackplug.connect(url, probe_timeout=2)):
        assert SECRET not in text


# -- the same inputs, the same reads, on every store ------------------------------------------


def _valid(check: Callable[[Any], object]) -> Callable[[Any], bool]:
    def accepted(value: Any) -> bool:
        try:
            check(value)
        except TrackplugError:
            return False
        return True

    return accepted


_KEY_CHARS = st.characters(categories=["L", "N"]) | st.sampled_from("_.- :/K\u212a\ufb01")
diff_keys = st.text(_KEY_CHARS, min_size=1, max_size=8).filter(_valid(check_key))
diff_ids = st.text(min_size=1, max_size=12).filter(_valid(to_resource))
diff_values = st.one_of(
    st.floats(),
    st.sampled_from([math.nan, -0.0, 0.0, math.inf, -math.inf, 5e-324, np.float32(0.1)]),
    st.integers(-(10**20), 10**20),
)
diff_steps = st.one_of(st.integers(-3, 3), st.sampled_from([-(2**63), 2**63 - 1]))
diff_stamps = st.one_of(st.integers(0, 3), st.just(2**63 - 1))  # never None: "now" differs


class Write(NamedTuple):
    """One write, to a resource slot (0-2) the test maps to ids of its own."""

    name: str
    run: Callable[[Tracker, list[str]], object]

    def __repr__(self) -> str:
        return self.name


def _write(name: str, call: Callable[..., object], *args: st.SearchStrategy[Any]) -> Any:
    def build(*drawn: Any) -> Write:
        shown = ", ".join(_shown(value) for value in drawn)
        return Write(f"{name}({shown})", lambda t, ids: call(t, ids, *drawn))

    return st.builds(build, *args)


def _shown(value: object) -> str:
    return repr(value)[:60]


slots = st.integers(0, 2)
WRITES = st.one_of(
    _write(
        "log_metric",
        lambda t, ids, r, k, v, s, ts: t.log_metric(ids[r], k, v, step=s, timestamp=ts),
        slots,
        diff_keys,
        diff_values,
        diff_steps,
        diff_stamps,
    ),
    _write(
        "log_metrics",
        lambda t, ids, r, m, p, s, ts: t.log_metrics(ids[r], m, p, step=s, timestamp=ts),
        slots,
        st.dictionaries(
            st.sampled_from(["train", "valid", "f1", "loss"]),
            diff_values | st.dictionaries(st.sampled_from(["f1", "acc"]), diff_values),
            max_size=3,
        ),
        st.sampled_from([None, "f1", "acc"]),
        diff_steps,
        diff_stamps,
    ),
    _write(
        "log_points",
        lambda t, ids, r, rows: t.log_points(ids[r], rows),
        slots,
        st.lists(st.tuples(diff_keys, diff_values, diff_steps, diff_stamps), max_size=4),
    ),
    _write("copy_metrics", lambda t, ids, a, b: t.copy_metrics(ids[a], ids[b]), slots, slots),
    _write(
        "log_prediction_metrics",
        lambda t, ids, r, p, ts: t.log_prediction_metrics(ids[r], p, timestamp=ts),
        slots,
        st.lists(st.floats(), max_size=5) | st.lists(st.sampled_from(["a", "b", "é"]), max_size=5),
        diff_stamps,
    ),
)


def _outcome(write: Write, tracker: Tracker, ids: list[str]) -> str:
    try:
        write.run(tracker, ids)
    except TrackplugError as error:
        return type(error).__name__
    return "ok"


def _bits(values: Any) -> list[str]:
    return [float(v).hex() if v == v else "nan" for v in values]  # -0.0 and NaN exact


def _reads(tracker: Tracker, ids: list[str]) -> object:
    """Everything a user can read of ``ids``, comparable exactly."""
    found: dict[str, object] = {"resources": [rid for rid in tracker.resources() if rid in ids]}
    keys = sorted({key for rid in ids for key in tracker.latest(rid)})
    for rid in ids:
        latest = tracker.latest(rid)
        found[rid] = (list(latest), _bits(latest.values()), repr(tracker.perf(rid)))
        for key in latest:
            history = tracker.history(rid, key)
            columns = tracker.history_columns(rid, key)
            assert list(columns.steps) == [p.step for p in history]
            assert _bits(columns.values) == _bits(p.value for p in history)
            last = history[-1]
            found[f"{rid}/{key}"] = (
                [(p.step, p.timestamp, *_bits([p.value])) for p in history],
                [p.step for p in tracker.history_sampled(rid, key, 4)],
                len(list(tracker.iter_history(rid, key, page_size=2, since=last[2:]))),
            )
    for key in keys:
        for order in ("max", "min"):
            ranked = [(rid, *_bits([v])) for rid, v in tracker.best(key, order, 10**6)]
            found[f"best {key} {order}"] = [row for row in ranked if row[0] in ids]
    return found


DIFF_PG = "TRACKPLUG_TEST_POSTGRESQL_URL"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Tracker]]:
    """memory://, a SQLite file, SQLite in memory, and PostgreSQL when given."""
    pytest.importorskip("trackplug_sql")
    urls = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path_factory.mktemp('diff') / 'diff.db'}",
        "sqlite-memory": "sqlite://",
    }
    if os.environ.get(DIFF_PG):
        urls["postgresql"] = os.environ[DIFF_PG]
    outbox = tmp_path_factory.mktemp("outbox") / "outbox.db"
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(trackplug.connect(url, outbox=str(outbox)))
            for name, url in urls.items()
        }


@settings(max_examples=40, deadline=None, database=None)
@given(
    writes=st.lists(WRITES, min_size=1, max_size=8),
    names=st.lists(diff_ids, min_size=3, max_size=3, unique=True),
)
def test_the_same_writes_read_the_same_on_every_store(
    stores: dict[str, Tracker], writes: list[Write], names: list[str]
) -> None:
    """A differential property: odd unicode ids and keys (lookalikes included), NaN, -0.0,
    ±inf, subnormals, steps at both ends of 64 bits, duplicates and copies give the same
    outcome per call and the same reads (bit-exact) on every store."""
    example = uuid.uuid4().hex[:8]  # the stores are shared: each example's ids are its own
    ids = [f"{example}{name}" for name in names]
    outcomes = {name: [_outcome(w, t, ids) for w in writes] for name, t in stores.items()}
    reads = {name: _reads(t, ids) for name, t in stores.items()}
    first = next(iter(stores))
    for name in stores:
        assert outcomes[name] == outcomes[first], name
        assert reads[name] == reads[first], name
