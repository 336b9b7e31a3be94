"""No password in the whole printed traceback of any failure, for every URL form that can
carry one (PostgreSQL, an MLflow server, an MLflow PostgreSQL store) and every way reaching
it fails: refused, unknown host, no answer (timeout), refused credentials, server error.
The original exception types stay reachable as causes."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import closing
from urllib.parse import urlsplit

import pytest
from mlflow_server import free_port

import trackplug
from trackplug import BackendError, TrackplugError

SECRET = "Sup3r-s3cret-pw"
PG_ENV = "TRACKPLUG_TEST_POSTGRESQL_URL"


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 500

    def _answer(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error_code": "INTERNAL_ERROR", "message": "boom"}')

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def http_server(status: int) -> Iterator[int]:
    handler = type(f"Answer{status}", (_Answer,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def unauthorized_port() -> Iterator[int]:
    yield from http_server(401)


@pytest.fixture(scope="module")
def failing_port() -> Iterator[int]:
    yield from http_server(500)


@pytest.fixture(autouse=True)
def _no_mlflow_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")


def shared_server() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set (no PostgreSQL to test with)")
    return urlsplit(url).netloc.rpartition("@")[2]


def assert_no_password(error: BaseException) -> None:
    printed = "".join(traceback.format_exception(error))
    assert SECRET not in printed, printed
    seen, todo = set(), [error]
    while todo:  # every exception reachable, not only what is printed
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        assert SECRET not in str(exc), exc
        assert SECRET not in repr(exc.args), exc
        todo.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)


def fail(url: str, **options: object) -> TrackplugError:
    """The error of opening ``url`` and writing one point there."""

    def open_and_write() -> None:
        with trackplug.connect(url, **options) as tracker:
            tracker.log_metric("run", "loss", 0.5)
            tracker.flush()

    with pytest.raises(TrackplugError) as caught:
        open_and_write()
    return caught.value


POSTGRESQL_CASES = {
    "refused": lambda s: f"127.0.0.1:{free_port()}/test",
    "unknown host": lambda s: "no-such-host.invalid:5432/test",
    "no answer": lambda s: f"127.0.0.1:{s['silent']}/test?connect_timeout=1",
    "no such database": lambda s: f"{shared_server()}/no_such_db_{free_port()}",
}


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg", "mlflow+postgresql"])
@pytest.mark.parametrize("kind", sorted(POSTGRESQL_CASES))
def test_a_postgresql_url_fails_without_its_password(
    scheme: str, kind: str, silent_port: int
) -> None:
    if scheme == "mlflow+postgresql":
        pytest.importorskip("mlflow")
    where = POSTGRESQL_CASES[kind]({"silent": silent_port})
    error = fail(f"{scheme}://postgres:{SECRET}@{where}", **_mlflow_options(scheme))
    assert isinstance(error, BackendError)
    assert error.__cause__ is not None  # the driver's own exception, by its own type
    assert_no_password(error)


def _mlflow_options(scheme: str) -> dict[str, object]:
    return {"probe_timeout": 2} if scheme.startswith("mlflow") else {}


SERVER_CASES = {
    "refused": lambda p: f"127.0.0.1:{free_port()}",
    "unknown host": lambda p: "no-such-host.invalid:5000",
    "no answer": lambda p: f"127.0.0.1:{p['silent']}",
    "unauthorized": lambda p: f"127.0.0.1:{p['unauthorized']}",
    "server error": lambda p: f"127.0.0.1:{p['failing']}",
}


@pytest.mark.parametrize("kind", sorted(SERVER_CASES))
def test_an_mlflow_server_url_fails_without_its_password(
    kind: str, silent_port: int, unauthorized_port: int, failing_port: int
) -> None:
    pytest.importorskip("mlflow")
    ports = {"silent": silent_port, "unauthorized": unauthorized_port, "failing": failing_port}
    where = SERVER_CASES[kind](ports)
    error = fail(f"mlflow+http://user:{SECRET}@{where}", probe_timeout=2)
    assert isinstance(error, BackendError)
    assert error.__cause__ is not None
    assert_no_password(error)
