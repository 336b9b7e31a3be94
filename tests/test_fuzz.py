"""Every public method, on every backend, fed hostile input: each call either works or raises
a trackplug error (``ValidationError``, ``InvalidTypeError``, ``UnsupportedValueError``,
``BackendError``…), never a raw ``TypeError``, ``AttributeError``, ``ValueError`` or
``OverflowError``, and a call that raises leaves the store exactly as it was.

Arguments are drawn valid most of the time and hostile otherwise (unhashable keys, a
``None`` resource, ints of 5,000 digits, steps past 64 bits, ``numpy.longdouble("1e4000")``,
malformed rows, colliding flattened names…), so calls reach deep before they fail.

Profiles: fast by default (a few hundred calls per backend, for CI); thorough with
``TRACKPLUG_FUZZ=thorough``: at least 10,000 calls per backend (the test checks the count).

What a call costs is mostly the snapshot that proves a failed call changed nothing, and a
snapshot reads every point of every series. Two things keep that affordable:

- a snapshot is taken again only after a call that succeeded and may have written: a read,
  or a call that failed (and so changed nothing, which is what is checked), leaves the last
  one true;
- each example on MLflow starts on an empty store (an experiment of its own), so a
  snapshot reads one example's points, not every point of the run so far: a request to
  MLflow costs milliseconds, and on a store grown over 10,000 calls the snapshots alone
  took hours.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import trackplug
from trackplug import MetricPoint, PerfRecord, Resource, Tracker, TrackplugError

THOROUGH = os.environ.get("TRACKPLUG_FUZZ", "").lower() == "thorough"
CALLS_PER_EXAMPLE = 25
#: Examples per backend: thorough makes at least 10,000 calls on each.
EXAMPLES = {"fast": 16, "thorough": 10_000 // CALLS_PER_EXAMPLE + 20}
MLFLOW_EXAMPLES = {"fast": 4, "thorough": 10_000 // CALLS_PER_EXAMPLE + 20}
PG_ENV = "TRACKPLUG_TEST_POSTGRESQL_URL"
#: A running ``mlflow server`` (``http://host:port``) to fuzz as well; none by default.
SERVER_ENV = "TRACKPLUG_FUZZ_MLFLOW_SERVER"
#: Stands for a new name per example: an MLflow store that starts empty each time.
FRESH = "fuzz-example"


# -- hostile values ---------------------------------------------------------------------------


class Raising:
    """An object whose every conversion fails."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __float__(self) -> float:
        raise RuntimeError("no float")


_HOSTILE_VALUES = [
    None,
    True,
    np.bool_(False),
    [],
    {},
    set(),
    (),
    b"bytes",
    "",
    "loss\n",
    "a/../b",
    "/abs",
    "x" * 251,
    "\x00",
    "\ud800",
    10**400,
    -(10**400),
    10**5000,
    2**63,
    -(2**63) - 1,
    1.5,
    math.nan,
    math.inf,
    np.longdouble("1e4000"),
    np.float32("nan"),
    np.int64(-1),
    np.array([1.0, 2.0]),
    np.array(1.0),
    Fraction(10**400, 3),
    Decimal("1e400"),
    1j,
    object(),
    Raising(),
    SimpleNamespace(id=None),
    SimpleNamespace(id=10**5000),
    Resource(None),  # type: ignore[arg-type]
    Resource(""),
    MetricPoint("loss", 1.0, 0, 0),
    PerfRecord("loss", 10**400),  # type: ignore[arg-type]
    ("r1",),
    ("r1", "loss"),
    ("loss", 1.0, 0),
    ("loss", 1.0, 0, 0, 0),
    "abc",
]


def _hostile(index: int) -> object:
    return _HOSTILE_VALUES[index]


# Drawn by index: Hypothesis describes a strategy by its elements' repr, which an int of
# 5,000 digits does not have.
HOSTILE = st.integers(0, len(_HOSTILE_VALUES) - 1).map(_hostile)


def sometimes_hostile(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``valid``, a fifth of the time hostile."""
    return st.one_of(valid, valid, valid, valid, HOSTILE)


resources = sometimes_hostile(
    st.sampled_from(["r1", "r2", ("r1", None), SimpleNamespace(id="r2"), Resource("r3"), 7])
)
keys = sometimes_hostile(st.sampled_from(["loss", "acc", "train_f1", "a/b", "x.y"]))
values = sometimes_hostile(
    st.one_of(
        st.floats(),
        st.integers(-(10**20), 10**20),
        st.sampled_from([np.float32(0.5), np.int16(3), np.float64(-0.0), Fraction(1, 3)]),
    )
)
steps = sometimes_hostile(
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([np.int64(5), np.uint8(2)]))
)
timestamps = sometimes_hostile(st.one_of(st.none(), st.integers(0, 2**63 - 1)))


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


names = keys.filter(_hashable)  # what a dict can have as keys
flat_metrics = st.dictionaries(names, values, max_size=4)
nested_metrics = st.dictionaries(
    st.sampled_from(["train", "valid", "test"]), flat_metrics, max_size=3
)
metrics = sometimes_hostile(
    st.one_of(
        flat_metrics,
        nested_metrics,
        st.just({"train_f1": 0.1, "train": {"f1": 0.2}}),  # two names, one key
        st.dictionaries(names, st.one_of(values, flat_metrics), max_size=3),
    )
)
perf_metrics = sometimes_hostile(st.sampled_from([None, "f1", "loss", "acc"]))
rows = st.one_of(
    st.builds(MetricPoint, keys, values, steps, st.integers(0, 2**40)),
    st.tuples(keys, values, steps, timestamps),
    HOSTILE,
)
points = sometimes_hostile(st.lists(rows, max_size=4))
perfs = sometimes_hostile(st.one_of(st.none(), st.builds(PerfRecord, keys, values)))
predictions = sometimes_hostile(
    st.one_of(
        st.lists(st.floats(), max_size=6),
        st.lists(st.integers(-3, 3), max_size=6),
        st.lists(st.sampled_from(["cat", "dog", True]), max_size=6),
        st.lists(st.floats(allow_nan=False), max_size=6).map(np.array),
        st.builds(lambda: [0.5, 10**400]),
        st.builds(lambda: [10**5000]),  # built: a just() would need its repr
        st.just([[1, 2], [3, 4]]),
    )
)
problem_types = sometimes_hostile(st.sampled_from([None, "classification", "regression", "foo"]))
orders = sometimes_hostile(st.sampled_from(["max", "min"]))
limits = sometimes_hostile(
    st.one_of(st.integers(1, 10), st.sampled_from([np.int64(2), 2**63 - 1, 0, -1]))
)


# -- calls ----------------------------------------------------------------------------------


class Call(NamedTuple):
    name: str
    run: Callable[[Tracker], object]

    def __repr__(self) -> str:  # what Hypothesis prints for a failing example
        return self.name


def call(name: str, *strategies: st.SearchStrategy[Any], **named: st.SearchStrategy[Any]) -> Any:
    """A strategy of calls ``tracker.<name>(*args, **kwargs)`` with drawn arguments."""

    def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
        shown = ", ".join(
            [*map(_safe_repr, args), *(f"{k}={_safe_repr(v)}" for k, v in kwargs.items())]
        )
        return Call(f"{name}({shown})", lambda t: getattr(t, name)(*args, **kwargs))

    return st.builds(build, st.tuples(*strategies), st.fixed_dictionaries(named))


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) < 80 else text[:77] + "..."


def copy_call(resource_lists: Any) -> Call:
    return Call(
        f"trackplug.copy(t, memory://, resources={_safe_repr(resource_lists)})",
        lambda t: trackplug.copy(t, "memory://", resources=resource_lists),
    )


CALLS = st.one_of(
    call("log_metric", resources, keys, values, steps, timestamps),
    call("log_metric", resources, keys, values, step=steps, timestamp=timestamps),
    call("log_metrics", resources, metrics, perf_metrics, step=steps, timestamp=timestamps),
    call("log_points", resources, points, perfs),
    call("copy_metrics", resources, resources),
    call(
        "log_prediction_metrics",
        resources,
        predictions,
        problem_types,
        step=steps,
        timestamp=timestamps,
    ),
    call("get_metric", resources, keys),
    call("history", resources, keys),
    call("latest", resources),
    call("perf", resources),
    call("resources"),
    call("best", keys, orders, limits),
    call("flush"),
    call("sync"),
    sometimes_hostile(st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=2)).map(copy_call),
)


# -- stores ---------------------------------------------------------------------------------


def snapshot(tracker: Tracker) -> object:
    """Everything the store holds, comparable exactly (NaN, -0.0: compared by repr)."""
    state = {}
    for rid in tracker.resources():
        latest = tracker.latest(rid)
        state[rid] = (
            latest,
            tracker.perf(rid),
            {key: tracker.history(rid, key) for key in latest},
        )
    return repr(state)


class Fuzzed(NamedTuple):
    """The tracker the calls go to, and one reader per store it writes to (itself first:
    its reads drain its buffer into every store)."""

    tracker: Tracker
    readers: list[Tracker]

    def snapshot(self) -> list[object]:
        return [snapshot(reader) for reader in self.readers]


#: Calls that only read: when one succeeds, the stores hold what they held before it.
READS = frozenset({"get_metric", "history", "latest", "perf", "resources", "best", "copy"})


def run_calls(fuzzed: Fuzzed, calls: list[Call]) -> int:
    made = 0
    before = fuzzed.snapshot()
    for one in calls:
        try:
            one.run(fuzzed.tracker)
        except TrackplugError:
            assert fuzzed.snapshot() == before, f"{one.name} failed but changed a store"
        else:
            if one.name.partition("(")[0].rpartition(".")[2] not in READS:
                before = fuzzed.snapshot()  # it may have written: the next call's "before"
        made += 1
    return made


BACKENDS = ["memory", "sqlite", "sqlite-memory", "postgresql", "mlflow", "mlflow-server", "fan-out"]


@pytest.fixture(scope="module", params=BACKENDS)
def store_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ...]]:
    """The URLs of one tracker: one backend, or a memory primary with a SQLite secondary."""
    kind = request.param
    if kind == "memory":
        yield ("memory://",)
    elif kind in ("sqlite", "fan-out"):
        pytest.importorskip("trackplug_sql")
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
        yield (url,) if kind == "sqlite" else ("memory://", url)
    elif kind == "sqlite-memory":
        pytest.importorskip("trackplug_sql")
        yield ("sqlite://",)
    elif kind == "postgresql":
        yield from _postgresql_schema()
    elif kind == "mlflow-server":
        pytest.importorskip("trackplug_mlflow")
        server = os.environ.get(SERVER_ENV)
        if not server:
            pytest.skip(f"{SERVER_ENV} is not set (no running mlflow server to fuzz)")
        yield (f"mlflow+{server}?experiment={FRESH}",)
    else:
        pytest.importorskip("trackplug_mlflow")
        pytest.importorskip("sqlalchemy")
        path = tmp_path_factory.mktemp("fuzz") / "mlflow.db"
        yield (f"mlflow+sqlite:///{path}?experiment={FRESH}",)


def _postgresql_schema() -> Iterator[tuple[str]]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (no PostgreSQL to fuzz)")
    psycopg = pytest.importorskip("psycopg")
    schema = f"fuzz_{uuid.uuid4().hex[:8]}"
    dsn = base.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield (f"{base}?options=-csearch_path%3D{schema}",)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def fuzzing(urls: tuple[str, ...], outbox: Path) -> Iterator[Fuzzed]:
    with ExitStack() as stack:
        tracker = stack.enter_context(trackplug.connect(*urls, outbox=str(outbox)))
        others = [stack.enter_context(trackplug.connect(url)) for url in urls[1:]]
        yield Fuzzed(tracker, [tracker, *others])


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outbox") / "outbox.db"


def test_every_public_method_raises_only_trackplug_errors_and_changes_nothing_when_it_does(
    store_urls: tuple[str, ...], outbox: Path
) -> None:
    profile = "thorough" if THOROUGH else "fast"
    fresh = any(FRESH in url for url in store_urls)
    examples = (MLFLOW_EXAMPLES if fresh else EXAMPLES)[profile]
    made = [0]
    with ExitStack() as stack:
        shared = None if fresh else stack.enter_context(fuzzing(store_urls, outbox))

        @settings(
            max_examples=examples,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: shared store
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.lists(CALLS, min_size=CALLS_PER_EXAMPLE, max_size=CALLS_PER_EXAMPLE))
        def fuzz(calls: list[Call]) -> None:
            if shared is not None:
                made[0] += run_calls(shared, calls)
                return
            name = f"fuzz-{uuid.uuid4().hex[:12]}"
            with fuzzing(tuple(url.replace(FRESH, name) for url in store_urls), outbox) as one:
                made[0] += run_calls(one, calls)

        fuzz()
    print(f"\n{' + '.join(store_urls)}: {made[0]} fuzzed calls ({profile})")
    if THOROUGH:
        assert made[0] >= 10_000


HOSTILE_URLS = [
    None,
    5,
    b"sqlite://",
    "",
    "runs.db",
    "nosuch://x",
    "postgresql://u:pw@127.0.0.1:port/db",
    "postgresql://u:pw@[::1/db",
    "mlflow+http://u:pw@[bad",
    "mlflow+http://h:99999",
    "mlflow+mysql://u:pw@127.0.0.1:1/db",  # no driver installed
    "mlflow+nosuchdialect://u:pw@h/x",
    "sqlite:///x.db?mode=ro",
    "sqlite://host/x.db",
]


@pytest.mark.parametrize("url", HOSTILE_URLS, ids=repr)
def test_a_hostile_url_is_a_trackplug_error(
    url: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be created where the tests run
    with pytest.raises(TrackplugError) as error:
        trackplug.connect(url, probe_timeout=1).close()  # type: ignore[arg-type]
    assert "pw" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
