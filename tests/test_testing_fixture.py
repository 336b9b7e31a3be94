"""trackplug.testing: the trackplug_capture fixture, run against real code under test
(tests/trainer.py), with no server and no file."""

from __future__ import annotations

import math
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import trainer
from fake_plugins import FlakyBackend
from hypothesis import given, settings
from hypothesis import strategies as st

import trackplug
from trackplug import ClosedError, TrackplugError, ValidationError
from trackplug._memory import MemoryBackend
from trackplug.testing import Capture, capture

FLAKY = trackplug.Registry(
    [
        EntryPoint("memory", "trackplug._memory", "trackplug"),
        EntryPoint("flaky", "fake_plugins:Flaky", "trackplug"),
    ]
)


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that must stay empty: no store, no outbox may appear in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACKPLUG_URL", raising=False)
    monkeypatch.delenv("TRACKPLUG_OUTBOX", raising=False)
    return tmp_path


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A port that listens but never answers: a client that tried it would hang, and the
    attempt stays queued, so a test can tell whether anything connected."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server


def connections_to(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            client, _ = server.accept()
        except BlockingIOError:
            return count
        client.close()
        count += 1


# -- code under test, captured whatever URL it uses ------------------------------------------


def test_training_code_that_logs_to_an_mlflow_server_is_captured_without_one(
    trackplug_capture: Capture, in_empty_dir: Path
) -> None:
    trainer.train("sgd-1", epochs=10)

    loss = trackplug_capture.history("sgd-1", "loss")
    assert [point.step for point in loss] == list(range(10))
    assert loss[-1].value < loss[0].value
    assert set(trackplug_capture.latest("sgd-1")) == {"loss", "train_f1", "valid_f1"}
    assert trackplug_capture.perf("sgd-1") == trackplug.PerfRecord(
        "f1", trackplug_capture.get_metric("sgd-1", "valid_f1")
    )
    assert trackplug_capture.resources() == ["sgd-1"]
    assert trackplug_capture.connections == [[trainer.TRACKING_URL]]
    assert list(in_empty_dir.iterdir()) == []


def test_no_connection_is_attempted(
    trackplug_capture: Capture, silent_server: socket.socket
) -> None:
    port = silent_server.getsockname()[1]
    trainer.train("sgd-1", epochs=2, url=f"mlflow+http://127.0.0.1:{port}")
    trainer.train("sgd-2", epochs=2, url=f"postgresql://user:pw@127.0.0.1:{port}/db")

    assert trackplug_capture.resources() == ["sgd-1", "sgd-2"]
    assert connections_to(silent_server) == 0
    assert trackplug_capture.connections[1] == [f"postgresql://user:***@127.0.0.1:{port}/db"]


def test_the_environment_url_and_the_default_write_no_file(
    trackplug_capture: Capture, in_empty_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer.train_from_environment("default-1")  # sqlite:///trackplug.db, never closed
    monkeypatch.setenv("TRACKPLUG_URL", "sqlite:///from-env.db")
    trainer.train_from_environment("env-1")

    assert trackplug_capture.connections == [["sqlite:///trackplug.db"], ["sqlite:///from-env.db"]]
    # Never flushed nor closed by the code: the capture reads its buffers all the same.
    assert [p.value for p in trackplug_capture.history("env-1", "loss")] == [
        1 / (step + 1) for step in range(5)
    ]
    assert trackplug_capture.resources() == ["default-1", "env-1"]
    assert list(in_empty_dir.iterdir()) == []


def test_a_fan_out_is_captured_once(trackplug_capture: Capture, in_empty_dir: Path) -> None:
    trainer.train_everywhere("fan-1")

    assert len(trackplug_capture.history("fan-1", "loss")) == 3
    assert trackplug_capture.connections == [["sqlite:///runs.db", trainer.TRACKING_URL]]
    assert list(in_empty_dir.iterdir()) == []


def test_trackers_opened_in_threads_are_captured(trackplug_capture: Capture) -> None:
    rates = [0.05, 0.5, 2.0]
    trainer.grid_search(rates, epochs=3)

    grid = trackplug_capture.latest("grid")
    for rate in rates:
        model = f"lr-{rate}"
        trackplug_capture.assert_logged(model, "loss", steps=range(3))
        assert grid[f"valid_f1.{model}"] == trackplug_capture.get_metric(model, "valid_f1")
    trackplug_capture.assert_best("valid_f1", "lr-2.0")
    assert len(trackplug_capture.connections) == 1 + 2 * len(rates)


def test_a_tracker_logging_from_many_threads_loses_nothing(trackplug_capture: Capture) -> None:
    tracker = trackplug.connect(trainer.TRACKING_URL, flush_interval=0.001, buffer_size=7)

    def log(worker: int) -> None:
        for step in range(500):
            tracker.log_metric(f"worker-{worker}", "loss", float(step), step=step)

    threads = [threading.Thread(target=log, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for worker in range(4):
        trackplug_capture.assert_logged(f"worker-{worker}", "loss", steps=range(500))


def test_the_code_reads_what_it_logged_from_the_capture(trackplug_capture: Capture) -> None:
    with trackplug.connect("sqlite:///a.db") as writer, trackplug.connect("memory://") as reader:
        writer.log_metric("m", "loss", 0.5)
        writer.flush()
        assert reader.get_metric("m", "loss") == 0.5  # one store, as a shared server is
        assert writer.url == "sqlite:///a.db"  # the code sees the URL it asked for


def test_runs_params_and_tags_are_captured(trackplug_capture: Capture) -> None:
    with trackplug.connect(trainer.TRACKING_URL) as tracker:
        with tracker.start_run("sgd", params={"lr": 0.5}, tags={"team": "fraud"}) as run:
            run.log_metric("loss", 0.3)
        tracker.set_tags("sgd-1", {"stage": "tuned"})
    (info,) = trackplug_capture.runs("sgd", status="finished", params={"lr": 0.5})
    assert (info.id, info.params, info.tags, info.metrics) == (
        run.id,
        {"lr": 0.5},
        {"team": "fraud"},
        {"loss": 0.3},
    )
    assert trackplug_capture.params(run.id) == {"lr": 0.5}
    assert trackplug_capture.tags("sgd-1") == {"stage": "tuned"}
    assert trackplug_capture.runs("adam") == []


def test_a_malformed_url_fails_as_without_the_capture(trackplug_capture: Capture) -> None:
    with pytest.raises(ValidationError, match="is not a tracker URL"):
        trackplug.connect("runs.db")


# -- lifecycle ---------------------------------------------------------------------------------


def test_the_end_of_the_capture_closes_every_tracker_and_stops_capturing(
    in_empty_dir: Path,
) -> None:
    with capture() as captured:
        left_open = trackplug.connect("sqlite:///runs.db")
        left_open.log_metric("m", "loss", 1.0)
        assert captured.get_metric("m", "loss") == 1.0
    with pytest.raises(ClosedError):
        left_open.log_metric("m", "loss", 2.0)
    with pytest.raises(ClosedError, match="this capture has ended"):
        captured.resources()
    with trackplug.connect("memory://") as after:  # a store of its own again
        assert after.resources() == []
    assert list(in_empty_dir.iterdir()) == []


def test_one_capture_at_a_time() -> None:
    with capture(), pytest.raises(TrackplugError, match="one capture at a time"), capture():
        pass
    with capture() as again:  # the failed one left nothing installed
        assert again.connections == []


def test_a_tracker_closed_by_the_code_is_read_all_the_same(trackplug_capture: Capture) -> None:
    tracker = trackplug.connect("memory://")
    tracker.log_metric("m", "loss", 1.0)
    tracker.close()
    assert trackplug_capture.get_metric("m", "loss") == 1.0


# -- opting out: the real URL too, or left alone -----------------------------------------------


def test_passthrough_writes_to_the_real_url_too(in_empty_dir: Path) -> None:
    with capture(passthrough=True) as captured:
        trainer.train("sgd-1", epochs=3, url="sqlite:///runs.db")
        assert len(captured.history("sgd-1", "loss")) == 3
    with trackplug.connect("sqlite:///runs.db") as real:
        assert len(real.history("sgd-1", "loss")) == 3


def test_under_passthrough_the_code_reads_from_its_real_store(in_empty_dir: Path) -> None:
    with trackplug.connect("sqlite:///runs.db") as before:
        before.log_metric("old", "loss", 9.0)
    with capture(passthrough=True) as captured:
        with trackplug.connect("sqlite:///runs.db") as tracker:
            tracker.log_metric("new", "loss", 1.0)
            assert tracker.resources() == ["new", "old"]  # the real primary answers
        assert captured.resources() == ["new"]  # the capture holds what was logged meanwhile


def test_passthrough_gives_the_real_failure_of_an_unreachable_url(
    in_empty_dir: Path,
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/db"
    with capture(passthrough=True) as captured:
        with pytest.raises(trackplug.BackendError, match=r"127\.0\.0\.1"):
            trackplug.connect(url)
        assert captured.connections == [[url]]
        assert captured.resources() == []


@pytest.fixture
def flaky() -> Iterator[type[FlakyBackend]]:
    FlakyBackend.instances.clear()
    FlakyBackend.down = FlakyBackend.unreachable = False
    yield FlakyBackend
    FlakyBackend.instances.clear()
    FlakyBackend.down = False


def test_passthrough_captures_what_a_failing_real_store_missed(
    flaky: type[FlakyBackend],
) -> None:
    with capture(passthrough=True) as captured:
        tracker = trackplug.connect("flaky://server", registry=FLAKY)
        flaky.down = True
        with pytest.raises(ConnectionError, match="is down"):  # the real failure, as it is
            tracker.log_metrics("m", {"loss": 1.0}, perf_metric="loss")  # written at once
        assert captured.get_metric("m", "loss") == 1.0
        flaky.down = False


def test_the_end_of_the_capture_closes_every_tracker_even_if_one_fails(
    flaky: type[FlakyBackend],
) -> None:
    captured = capture(passthrough=True)
    captured.__enter__()
    failing = trackplug.connect("flaky://server", registry=FLAKY, flush_interval=3600)
    other = trackplug.connect("memory://")
    failing.log_metric("m", "loss", 1.0)
    flaky.down = True  # its close cannot flush the buffered point
    with pytest.raises(ConnectionError, match="is down"):
        captured.__exit__(None, None, None)
    flaky.down = False
    with pytest.raises(ClosedError):
        other.log_metric("m", "loss", 1.0)
    with pytest.raises(ClosedError):
        failing.log_metric("m", "loss", 1.0)


def test_ignored_urls_are_opened_for_real_and_not_captured(in_empty_dir: Path) -> None:
    with capture(ignore="sqlite:///*") as captured:
        trainer.train("local", epochs=2, url="sqlite:///runs.db")
        trainer.train("remote", epochs=2)
        assert captured.resources() == ["remote"]
    assert (in_empty_dir / "runs.db").exists()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when this returns


# -- assertions: their failure messages show what was logged -----------------------------------


@pytest.fixture
def logged(trackplug_capture: Capture) -> Capture:
    with trackplug.connect("mlflow+http://127.0.0.1:1") as t:
        for step in range(10):
            t.log_metric("sgd-1", "valid_f1", 0.62 + step / 100, step=step)
        t.log_metric("sgd-1", "loss", 0.3, step=9)
        t.log_metric("sgd-2", "valid_f1", 0.93, step=4)
        t.log_metric("sgd-3", "loss", math.nan)
    return trackplug_capture


def failure(check: object, *args: object, **kwargs: object) -> str:
    assert callable(check)
    with pytest.raises(AssertionError) as raised:
        check(*args, **kwargs)
    return str(raised.value)


def test_assert_latest_shows_the_value_its_step_and_the_history(logged: Capture) -> None:
    assert logged.assert_latest("sgd-1", "valid_f1", at_least=0.7, at_most=0.8) == 0.71
    assert logged.assert_latest("sgd-1", "valid_f1", pytest.approx(0.71)) == 0.71
    assert logged.assert_latest("sgd-3", "loss", math.nan) != 0.0
    assert failure(logged.assert_latest, "sgd-1", "valid_f1", at_least=0.8) == (
        "expected valid_f1 ≥ 0.8 for resource `sgd-1`, logged: 0.71 at step 9; history of "
        "valid_f1 (10 points): 0.62 at step 0, 0.63 at step 1, 0.64 at step 2, …, "
        "0.69 at step 7, 0.7 at step 8, 0.71 at step 9"
    )
    assert failure(logged.assert_latest, "sgd-2", "valid_f1", 0.9, at_most=0.9) == (
        "expected valid_f1 == 0.9 and ≤ 0.9 for resource `sgd-2`, logged: 0.93 at step 4"
    )


def test_a_missing_key_or_resource_says_what_there_is(logged: Capture) -> None:
    assert failure(logged.assert_latest, "sgd-2", "loss", at_least=0.0) == (
        "no metric loss for resource `sgd-2`; it has: valid_f1 = 0.93 at step 4 (1 point)"
    )
    assert failure(logged.assert_logged, "sgd-9", "loss") == (
        "nothing was logged for resource `sgd-9`; resources with metrics: `sgd-1`, `sgd-2`, `sgd-3`"
    )


def test_nothing_logged_says_which_trackers_were_opened(trackplug_capture: Capture) -> None:
    assert failure(trackplug_capture.assert_logged, "m", "loss") == (
        "nothing was logged for resource `m`; no metrics at all, and no tracker was opened "
        "while capturing"
    )
    trackplug.connect("mlflow+http://user:secret@host:5000", "sqlite:///b.db")
    assert failure(trackplug_capture.assert_logged, "m", "loss") == (
        "nothing was logged for resource `m`; no metrics at all from the trackers opened on: "
        "mlflow+http://user:***@host:5000 + sqlite:///b.db"
    )
    trackplug_capture.assert_nothing_logged()


def test_assert_logged_compares_steps(logged: Capture) -> None:
    assert len(logged.assert_logged("sgd-1", "valid_f1", steps=range(10))) == 10
    assert failure(logged.assert_logged, "sgd-1", "valid_f1", steps=range(1, 12)) == (
        "expected valid_f1 for resource `sgd-1` at steps [1..11], logged at steps [0..9] "
        "(missing: [10, 11], not expected: [0])"
    )


def test_assert_best_shows_the_ranking(logged: Capture) -> None:
    logged.assert_best("valid_f1", "sgd-2")
    logged.assert_best("valid_f1", "sgd-1", order="min")
    assert failure(logged.assert_best, "valid_f1", "sgd-1") == (
        "expected `sgd-1` to have the highest valid_f1, ranking: `sgd-2` 0.93, `sgd-1` 0.71 "
        "(not ranked, without a valid_f1 or with NaN: `sgd-3`)"
    )


def test_assert_nothing_logged_lists_what_was(logged: Capture) -> None:
    assert failure(logged.assert_nothing_logged) == (
        "expected no metrics, logged:\n"
        "`sgd-1`: loss = 0.3 at step 9 (1 point); valid_f1 = 0.71 at step 9 (10 points)\n"
        "`sgd-2`: valid_f1 = 0.93 at step 4 (1 point)\n"
        "`sgd-3`: loss = nan at step 0 (1 point)"
    )


# -- importing ---------------------------------------------------------------------------------


def test_importing_trackplug_imports_neither_pytest_nor_the_capture() -> None:
    script = (
        "import sys, trackplug\n"
        "trackplug.connect('memory://').close()\n"
        "print(sorted({'pytest', 'trackplug.testing'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_scheme_nothing_serves_fails_as_without_the_capture(
    trackplug_capture: Capture,
) -> None:
    with pytest.raises(trackplug.UnknownBackendError, match="mlfow"):
        trackplug.connect("mlfow+http://127.0.0.1:1")  # a typo
    # trackplug's own backends may be left out of a test environment: still captured.
    memory_only = trackplug.Registry([EntryPoint("memory", "trackplug._memory", "trackplug")])
    with pytest.raises(trackplug.UnknownBackendError, match="flaky"):
        trackplug.connect("flaky://server", registry=memory_only)
    with trackplug.connect(trainer.TRACKING_URL, registry=memory_only) as tracker:
        tracker.log_metric("m", "loss", 1.0)
    assert trackplug_capture.resources() == ["m"]


def test_the_code_s_own_registry_serves_its_urls(trackplug_capture: Capture) -> None:
    with trackplug.connect("flaky://server", registry=FLAKY) as tracker:
        tracker.log_metric("m", "loss", 1.0)
    assert trackplug_capture.resources() == ["m"]
    assert FlakyBackend.instances == {}  # never opened: captured


def test_a_test_seeds_what_the_code_reads(trackplug_capture: Capture) -> None:
    with trackplug.connect("memory://") as seed:  # any tracker the test opens is captured too
        seed.log_metric("lr-9", "valid_f1", 0.99)
    trainer.grid_search([0.5], epochs=1)
    trackplug_capture.assert_best("valid_f1", "lr-9")


def test_copying_between_captured_urls_keeps_one_copy(trackplug_capture: Capture) -> None:
    trainer.train("sgd-1", epochs=3, url="sqlite:///a.db")
    summary = trackplug.copy("sqlite:///a.db", trainer.TRACKING_URL)
    assert summary.points == 0  # one store: the target already holds every point
    assert len(trackplug_capture.history("sgd-1", "loss")) == 3


# -- properties ---------------------------------------------------------------------------------

POINTS = st.lists(
    st.tuples(
        st.integers(0, 3),  # tracker
        st.sampled_from(["a", "b"]),  # resource
        st.sampled_from(["loss", "valid_f1"]),  # key
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(2**63), 2**63 - 1),  # step
    ),
    max_size=40,
)
URLS = ["memory://", "sqlite:///x.db", "mlflow+http://127.0.0.1:1", "postgresql://u:p@h/db"]


@settings(max_examples=40, deadline=None)
@given(points=POINTS, threaded=st.booleans())
def test_the_capture_holds_what_every_tracker_logged(
    points: list[tuple[int, str, str, float, int]], threaded: bool
) -> None:
    reference = trackplug.Tracker(MemoryBackend(), flush_interval=3600.0)
    with capture() as captured:
        trackers = [trackplug.connect(url, flush_interval=3600.0) for url in URLS]

        def log(which: int) -> None:
            for n, (t, resource, key, value, step) in enumerate(points):
                if t == which:
                    trackers[t].log_metric(resource, key, value, step=step, timestamp=n)

        if threaded:
            threads = [threading.Thread(target=log, args=(t,)) for t in range(len(URLS))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            for t in range(len(URLS)):
                log(t)
        for n, (_, resource, key, value, step) in enumerate(points):
            reference.log_metric(resource, key, value, step=step, timestamp=n)

        assert captured.resources() == reference.resources()
        for resource in ("a", "b"):
            for key in ("loss", "valid_f1"):
                assert bits(captured.history(resource, key)) == bits(
                    reference.history(resource, key)
                )
    reference.close()


def bits(points: list[trackplug.MetricPoint]) -> list[tuple[int, int, str]]:
    return [(p.step, p.timestamp, struct.pack("<d", p.value).hex()) for p in points]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True), min_size=1, max_size=12),
    bound=st.floats(allow_nan=False),
)
def test_assert_latest_passes_exactly_when_the_latest_value_meets_the_bound(
    values: list[float], bound: float
) -> None:
    with capture() as captured, trackplug.connect("memory://") as tracker:
        for step, value in enumerate(values):
            tracker.log_metric("r", "k", value, step=step)
        latest = values[-1]
        if latest >= bound:
            assert bits_of(captured.assert_latest("r", "k", at_least=bound)) == bits_of(latest)
        else:
            message = failure(captured.assert_latest, "r", "k", at_least=bound)
            assert message.startswith(
                f"expected k ≥ {bound!r} for resource `r`, logged: {latest!r} at step "
                f"{len(values) - 1}"
            )


def bits_of(value: float) -> str:
    return struct.pack("<d", value).hex() if not math.isnan(value) else "nan"


def test_steps_are_shown_as_ranges(trackplug_capture: Capture) -> None:
    with trackplug.connect("memory://") as tracker:
        for step in [*range(100), 102, 103, *range(200, 300)]:
            tracker.log_metric("r", "loss", 1.0, step=step)
    assert failure(trackplug_capture.assert_logged, "r", "loss", steps=range(300)) == (
        "expected loss for resource `r` at steps [0..299], logged at steps [0..99, 102, 103, "
        "200..299] (missing: [100, 101, 104..199], not expected: [])"
    )
