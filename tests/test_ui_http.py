"""trackplug ui over HTTP: every endpoint on a real store through Starlette's TestClient,
bad input as 4xx JSON (never a 500 with a traceback), no password anywhere, and the
command itself (a real server on a free port, stopped by Ctrl-C)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="trackplug ui needs the ui extra (starlette)")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2")

from paged_backends import PagesOnly
from starlette.testclient import TestClient

import trackplug
from trackplug import MetricPoint, Resource, hookimpl
from trackplug.plugin import MemoryBackend, sample_points
from trackplug.ui import create_app

PG_ENV = "TRACKPLUG_TEST_POSTGRESQL_URL"


def fill(tracker: trackplug.Tracker) -> None:
    """Two runs (one finished, one running), a resource without a run, a prediction job."""
    with tracker.start_run("sgd", params={"lr": 0.1, "layers": 2}, tags={"team": "a"}) as run:
        for step in range(50):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        tracker.log_metrics(run.id, {"valid": {"f1": 0.8}}, perf_metric="f1")
    adam = tracker.start_run("adam", params={"lr": 0.01})
    for step in range(30):
        adam.log_metric("loss", 2.0 / (step + 1), step=step)
    tracker.log_metrics(adam.id, {"valid": {"f1": 0.9}}, perf_metric="f1")
    tracker.log_metric("plain", "loss", math.nan, step=1)
    tracker.log_metric("plain", "gain", math.inf, step=1)
    tracker.log_prediction_metrics("job", [0.1, 0.5, 0.9])
    tracker.flush()


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[trackplug.Tracker]:
    with trackplug.connect(f"sqlite:///{tmp_path / 'ui.db'}") as tracker:
        fill(tracker)
        yield tracker


@pytest.fixture
def client(tracker: trackplug.Tracker) -> TestClient:
    return TestClient(create_app(tracker), raise_server_exceptions=False)


def run_ids(client: TestClient) -> dict[str | None, str]:
    return {row["name"]: row["id"] for row in client.get("/api/runs").json()["runs"]}


def test_runs_lists_runs_and_resources(client: TestClient, tracker: trackplug.Tracker) -> None:
    body = client.get("/api/runs").json()
    assert body["url"] == tracker.url
    by_name = {row["name"]: row for row in body["runs"]}
    sgd, adam = by_name["sgd"], by_name["adam"]
    assert (sgd["status"], adam["status"]) == ("finished", "running")
    assert sgd["params"] == {"layers": 2, "lr": 0.1}
    assert sgd["tags"] == {"team": "a"}
    assert sgd["metrics"]["loss"] == 1.0 / 50
    assert sgd["perf"] == {"metric": "f1", "value": 0.8}
    assert adam["end"] is None
    assert sgd["end"] >= sgd["start"]
    plain = next(row for row in body["runs"] if row["id"] == "plain")
    assert plain["name"] is None
    assert plain["metrics"] == {"gain": "inf", "loss": "NaN"}, "non-finite values as text"
    assert {"loss", "valid_f1", "num_predictions"} <= set(body["keys"])


def test_history_is_sampled_and_keeps_its_spike(tracker: trackplug.Tracker) -> None:
    points = [MetricPoint("m", math.sin(i / 30), i, 1000 + i) for i in range(5000)]
    points[4321] = points[4321]._replace(value=99.0)
    tracker.log_points("long", points)
    client = TestClient(create_app(tracker))
    body = client.get(
        "/api/history", params={"resource": "long", "key": "m", "max_points": 100}
    ).json()
    assert len(body["step"]) <= 100
    assert 99.0 in body["value"]
    assert body["step"][0] == 0
    assert body["step"][-1] == 4999
    assert len(body["step"]) == len(body["time"]) == len(body["value"])
    default = client.get("/api/history", params={"resource": "long", "key": "m"}).json()
    assert 1900 < len(default["step"]) <= 2000, "the default sample: DEFAULT_POINTS"


def test_history_after_a_point_sends_only_what_is_new(
    client: TestClient, tracker: trackplug.Tracker
) -> None:
    rid = run_ids(client)["adam"]
    whole = client.get("/api/history", params={"resource": rid, "key": "loss"}).json()
    assert whole["step"] == list(range(30))
    last = {"after_step": whole["step"][-1], "after_time": whole["time"][-1]}
    again = client.get("/api/history", params={"resource": rid, "key": "loss", **last}).json()
    assert again["step"] == [29], "nothing new: the last point alone"
    tracker.log_metric(rid, "loss", 0.01, step=30)
    tracker.log_metric(rid, "loss", 0.005, step=31)
    fresh = client.get("/api/history", params={"resource": rid, "key": "loss", **last}).json()
    assert fresh["step"] == [29, 30, 31]
    assert fresh["value"][1:] == [0.01, 0.005]


def test_best_is_the_leaderboard(client: TestClient) -> None:
    ids = run_ids(client)
    body = client.get("/api/best", params={"key": "valid_f1", "limit": 10}).json()
    assert [entry["id"] for entry in body["ranking"]] == [ids["adam"], ids["sgd"]]
    low = client.get("/api/best", params={"key": "valid_f1", "order": "min"}).json()
    assert [entry["value"] for entry in low["ranking"]] == [0.8, 0.9]


def test_predictions_lists_prediction_jobs(client: TestClient) -> None:
    jobs = client.get("/api/predictions").json()["jobs"]
    assert [job["id"] for job in jobs] == ["job"]
    assert jobs[0]["metrics"]["num_predictions"] == 3.0
    assert jobs[0]["metrics"]["prediction_p50"] == 0.5


def test_the_page_and_its_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "static/uPlot.iife.min.js" in page.text
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE", "app.js", "app.css"):
        assert client.get(f"/static/{name}").status_code == 200, name
    assert "MIT License" in client.get("/static/uPlot.LICENSE").text


BAD_REQUESTS = [
    ("/api/history", {"key": "loss"}, 400),
    ("/api/history", {"resource": "plain"}, 400),
    ("/api/history", {"resource": "plain", "key": "loss", "max_points": "many"}, 400),
    ("/api/history", {"resource": "plain", "key": "loss", "max_points": "3"}, 400),
    ("/api/history", {"resource": "plain", "key": "loss", "max_points": "999999999"}, 400),
    ("/api/history", {"resource": "plain", "key": "a..b"}, 400),
    ("/api/history", {"resource": "plain", "key": "loss", "after_step": "1"}, 400),
    ("/api/history", {"resource": "p", "key": "loss", "after_step": "x", "after_time": "1"}, 400),
    (
        "/api/history",
        {"resource": "plain", "key": "loss", "after_step": "1" + "0" * 30, "after_time": "1"},
        400,
    ),
    ("/api/best", {}, 400),
    ("/api/best", {"key": "loss", "order": "sideways"}, 400),
    ("/api/best", {"key": "loss", "limit": "0"}, 400),
    ("/api/best", {"key": "x" * 300}, 400),
    ("/api/nothing", {}, 404),
    ("/static/nothing.js", {}, 404),
]


@pytest.mark.parametrize(("path", "params", "status"), BAD_REQUESTS)
def test_bad_input_is_a_4xx_json_error(
    client: TestClient, path: str, params: dict[str, str], status: int
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert "Traceback" not in response.text


def test_only_get_is_served(client: TestClient) -> None:
    for path in ("/api/runs", "/api/history", "/api/best", "/api/predictions", "/"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = client.request(method, path)
            assert response.status_code == 405, (method, path)
            assert response.json()["error"]


class Failing(MemoryBackend):
    """A backend whose listing fails with an error that is not trackplug's."""

    @hookimpl
    def resources(self) -> list[str]:
        raise RuntimeError("disk on fire at /secret/path")

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        raise RuntimeError("disk on fire at /secret/path")


def test_an_unexpected_failure_is_a_500_without_traceback() -> None:
    with trackplug.Tracker(Failing()) as tracker:
        client = TestClient(create_app(tracker), raise_server_exceptions=False)
        for path, params in [("/api/runs", {}), ("/api/history", {"resource": "r", "key": "m"})]:
            response = client.get(path, params=params)
            assert response.status_code == 500
            assert response.json() == {"error": "internal error (RuntimeError)"}
            assert "secret" not in response.text


def test_a_loopback_server_refuses_other_hosts(tracker: trackplug.Tracker) -> None:
    app = create_app(tracker, allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://127.0.0.1:9").get("/api/runs").status_code == 200
    assert TestClient(app, base_url="http://evil.example").get("/api/runs").status_code == 400


def every_response(client: TestClient) -> Iterator[tuple[str, str]]:
    """(what, text) of every endpoint's response, errors included: bodies and headers."""
    rid = run_ids(client)["sgd"]
    requests = [
        ("/", {}),
        ("/api/runs", {}),
        ("/api/history", {"resource": rid, "key": "loss"}),
        ("/api/history", {"resource": rid, "key": "loss", "after_step": 0, "after_time": 0}),
        ("/api/best", {"key": "valid_f1"}),
        ("/api/predictions", {}),
        ("/static/app.js", {}),
        *[(path, params) for path, params, _ in BAD_REQUESTS],
    ]
    for path, params in requests:
        response = client.get(path, params=params)
        yield path, response.text + json.dumps(dict(response.headers))


def test_no_password_in_any_response() -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"needs PostgreSQL: set {PG_ENV} (the server trusts any password given)")
    password = "s3cret-Pa55word"
    user, _, rest = base.partition("://")[2].partition("@")
    url = f"postgresql://{user.partition(':')[0]}:{password}@{rest}"
    with trackplug.connect(url) as tracker:
        fill(tracker)
        client = TestClient(create_app(tracker), raise_server_exceptions=False)
        assert "***" in client.get("/api/runs").json()["url"]
        seen = list(every_response(client))
        assert len(seen) > 10
        for what, text in seen:
            assert password not in text, f"{what} shows the password"


# -- imports -----------------------------------------------------------------------------------


def test_only_the_ui_command_loads_the_ui(tracker: trackplug.Tracker) -> None:
    # (``trackplug backends`` would: it asks the MLflow plugin, and mlflow loads starlette.)
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from trackplug.cli import cli\n"
        f"assert CliRunner().invoke(cli, ['ls', {tracker.url!r}]).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn')"
        " or m.startswith('trackplug.ui')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_ui_imports_only_the_public_api() -> None:
    """The dashboard is a client of ``trackplug`` like any user's code: no internal module."""
    import ast

    package = Path(trackplug.__file__).parent / "ui"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert not node.module.startswith("trackplug.") or node.module == "trackplug.ui"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                pytest.fail(f"{path.name} imports trackplug's internals: {node.module}")


# -- the command -------------------------------------------------------------------------------


def start_ui(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """``trackplug ui`` in its own process; its address, read from its first line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trackplug.cli", "ui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise AssertionError(f"no address printed: {line!r} {process.stderr.read()!r}")  # type: ignore[union-attr]
    return process, line[line.index("http://") :].split()[0]


def test_the_command_serves_until_ctrl_c(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with trackplug.connect(url) as tracker:
        fill(tracker)
    process, address = start_ui(env={"TRACKPLUG_URL": url})  # the URL from the environment
    try:
        assert address.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(address + "api/runs", timeout=10) as response:
            body = json.load(response)
        assert body["url"] == url
        assert len(body["runs"]) == 4
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert err.strip() == "trackplug ui: stopped"


def test_the_command_warns_when_not_on_loopback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with trackplug.connect(url) as tracker:
        fill(tracker)
    process, address = start_ui(url, "--host", "0.0.0.0")
    try:
        assert address.startswith("http://0.0.0.0:")
        loopback = address.replace("0.0.0.0", "127.0.0.1")
        with urllib.request.urlopen(loopback + "api/runs", timeout=10) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert "not loopback" in err


def stopped_by(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    """Send ``sig``; the return code and stderr once it exits (30 s at most: else killed)."""
    try:
        process.send_signal(sig)
        _, err = process.communicate(timeout=30)
        return process.returncode, err
    finally:
        process.kill()


@pytest.mark.parametrize("attempt", range(3))
def test_a_ctrl_c_right_after_the_address_stops_the_command(tmp_path: Path, attempt: int) -> None:
    """Ctrl-C as soon as the address is printed, while uvicorn is still starting: the
    dashboard's own handler is in place from before the address, so the signal is never
    lost between asyncio's handler and uvicorn's (it was: the child served on)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with trackplug.connect(url) as tracker:
        fill(tracker)
    process, _ = start_ui(url)
    returncode, err = stopped_by(process, signal.SIGINT)
    assert returncode == 0, err
    assert err.strip() == "trackplug ui: stopped"


def test_sigterm_stops_the_command_cleanly(tmp_path: Path) -> None:
    """SIGTERM (a service manager, ``kill``) ends it as Ctrl-C does: the store closed and
    exit 0, not the signal's death."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with trackplug.connect(url) as tracker:
        fill(tracker)
    process, address = start_ui(url)
    with urllib.request.urlopen(address + "api/runs", timeout=10) as response:
        assert response.status == 200
    returncode, err = stopped_by(process, signal.SIGTERM)
    assert returncode == 0, err
    assert err.strip() == "trackplug ui: stopped"


def test_the_command_refuses_a_missing_store(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trackplug.cli", "ui", f"sqlite:///{tmp_path / 'typo.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "does not exist" in out.stderr


def test_the_wheel_ships_the_page_and_uplot_with_its_licence(tmp_path: Path) -> None:
    build = pytest.importorskip("hatchling.build", reason="building the wheel needs hatchling")
    cwd = Path.cwd()
    os.chdir(Path(__file__).parents[1])
    try:
        wheel = tmp_path / build.build_wheel(str(tmp_path))
    finally:
        os.chdir(cwd)
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    static = "trackplug/ui/static/"
    for name in ("index.html", "app.js", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"):
        assert static + name in names, name
    assert "Provides-Extra: ui" in metadata


def test_the_live_tail_and_the_sample_read_pages() -> None:
    """The dashboard never holds a whole history: the sample (the facade's, for a backend
    without ``history_sampled``) and the live tail both read it a page at a time."""
    with trackplug.Tracker(PagesOnly()) as tracker:
        points = [MetricPoint("loss", 1.0 / (s + 1), s, s) for s in range(300)]
        tracker.log_points("r", points)
        client = TestClient(create_app(tracker), raise_server_exceptions=False)
        query = {"resource": "r", "key": "loss"}
        sample = client.get("/api/history", params={**query, "max_points": 20})
        assert sample.status_code == 200
        assert sample.json()["step"] == [p.step for p in sample_points(points, 20)]
        tail = client.get("/api/history", params={**query, "after_step": 298, "after_time": 298})
        assert tail.status_code == 200
        assert tail.json()["step"] == [298, 299]


def test_the_live_tail_reads_only_what_is_new() -> None:
    """A poll of a long live series seeks to the page's last point: no page from the
    start, no point before it read (25,000 points: pages of 10,000 would be read whole)."""
    backend = PagesOnly()
    with trackplug.Tracker(backend) as tracker:
        tracker.log_points("r", [MetricPoint("loss", 1.0, s, s) for s in range(25_000)])
        client = TestClient(create_app(tracker), raise_server_exceptions=False)
        query = {"resource": "r", "key": "loss", "after_step": 24_998, "after_time": 24_998}
        backend.calls.clear()
        tail = client.get("/api/history", params=query)
        assert tail.json()["step"] == [24_998, 24_999]
        assert backend.points_read == 2, "only the points from the last one the page has"
        assert all(where is not None for where, _ in backend.calls), "never the first page"
