"""``?timeout=``: a frozen MLflow store costs at most the URL's bound, then a BackendError.

The frozen peers are real: a listening socket nobody answers (the kernel accepts the
connection, as for a stopped process), and the session's ``mlflow server`` stopped with
SIGSTOP. ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is unset here (the session lowers it to 1), so
each request is sent once, as for a user who never set it.
"""

from __future__ import annotations

import socket
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from trackplug_mlflow import MLflowBackend
from trackplug_mlflow.bounds import _bounding, bounded

import trackplug
from trackplug import BackendError, BackendWarning

TIMEOUT = 1.0  # seconds, the URLs' ?timeout=
SLACK = 3.0  # a loaded machine
SECRET = "hunter2-secret"


@pytest.fixture(autouse=True)
def _single_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


@contextmanager
def within_the_bound(requests: int = 1) -> Iterator[None]:
    """The block ends within ``requests`` times the URL's timeout, plus slack."""
    started = time.monotonic()
    yield
    assert time.monotonic() - started < requests * TIMEOUT + SLACK


def assert_no_password(error: BaseException) -> None:
    assert SECRET not in "".join(traceback.format_exception(error))


# -- a socket that never answers ----------------------------------------------------------------


def test_opening_a_frozen_server_ends_within_the_timeout(silent_port: int) -> None:
    url = f"mlflow+http://me:{SECRET}@127.0.0.1:{silent_port}?timeout={TIMEOUT:g}"
    with within_the_bound(), pytest.raises(BackendError, match="cannot be reached") as failed:
        trackplug.connect(url)
    assert_no_password(failed.value)


def test_a_given_client_on_a_frozen_server_is_bounded_too(silent_port: int) -> None:
    """No probe (the client is given): the bound is on every request the store sends."""
    client = MlflowClient(f"http://me:{SECRET}@127.0.0.1:{silent_port}")
    url = f"mlflow+http://127.0.0.1:{silent_port}?experiment=e&timeout={TIMEOUT:g}"
    with (
        within_the_bound(),
        pytest.raises(
            BackendError, match=f"finding experiment.*no answer within {TIMEOUT:g} s"
        ) as failed,
    ):
        MLflowBackend(url, client=client)
    assert_no_password(failed.value)


def test_a_frozen_database_server_ends_within_the_timeout(silent_port: int) -> None:
    """The driver's ``connect_timeout`` comes from ``?timeout=`` (whole seconds)."""
    url = f"mlflow+postgresql://me:{SECRET}@127.0.0.1:{silent_port}/db?timeout={TIMEOUT:g}"
    with within_the_bound(), pytest.raises(BackendError, match="cannot be reached") as failed:
        trackplug.connect(url)
    assert_no_password(failed.value)


# -- a real mlflow server, stopped ---------------------------------------------------------------


def test_a_server_frozen_mid_session_is_a_backend_error_then_nothing_is_lost(
    mlflow_server: Any,
) -> None:
    url = mlflow_server.new_url(f"&timeout={TIMEOUT:g}")
    with trackplug.connect(url, flush_interval=3600) as tracker:
        tracker.log_metric("run", "loss", 1.0, step=1)
        tracker.flush()
        with mlflow_server.frozen():
            tracker.log_metric("run", "loss", 2.0, step=2)
            with within_the_bound(), pytest.raises(BackendError, match="no answer within 1 s"):
                tracker.flush()
            with within_the_bound(), pytest.raises(BackendError, match="no answer within 1 s"):
                tracker.history("run", "loss")  # the batch is still buffered: it goes first
        tracker.flush()  # the server is back
        assert [p.value for p in tracker.history("run", "loss")] == [1.0, 2.0]


def test_a_frozen_mlflow_secondary_spools_and_is_replayed(
    mlflow_server: Any, tmp_path: Path
) -> None:
    url = mlflow_server.new_url(f"&timeout={TIMEOUT:g}")
    outbox = str(tmp_path / "outbox.db")
    with trackplug.connect("memory://", url, outbox=outbox, flush_interval=3600) as tracker:
        tracker.log_metric("spooled-run", "loss", 1.0, step=1)
        tracker.flush()
        with mlflow_server.frozen():
            tracker.log_metric("spooled-run", "loss", 2.0, step=2)
            with within_the_bound(), pytest.warns(BackendWarning, match="outbox"):
                tracker.flush()  # the primary has it; the frozen secondary's copy waits
            assert tracker.outbox.pending(url) == 1
    assert trackplug.sync(outbox=outbox) == {url: 1}
    with trackplug.connect(url) as server:
        assert [p.value for p in server.history("spooled-run", "loss")] == [1.0, 2.0]


# -- the bound stays with trackplug's own calls -------------------------------------------------


class Recorder:
    """Stands for MLflow's ``http_request``: keeps the keyword arguments it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_outside_a_bounded_block_mlflows_requests_are_unchanged() -> None:
    recorder = Recorder()
    _bounding(recorder)(endpoint="/x", method="GET")
    assert recorder.calls == [{"endpoint": "/x", "method": "GET"}]


def test_inside_a_bounded_block_each_request_waits_once_for_at_most_the_bound() -> None:
    recorder = Recorder()
    with bounded(2.5):
        _bounding(recorder)(endpoint="/x")
        _bounding(recorder)(endpoint="/y", timeout=9, max_retries=3)  # the caller's own
    assert recorder.calls == [
        {"endpoint": "/x", "timeout": 2.5, "max_retries": 0},
        {"endpoint": "/y", "timeout": 9, "max_retries": 3},
    ]


def test_retries_the_user_asked_for_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    recorder = Recorder()
    with bounded(2.5):
        _bounding(recorder)(endpoint="/x")
    assert recorder.calls == [{"endpoint": "/x", "timeout": 2.5}]


def test_the_bound_does_not_reach_other_threads() -> None:
    recorder = Recorder()
    wrapped = _bounding(recorder)
    with bounded(2.5):
        other = threading.Thread(target=wrapped, kwargs={"endpoint": "/other"})
        other.start()
        other.join()
    assert recorder.calls == [{"endpoint": "/other"}]
