"""Several backends at once: failure policies, the outbox, sync, replay at connect."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from fake_plugins import FlakyBackend
from hypothesis import given
from hypothesis import strategies as st

import trackplug
from trackplug import MetricPoint, PerfRecord, Registry, Resource, ValidationError
from trackplug._fanout import BackendWarning
from trackplug._memory import MemoryBackend
from trackplug._model import Batch, float_bits
from trackplug._outbox import Outbox
from trackplug._validation import check_value
from trackplug._writes import CopyMetrics, LogBatch, LogMetrics, LogPredictions, from_json, to_json

REGISTRY = Registry(
    [
        EntryPoint("memory", "trackplug._memory", "trackplug"),
        EntryPoint("flaky", "fake_plugins:Flaky", "trackplug"),
    ]
)
SERVER = "flaky://server"


@pytest.fixture(autouse=True)
def fresh_flaky() -> Iterator[None]:
    FlakyBackend.instances.clear()
    FlakyBackend.down = FlakyBackend.unreachable = False
    FlakyBackend.writes = 0
    yield
    FlakyBackend.instances.clear()


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


def connect(*urls: str, **options: object) -> trackplug.Tracker:
    return trackplug.connect(*urls, registry=REGISTRY, **options)  # type: ignore[arg-type]


def server_points(resource: str = "r", key: str = "loss") -> list[MetricPoint]:
    return FlakyBackend.instances[SERVER].history(Resource(resource), key)


def test_a_failing_secondary_under_raise_still_lets_the_primary_have_the_write(
    outbox: Path,
) -> None:
    with connect("memory://", SERVER, on_error="raise", outbox=outbox) as t:
        FlakyBackend.down = True
        t.log_metric("r", "loss", 1.0)
        with pytest.raises(ConnectionError, match="down"):
            t.flush()
        FlakyBackend.down = False
        assert t.get_metric("r", "loss") == 1.0  # the primary had it all along


def test_warn_drops_the_write_for_that_backend_only(outbox: Path) -> None:
    with connect("memory://", SERVER, on_error={SERVER: "warn"}, outbox=outbox) as t:
        FlakyBackend.down = True
        t.log_metric("r", "loss", 1.0)
        with pytest.warns(BackendWarning, match="dropped"):
            t.flush()
        assert t.get_metric("r", "loss") == 1.0
        assert t.outbox.pending() == 0
    assert server_points() == []


def test_spool_keeps_every_write_and_sync_replays_them_in_order(outbox: Path) -> None:
    with connect("memory://", SERVER, outbox=outbox, retry_interval=3600) as t:  # spool: default
        FlakyBackend.down = True
        for step in range(5):
            t.log_metric("r", "loss", step / 2, step=step)
        with pytest.warns(BackendWarning, match="outbox"):
            t.flush()
        t.log_metrics("r", {"valid": {"f1": 0.1}}, perf_metric="f1")
        t.log_metrics("r", {"valid": {"f1": 0.9}}, perf_metric="f1")  # the later one wins
        assert t.outbox.pending(SERVER) == 3
        FlakyBackend.down = False
        assert t.sync() == 3
        assert t.sync() == 0
    server = FlakyBackend.instances[SERVER]
    assert [p.value for p in server_points()] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert server.get_perf(Resource("r")) == PerfRecord("f1", 0.9)


def test_a_failed_backend_is_not_retried_before_the_retry_interval(outbox: Path) -> None:
    with connect("memory://", SERVER, outbox=outbox, retry_interval=3600) as t:
        FlakyBackend.down = True
        with pytest.warns(BackendWarning):
            for step in range(10):
                t.log_metric("r", "loss", 1.0, step=step)
                t.flush()
        assert FlakyBackend.writes == 1  # one timeout, not one per batch
        assert t.outbox.pending(SERVER) == 10


def test_the_next_connect_replays_the_outbox(outbox: Path) -> None:
    FlakyBackend.down = True
    with pytest.warns(BackendWarning), connect("memory://", SERVER, outbox=outbox) as t:
        t.log_metric("r", "loss", 3.0)
    assert Outbox(outbox).pending(SERVER) == 1
    FlakyBackend.down = False
    with connect("memory://", SERVER, outbox=outbox) as t:
        assert t.outbox.pending() == 0
    assert [p.value for p in server_points()] == [3.0]


def test_a_secondary_that_cannot_be_opened_is_opened_when_needed(outbox: Path) -> None:
    FlakyBackend.unreachable = True
    with pytest.warns(BackendWarning, match="cannot be opened"):
        t = connect("memory://", SERVER, outbox=outbox, retry_interval=0)
    with pytest.warns(BackendWarning, match="outbox"):
        t.log_metric("r", "loss", 1.0)
        t.flush()
    FlakyBackend.unreachable = False
    assert t.sync() == 1
    t.close()
    assert [p.value for p in server_points()] == [1.0]


def test_the_primary_must_open(outbox: Path) -> None:
    FlakyBackend.unreachable = True
    with pytest.raises(ConnectionRefusedError):
        connect(SERVER, "memory://", on_error="spool", outbox=outbox)


def test_on_error_is_checked() -> None:
    with pytest.raises(ValidationError, match="on_error"):
        connect("memory://", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not connected"):
        connect("memory://", on_error={"flaky://elsewhere": "warn"})


def test_nothing_is_created_on_disk_until_something_is_spooled(outbox: Path) -> None:
    with connect("memory://", SERVER, outbox=outbox) as t:
        t.log_metric("r", "loss", 1.0)
    assert not outbox.exists()


def test_the_outbox_file_is_private_and_intact(outbox: Path) -> None:
    FlakyBackend.down = True
    with pytest.warns(BackendWarning), connect("memory://", SERVER, outbox=outbox) as t:
        t.log_metric("r", "loss", 1.0)
    assert outbox.stat().st_mode & 0o077 == 0
    assert sqlite3.connect(outbox).execute("PRAGMA integrity_check").fetchone() == ("ok",)


# Values as the facade hands them on: every NaN already the canonical one.
values = st.floats(allow_nan=True, allow_infinity=True).map(lambda v: check_value("k", v))
points = st.builds(
    MetricPoint,
    st.sampled_from(["loss", "val.acc", "a/b c:d"]),
    values,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=0, max_value=2**63 - 1),
)
writes = st.one_of(
    st.builds(
        lambda ps: LogBatch({Resource("r"): ps, Resource("s"): ps[:1]}),
        st.lists(points, max_size=4),
    ),
    st.builds(
        LogMetrics,
        st.just(Resource("r")),
        st.lists(points, max_size=4),
        st.one_of(st.none(), st.builds(PerfRecord, st.just("f1"), values)),
    ),
    st.builds(CopyMetrics, st.just(Resource("a")), st.just(Resource("b"))),
    st.builds(LogPredictions, st.just(Resource("job")), st.lists(points, max_size=3)),
)


@given(writes)
def test_an_outbox_entry_reads_back_as_the_same_write_bit_for_bit(write: object) -> None:
    again = from_json(to_json(write))  # type: ignore[arg-type]
    assert _bits(again) == _bits(write)


def _bits(obj: object) -> object:
    """Floats replaced by their bits, so NaN, -0.0 and ±inf compare exactly."""
    if isinstance(obj, float):
        return ("float", float_bits(obj))
    if isinstance(obj, tuple | list):
        return [type(obj).__name__, *map(_bits, obj)]
    if isinstance(obj, dict):
        return {k: _bits(v) for k, v in obj.items()}
    if hasattr(obj, "__dataclass_fields__"):
        return {name: _bits(getattr(obj, name)) for name in obj.__dataclass_fields__}
    return obj


def test_a_nan_point_survives_the_outbox(outbox: Path) -> None:
    FlakyBackend.down = True
    with pytest.warns(BackendWarning), connect("memory://", SERVER, outbox=outbox) as t:
        t.log_metric("r", "loss", math.nan, step=1)
        t.log_metric("r", "loss", -0.0, step=2)
        t.log_metric("r", "loss", -math.inf, step=3)
        t.flush()
        FlakyBackend.down = False
        t.sync()
    bits = [float_bits(p.value) for p in server_points()]
    assert bits == [float_bits(math.nan), float_bits(-0.0), float_bits(-math.inf)]


def test_trackplug_sync_replays_what_a_finished_run_left_in_the_outbox(outbox: Path) -> None:
    FlakyBackend.down = True
    with pytest.warns(BackendWarning), connect("memory://", SERVER, outbox=outbox) as t:
        for step in range(3):
            t.log_metric("r", "loss", float(step), step=step)
            t.flush()
    FlakyBackend.down = True
    with pytest.raises(ConnectionError):
        trackplug.sync(outbox=outbox, registry=REGISTRY)
    FlakyBackend.down = False
    seen: list[tuple[int, int, str]] = []
    sent = trackplug.sync(outbox=outbox, registry=REGISTRY, progress=lambda *a: seen.append(a))
    assert sent == {SERVER: 3}
    assert seen == [(1, 1, SERVER)]
    assert [p.value for p in server_points()] == [0.0, 1.0, 2.0]
    assert trackplug.sync(outbox=outbox, registry=REGISTRY) == {}


class _Consuming(MemoryBackend):
    """Stores what it is given, then empties in place every list it was given (a writer
    that pops a queue); with ``fail``, empties them and raises, as if cut off midway."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail

    def _consume(self, *parts: object) -> None:
        for part in parts:
            if isinstance(part, list):
                part.clear()

    def _store_then_consume(self, store: Callable[[], None], *parts: object) -> None:
        if self.fail:
            self.fail = False
            self._consume(*parts)
            raise ConnectionError("cut off after popping the points")
        store()
        self._consume(*parts)

    @trackplug.hookimpl
    def log_metric(self, batch: Batch) -> None:
        parts = [*batch.values(), *getattr(batch, "columns", tuple)()]
        self._store_then_consume(lambda: super(_Consuming, self).log_metric(batch), *parts)

    @trackplug.hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        store = lambda: super(_Consuming, self).log_metrics(resource, points, perf)  # noqa: E731
        self._store_then_consume(store, points)


def _log_every_kind(tracker: trackplug.Tracker) -> None:
    tracker.log_metric("r", "loss", 0.5, step=1)
    tracker.log_metrics("r", {"x": 1.0, "y": 2.0}, step=2)
    tracker.log_metrics("r", {"train": {"f1": 0.25}}, perf_metric="f1", step=3)
    tracker.log_points("p", [MetricPoint("loss", 1.5, 4, 5)])
    tracker.log_prediction_metrics("job", [1.0, 2.0])
    tracker.flush()


def _held(backend: MemoryBackend) -> dict[str, dict[str, float]]:
    return {rid: backend.latest(Resource(rid)) for rid in backend.resources()}


def test_a_backend_that_empties_what_it_is_given_takes_nothing_from_the_next() -> None:
    """Every backend of a tracker got the same lists: one that emptied them in place left
    the next nothing of a log_metrics with a perf metric, a log_points, or predictions
    (the secondary held 'r' without 'train_f1', no 'p', no 'job')."""
    reference = MemoryBackend()
    _log_every_kind(trackplug.Tracker(reference, flush_interval=3600))
    secondary = MemoryBackend()
    tracker = trackplug.Tracker(_Consuming(), secondary, flush_interval=3600)
    _log_every_kind(tracker)
    assert _held(secondary) == _held(reference)


def test_a_backend_that_empties_what_it_is_given_then_fails_spools_it_whole(
    tmp_path: Path,
) -> None:
    """What is spooled after a failure is what the facade sent, not what the backend left:
    a batch emptied and then refused was spooled empty, and the replay wrote nothing."""
    reference = MemoryBackend()
    _log_every_kind(trackplug.Tracker(reference, flush_interval=3600))
    failing = _Consuming(fail=True)
    tracker = trackplug.Tracker(
        MemoryBackend(),
        failing,
        on_error="spool",
        outbox=str(tmp_path / "outbox.db"),
        flush_interval=3600,
        retry_interval=0,
    )
    with pytest.warns(BackendWarning, match="cut off"):
        _log_every_kind(tracker)
    tracker.sync()
    assert _held(failing) == _held(reference)
