"""The ``trackplug`` command, driven for real: click's runner in-process, and the installed
console script in a subprocess. (``import trackplug`` not importing click, rich or
matplotlib is checked in test_import.py.)

Each command opens its own tracker, so tests that read what another command wrote need a
persistent store: the SQL backend's ``sqlite://``. They skip when it is not installed.
docs/guide/cli.md is checked too: every command it shows, run, prints what it shows.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import importlib.util
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trackplug import BackendError, Capabilities, Registry, hookimpl
from trackplug.cli import cli
from trackplug.cli._app import Session
from trackplug.plugin import BackendFactory, Register, UrlForm

DEMO_RESOURCES = ["demo/cnn", "demo/logreg", "demo/mlp", "demo/predictions"]
SECRET = "s3cr3t-pw"
needs_sql = pytest.mark.skipif(
    "sqlite" not in Registry().backends,
    reason="the SQL backend is not installed (pip install -e backends/sql): "
    "tests that read what another command wrote need a persistent sqlite:// store",
)
needs_mlflow = pytest.mark.skipif(
    "mlflow" not in Registry().backends,
    reason="the MLflow backend is not installed (pip install -e backends/mlflow)",
)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """``trackplug ARGS`` in-process; wide columns so tables are not wrapped."""
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **(env or {})})


def ok(*args: str, env: dict[str, str] | None = None) -> Result:
    result = run(*args, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == "" or "Note:" in result.stderr or "copying" in result.stderr
    return result


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """The error policy: non-zero exit, nothing on stdout, one ``Error:`` line, no
    traceback."""
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture
def demo_url(sqlite_url: str) -> str:
    """A store holding the default demo (3 models x 10 epochs, one prediction job)."""
    ok("demo", sqlite_url)
    return sqlite_url


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


# -- every command ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = ok(name, "--help")
    assert "Example:" in result.stdout
    assert f"  trackplug {name}" in result.stdout


def test_the_group_help_lists_every_command() -> None:
    result = ok("--help")
    for name in ("demo", "ls", "history", "best", "plot", "copy", "sync", "backends"):
        assert f"  {name} " in result.stdout


def test_the_package_docstring_names_every_command() -> None:
    import trackplug.cli

    for name in cli.commands:
        assert f"``{name}``" in (trackplug.cli.__doc__ or "")


def test_version() -> None:
    from importlib.metadata import version

    assert version("trackplug") in ok("--version").stdout


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["nope"], ["No such command 'nope'", "trackplug --help"]),
        (["history", "memory://"], ["Missing argument 'RESOURCE'", "usage: trackplug history"]),
        (["history", "notaurl", "r", "k"], ["'notaurl' is not a tracker URL"]),
        (["ls", "nosuch://x"], ["no installed backend serves 'nosuch://x'"]),
        (["best", "memory://", "bad..key"], ["metric key 'bad..key' is invalid"]),
        (["best", "memory://", "f1", "--limit", "0"], ["Invalid value for '-n' / '--limit'"]),
        (["history", "memory://", "r", "k"], ["memory:// has no resource 'r'"]),
        (["history", "memory://", "r", "k", "--csv", "--json"], ["choose one of --csv"]),
        (["plot", "memory://", "loss"], ["no resource in memory:// has metric 'loss'"]),
        (["copy", "memory://", "memory://", "-r", "x"], ["memory:// has no resource 'x'"]),
        (["demo", "memory://", "--models", "99"], ["Invalid value for '--models'"]),
    ],
)
def test_errors_are_one_line_with_a_non_zero_exit(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run(*args), *fragments)


def test_usage_errors_exit_2_and_other_errors_exit_1() -> None:
    assert run("nope").exit_code == 2
    assert run("ls", "nosuch://x").exit_code == 1


def test_debug_lets_the_traceback_through() -> None:
    result = run("--debug", "history", "notaurl", "r", "k")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ValidationError"


def test_the_default_url_without_its_backend_says_how_to_install_it(tmp_path: Path) -> None:
    # A real subprocess: TRACKPLUG_PLUGINS="" loads only the core's memory backend.
    env = {k: v for k, v in os.environ.items() if k != "TRACKPLUG_URL"}
    env["TRACKPLUG_PLUGINS"] = ""
    out = subprocess.run(
        [sys.executable, "-m", "trackplug.cli", "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("Error: no installed backend serves 'sqlite:///trackplug.db'")
    assert "pip install 'trackplug[sql]'" in out.stderr
    assert not (tmp_path / "trackplug.db").exists()


# -- redaction -------------------------------------------------------------------------------


def test_a_password_in_a_url_is_never_printed() -> None:
    url = f"mystore://bob:{SECRET}@db.example:5432/metrics"
    for args in (["ls", url], ["best", url, "f1"], ["copy", "memory://", url]):
        result = run(*args)
        assert SECRET not in result.output
        assert "bob:***@db.example" in assert_one_line_error(result)


def test_a_password_in_trackplug_url_is_never_printed() -> None:
    result = run("ls", env={"TRACKPLUG_URL": f"mystore://bob:{SECRET}@db/x"})
    assert SECRET not in result.output
    assert "bob:***@db" in assert_one_line_error(result)


def test_messages_are_scrubbed_of_every_secret_given_on_the_command_line() -> None:
    session = Session.from_args(["ls", f"postgresql://bob:{SECRET}@db/x?token=abc123"])
    message = f"login failed for postgresql://bob:{SECRET}@db/x?token=abc123: bad {SECRET}\n!"
    scrubbed = session.scrub(message)
    assert SECRET not in scrubbed
    assert "abc123" not in scrubbed
    assert scrubbed == "login failed for postgresql://bob:***@db/x?token=***: bad *** !"


@needs_sql
def test_a_password_is_redacted_from_a_backend_s_own_error() -> None:
    result = run("ls", f"postgresql://bob:{SECRET}@127.0.0.1:1/metrics")  # nothing listens
    assert SECRET not in result.output
    assert "postgresql://bob:***@127.0.0.1:1/metrics" in assert_one_line_error(result)


@needs_mlflow
def test_debug_prints_a_traceback_without_the_password() -> None:
    url = f"mlflow+http://bob:{SECRET}@127.0.0.1:1"  # nothing listens
    result = run("--debug", "ls", url, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert result.exit_code == 1
    assert isinstance(result.exception, BackendError)
    assert SECRET not in "".join(traceback.format_exception(result.exception))


READING_COMMANDS = [
    ["ls", "-"],
    ["history", "-", "r", "k"],
    ["best", "-", "k"],
    ["plot", "-", "k"],
    ["copy", "-", "memory://"],
]


@pytest.mark.parametrize("command", READING_COMMANDS)
@pytest.mark.parametrize(
    ("form", "kind"),
    [
        ("sqlite:///{}/typo.db", "file"),
        ("mlflow+sqlite:///{}/typo.db?experiment=x", "file"),
        ("mlflow+file://{}/typo", "folder"),
    ],
)
def test_reading_a_missing_store_does_not_create_it(
    command: list[str], form: str, kind: str, tmp_path: Path
) -> None:
    # Checked before any backend opens (and would create) the store: one line, exit 1.
    url = form.format(tmp_path)
    missing = tmp_path / ("typo.db" if kind == "file" else "typo")
    result = run(*[url if arg == "-" else arg for arg in command])
    assert result.exit_code == 1
    assert_one_line_error(result, f"{url} does not exist (no {kind} {missing});")
    assert list(tmp_path.iterdir()) == []


def test_reading_mlflow_checks_the_store_mlflow_tracking_uri_names(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'typo.db'}"}
    assert_one_line_error(
        run("ls", "mlflow://", env=env),
        f"mlflow:// does not exist (no file {tmp_path / 'typo.db'}, named by $MLFLOW_TRACKING_URI)",
    )
    assert list(tmp_path.iterdir()) == []


# -- demo ------------------------------------------------------------------------------------


def test_demo_into_memory_prints_the_leaderboard_and_where_data_lives() -> None:
    result = ok("demo", "memory://", "--models", "4", "--epochs", "5")
    out = result.stdout
    assert "Simulated 4 models x 5 epochs (seed 0)" in out
    assert "Leaderboard: valid_f1, best first" in out
    ranked = [line.split("│")[2].strip() for line in out.splitlines() if line.startswith("│")]
    assert sorted(ranked) == ["demo/cnn", "demo/gbt", "demo/logreg", "demo/mlp"]
    assert "Prediction job demo/predictions: 500 predictions (bird " in out
    assert "Data: memory:// (in memory: gone when this command ends" in out
    assert "Next:" not in out  # nothing to look at afterwards


def test_demo_counts_in_words() -> None:
    out = ok("demo", "memory://", "--models", "1", "--epochs", "1", "--rows", "1").stdout
    assert "Simulated 1 model x 1 epoch (seed 0) and a prediction job of 1 row: " in out


@needs_sql
def test_demo_is_deterministic_and_idempotent(sqlite_url: str) -> None:
    ok("demo", sqlite_url)
    first = json.loads(ok("ls", sqlite_url, "--json").stdout)
    ok("demo", sqlite_url)
    assert json.loads(ok("ls", sqlite_url, "--json").stdout) == first
    points = json.loads(ok("history", sqlite_url, "demo/cnn", "valid_loss", "--json").stdout)
    assert [p["step"] for p in points["points"]] == list(range(1, 11))


@needs_sql
def test_demo_on_the_default_url_writes_trackplug_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACKPLUG_URL", raising=False)
    result = ok("demo")
    assert f"Data: sqlite:///trackplug.db (file {tmp_path / 'trackplug.db'})" in result.stdout
    assert "Next: trackplug ls sqlite:///trackplug.db" in result.stdout
    assert (tmp_path / "trackplug.db").is_file()
    assert [r["id"] for r in json.loads(ok("ls", "--json").stdout)["resources"]] == DEMO_RESOURCES


# -- ls --------------------------------------------------------------------------------------


def test_ls_of_an_empty_store_says_so() -> None:
    result = run("ls", "memory://")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "No metrics in memory://.\n"
    assert json.loads(ok("ls", "memory://", "--json").stdout) == {
        "url": "memory://",
        "resources": [],
    }


@needs_sql
def test_ls_json_has_every_resource_latest_values_and_perf(demo_url: str) -> None:
    data = json.loads(ok("ls", demo_url, "--json").stdout)
    assert data["url"] == demo_url
    resources = {r["id"]: r for r in data["resources"]}
    assert sorted(resources) == DEMO_RESOURCES
    cnn = resources["demo/cnn"]
    assert cnn["perf"] == {"metric": "f1", "value": cnn["latest"]["valid_f1"]}
    assert sorted(cnn["latest"]) == [
        "learning_rate",
        "train_accuracy",
        "train_f1",
        "train_loss",
        "valid_accuracy",
        "valid_f1",
        "valid_loss",
    ]
    job = resources["demo/predictions"]
    assert job["perf"] is None
    assert job["latest"]["num_predictions"] == 500
    shares = [v for k, v in job["latest"].items() if k.startswith("class_distribution.")]
    assert math.isclose(sum(shares), 1.0)


@needs_sql
def test_ls_table_and_key_filter(demo_url: str) -> None:
    out = ok("ls", demo_url).stdout
    assert f"{demo_url}: 4 resources" in out
    for resource in DEMO_RESOURCES:
        assert f"│ {resource} " in out
    assert "f1 = " in out
    filtered = ok("ls", demo_url, "-k", "valid_*").stdout
    assert "valid_loss" in filtered
    assert "train_loss" not in filtered
    assert "demo/predictions" not in filtered  # no key matches
    assert run("ls", demo_url, "-k", "nothing*").stderr == (
        f"No metrics matching 'nothing*' in {demo_url}.\n"
    )


# -- history ---------------------------------------------------------------------------------


@needs_sql
def test_history_csv_json_and_table_agree(demo_url: str) -> None:
    args = ("history", demo_url, "demo/mlp", "valid_loss")
    rows = list(csv.DictReader(io.StringIO(ok(*args, "--csv").stdout)))
    data = json.loads(ok(*args, "--json").stdout)
    assert (data["resource"], data["key"]) == ("demo/mlp", "valid_loss")
    assert [int(r["step"]) for r in rows] == list(range(1, 11))
    assert [float(r["value"]) for r in rows] == [p["value"] for p in data["points"]]
    assert [int(r["timestamp"]) for r in rows] == [p["timestamp"] for p in data["points"]]
    table = ok(*args).stdout
    assert "valid_loss of demo/mlp" in table
    assert "2025-01-01T01:01:00.000Z" in table  # model 2 starts at 01:00, epoch 1 at +1 min
    latest = json.loads(ok("ls", demo_url, "--json").stdout)["resources"][2]["latest"]
    assert data["points"][-1]["value"] == latest["valid_loss"]


@needs_sql
def test_history_keeps_special_values_exactly(sqlite_url: str) -> None:
    import trackplug

    with trackplug.connect(sqlite_url) as tracker:
        for step, value in enumerate([math.nan, math.inf, -math.inf, -0.0, 0.1]):
            tracker.log_metric("r", "x", value, step=step, timestamp=1)
    rows = list(csv.DictReader(io.StringIO(ok("history", sqlite_url, "r", "x", "--csv").stdout)))
    assert [r["value"] for r in rows] == ["nan", "inf", "-inf", "-0.0", "0.1"]
    data = json.loads(ok("history", sqlite_url, "r", "x", "--json").stdout)
    assert [p["value"] for p in data["points"]] == ["NaN", "Infinity", "-Infinity", -0.0, 0.1]


@needs_sql
def test_history_of_a_misspelled_key_or_resource_suggests_one(demo_url: str) -> None:
    assert_one_line_error(
        run("history", demo_url, "demo/cnn", "valid_los"),
        "resource 'demo/cnn' has no metric 'valid_los'; did you mean 'valid_loss'",
    )
    assert_one_line_error(
        run("history", demo_url, "demo/cn", "valid_loss"), "did you mean 'demo/cnn'"
    )


# -- best ------------------------------------------------------------------------------------


@needs_sql
def test_best_ranks_by_the_latest_value_both_ways(demo_url: str) -> None:
    latest = {
        r["id"]: r["latest"]["valid_loss"]
        for r in json.loads(ok("ls", demo_url, "--json").stdout)["resources"]
        if "valid_loss" in r["latest"]
    }
    for flag, reverse in (("--max", True), ("--min", False)):
        data = json.loads(ok("best", demo_url, "valid_loss", flag, "--json").stdout)
        assert data["order"] == flag[2:]
        board = [(row["resource"], row["value"]) for row in data["leaderboard"]]
        assert board == sorted(latest.items(), key=lambda item: item[1], reverse=reverse)
        assert [row["rank"] for row in data["leaderboard"]] == [1, 2, 3]
    top = json.loads(ok("best", demo_url, "valid_f1", "-n", "1", "--json").stdout)
    assert [row["resource"] for row in top["leaderboard"]] == ["demo/cnn"]


@needs_sql
def test_best_table_and_unknown_metric(demo_url: str) -> None:
    out = ok("best", demo_url, "valid_loss", "--min", "--limit", "2").stdout
    assert f"{demo_url}: valid_loss, smallest first" in out
    assert out.count("│ demo/") == 2
    assert_one_line_error(
        run("best", demo_url, "valid_f2"), "has metric 'valid_f2'; did you mean 'valid_f1'"
    )


# -- plot ------------------------------------------------------------------------------------


@needs_sql
def test_plot_writes_a_png_of_the_default_size_with_every_resource(
    demo_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "loss.png"
    out = ok("plot", demo_url, "valid_loss", "-o", str(output)).stdout
    assert out == (
        f"Wrote {output} (800x500 px): valid_loss of 3 resources "
        "(demo/cnn, demo/logreg, demo/mlp).\n"
    )
    assert png_size(output) == (800, 500)
    from matplotlib import image

    pixels = image.imread(output)
    assert pixels.shape[:2] == (500, 800)
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}) > 3  # not blank


@needs_sql
def test_plot_named_resources_at_a_requested_size(demo_url: str, tmp_path: Path) -> None:
    output = tmp_path / "f1.png"
    args = ["plot", demo_url, "valid_f1", "demo/cnn", "demo/mlp", "-o", str(output)]
    out = ok(*args, "--width", "1234", "--height", "567", "--dpi", "150", "--log-y").stdout
    assert "(demo/cnn, demo/mlp)" in out
    assert png_size(output) == (1234, 567)


@needs_sql
def test_plot_defaults_to_key_png_in_the_working_directory(
    demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ok("plot", demo_url, "class_distribution.cat")
    assert png_size(tmp_path / "class_distribution.cat.png") == (800, 500)


@needs_sql
def test_plot_by_time_draws_dates_on_x(demo_url: str, tmp_path: Path) -> None:
    from matplotlib.dates import date2num

    from trackplug.cli._plot import draw

    output = tmp_path / "time.png"
    out = ok("plot", demo_url, "valid_loss", "demo/cnn", "--x", "time", "-o", str(output)).stdout
    assert out == f"Wrote {output} (800x500 px): valid_loss by time of 1 resources (demo/cnn).\n"
    assert png_size(output) == (800, 500)
    import trackplug

    with trackplug.connect(demo_url) as t:
        columns = t.history_columns("demo/cnn", "valid_loss")
    axes = draw({"demo/cnn": columns}, "valid_loss", (800, 500), x_axis="time").axes[0]
    assert axes.get_xlabel() == "time (UTC)"
    xs = list(axes.lines[0].get_xdata())
    assert xs[0] == datetime.datetime(2025, 1, 1, 2, 1)  # the demo's first cnn epoch, UTC
    assert date2num(xs[-1]) - date2num(xs[0]) == pytest.approx(9 / (24 * 60))  # 9 minutes
    by_step = draw({"demo/cnn": columns}, "valid_loss", (800, 500)).axes[0]
    assert by_step.get_xlabel() == "step"
    assert list(by_step.lines[0].get_xdata()) == list(range(1, 11))


# -- the URL is optional, schemes are suggested --------------------------------------------


@needs_sql
@pytest.mark.parametrize(
    "args",
    [
        ["best", "valid_f1"],
        ["best", "valid_f1", "--limit", "2"],
        ["best", "--limit", "2", "valid_f1"],
        ["history", "demo/cnn", "valid_loss", "--csv"],
        ["runs", "--json"],
        ["params", "demo/cnn", "--json"],
        ["plot", "valid_loss", "demo/cnn", "-o", "x.png"],
        ["export", "-k", "valid_f1"],
    ],
)
def test_reading_commands_default_their_url_like_ls(
    demo_url: str, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a URL, $TRACKPLUG_URL (else the embedded default) is read: the same output
    as with the URL given first."""
    monkeypatch.chdir(tmp_path)
    name, *rest = args
    given = ok(name, demo_url, *rest).stdout
    assert ok(*args, env={"TRACKPLUG_URL": demo_url}).stdout == given
    if name != "plot":
        assert given  # something was read


@needs_sql
def test_without_trackplug_url_the_embedded_default_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACKPLUG_URL", raising=False)
    ok("demo")
    assert "demo/cnn" in ok("best", "valid_f1").stdout
    assert "demo/cnn" in CliRunner().invoke(cli, ["best", "valid_f1"]).stdout


def test_an_option_s_value_is_not_taken_for_the_url(tmp_path: Path) -> None:
    """``-n 3`` is an option's value; the first positional argument decides."""
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    result = run("best", "-n", "3", missing, "valid_f1")
    assert_one_line_error(result, f"{missing} does not exist")


@pytest.mark.parametrize(
    "args",
    [["history", "runs.db", "r", "k"], ["runs", "runs.db", "sgd"], ["best", "-n", "2", "x", "f1"]],
)
def test_with_every_argument_given_the_first_is_the_url(args: list[str]) -> None:
    assert_one_line_error(run(*args), "is not a tracker URL: expected scheme://")


def test_a_missing_argument_is_still_named_with_the_url_optional(tmp_path: Path) -> None:
    result = run("history", f"sqlite:///{tmp_path / 'x.db'}")
    assert_one_line_error(
        result,
        "Missing argument 'RESOURCE'",
        "usage: trackplug history [OPTIONS] [URL] RESOURCE KEY",
    )
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("url", "guess"),
    [
        ("memroy://", "did you mean memory://?"),
        ("sqlit:///x.db", "did you mean sqlite://"),
        ("postgress://u@h/db", "did you mean postgres"),
        ("memroy+extra://", "did you mean memory://?"),
    ],
)
def test_a_mistyped_scheme_suggests_an_installed_one(url: str, guess: str) -> None:
    if guess.split()[-1].rstrip("?:/").split(":")[0] not in Registry().backends:
        pytest.skip(f"{guess}: that backend is not installed")
    assert_one_line_error(run("ls", url), guess)


@needs_sql
def test_postgres_is_postgresql_as_in_libpq() -> None:
    """Registered by the SQL backend (the core names no backend); opening it reaches
    PostgreSQL (here a closed port: the error is PostgreSQL's, not an unknown scheme)."""
    entries = Registry().backends
    assert entries["postgres"].factory is entries["postgresql"].factory
    result = run("ls", "postgres://me:pw-pw-pw-pw@127.0.0.1:1/metrics?timeout=2")
    line = assert_one_line_error(
        result, "cannot open PostgreSQL store postgres://me:***@127.0.0.1:1"
    )
    assert "pw-pw-pw-pw" not in line


@needs_sql
def test_plot_errors(demo_url: str, tmp_path: Path) -> None:
    assert_one_line_error(
        run("plot", demo_url, "valid_loss", "-o", str(tmp_path / "x.docx")),
        "'x.docx' is not an image file matplotlib writes; use one of",
    )
    assert_one_line_error(
        run("plot", demo_url, "valid_loss", "demo/predictions", "-o", str(tmp_path / "x.png")),
        "resource 'demo/predictions' has no metric 'valid_loss'",
    )
    assert_one_line_error(
        run("plot", demo_url, "valid_loss", "-o", str(tmp_path / "no" / "dir" / "x.png")),
        "No such file or directory",
    )


@needs_sql
def test_plot_without_matplotlib_gives_the_install_hint(
    demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "matplotlib",
        "matplotlib.backend_bases",
        "matplotlib.figure",
        "matplotlib.ticker",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    result = run("plot", demo_url, "valid_loss", "-o", str(tmp_path / "x.png"))
    assert assert_one_line_error(result) == (
        "Error: plotting needs matplotlib: pip install 'trackplug[plot]'"
    )
    assert not (tmp_path / "x.png").exists()


# -- copy ------------------------------------------------------------------------------------


@needs_sql
def test_copy_migrates_everything_then_resumes_with_nothing_to_do(
    demo_url: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = ok("copy", demo_url, target)
    assert result.stdout == (
        f"Copied 4 resources, 214 points from {demo_url} to {target} "
        "(0 points were already there).\n"
    )
    assert "4/4" in result.stderr  # the progress bar's last state
    source = json.loads(ok("ls", demo_url, "--json").stdout)["resources"]
    assert json.loads(ok("ls", target, "--json").stdout)["resources"] == source
    again = ok("copy", demo_url, target).stdout
    assert "Copied 4 resources, 0 points" in again
    assert "(214 points were already there)" in again


@needs_sql
def test_copy_chosen_resources_only(demo_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'some.db'}"
    out = ok("copy", demo_url, target, "-r", "demo/cnn", "--resource", "demo/predictions").stdout
    assert out.startswith("Copied 2 resources, 74 points")  # 10 epochs x 7 + 4 predictions
    ids = [r["id"] for r in json.loads(ok("ls", target, "--json").stdout)["resources"]]
    assert ids == ["demo/cnn", "demo/predictions"]


def test_copy_into_memory_warns_that_nothing_is_kept() -> None:
    result = run("copy", "memory://", "memory://")
    assert result.exit_code == 0
    assert "Note: memory:// keeps nothing once this command ends." in result.stderr
    assert result.stdout.startswith("Copied 0 resources, 0 points from memory:// to memory://")


# -- backends --------------------------------------------------------------------------------


def table_rows(out: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines()]


def backends_json(env: dict[str, str] | None = None) -> dict[str, list[dict[str, object]]]:
    """``{scheme: capabilities}`` from ``trackplug backends --json``."""
    data = json.loads(ok("backends", "--json", env=env).stdout)
    return {b["scheme"]: b["capabilities"] for b in data["backends"]}


def test_backends_table_and_json() -> None:
    from importlib.metadata import version

    out = ok("backends").stdout
    memory = ["memory://", "memory", "trackplug", version("trackplug"), "not persistent"]
    assert memory in table_rows(out)
    assert "Default store (" in out
    data = json.loads(ok("backends", "--json").stdout)
    memory_json = next(b for b in data["backends"] if b["scheme"] == "memory")
    assert memory_json["distribution"] == "trackplug"
    assert memory_json["capabilities"] == [
        {"url": "memory://", **dataclasses.asdict(Capabilities(persistent=False))}
    ]


@needs_sql
def test_backends_shows_a_sqlite_file_as_persistent_and_in_memory_sqlite_as_not() -> None:
    sqlite = backends_json()["sqlite"]
    assert [(form["url"], form["persistent"]) for form in sqlite] == [
        ("sqlite:///FILE", True),
        ("sqlite://", False),
    ]
    assert backends_json()["postgresql"][0]["persistent"] is True
    rows = table_rows(ok("backends").stdout)
    at = next(i for i, row in enumerate(rows) if row[:1] == ["sqlite://"])
    assert rows[at][4] == "sqlite:///FILE: persistent"
    assert rows[at + 1] == ["", "", "", "", "sqlite:// (in memory): not persistent"]


@needs_mlflow
def test_backends_shows_what_each_kind_of_mlflow_store_keeps(tmp_path: Path) -> None:
    from trackplug_mlflow.capabilities import CAPABILITIES_BY_KIND
    from trackplug_mlflow.urls import Kind

    def declared(kind: Kind, url: str) -> list[dict[str, object]]:
        return [{"url": url, **dataclasses.asdict(CAPABILITIES_BY_KIND[kind])}]

    found = backends_json()
    kinds: list[tuple[str, Kind]] = [
        ("mlflow+sqlite", "database"),
        ("mlflow+postgresql", "database"),
        ("mlflow+http", "server"),
        ("mlflow+https", "server"),
        ("mlflow+file", "file"),
    ]
    for scheme, kind in kinds:
        (form,) = found[scheme]  # its pattern, e.g. mlflow+sqlite:///FILE, and what it keeps
        assert str(form.pop("url")).startswith(f"{scheme}://"), scheme
        assert form == dataclasses.asdict(CAPABILITIES_BY_KIND[kind]), scheme
    assert CAPABILITIES_BY_KIND["file"] != CAPABILITIES_BY_KIND["database"]
    # mlflow:// keeps what the store MLflow's configuration names keeps, and says which.
    stores: list[tuple[str, Kind]] = [
        (f"file://{tmp_path}", "file"),
        (f"sqlite:///{tmp_path}/m.db", "database"),
    ]
    for uri, kind in stores:
        assert backends_json({"MLFLOW_TRACKING_URI": uri})["mlflow"] == declared(kind, "mlflow://")
    env = {"MLFLOW_TRACKING_URI": f"postgresql://bob:{SECRET}@127.0.0.1:1/db", "COLUMNS": "300"}
    out = ok("backends", env=env).stdout
    assert "(the store $MLFLOW_TRACKING_URI names: postgresql://bob:***@127.0.0.1:1/db)" in out
    assert SECRET not in out
    assert list(tmp_path.iterdir()) == []  # nothing was opened


def test_backends_names_the_default_store_from_the_environment() -> None:
    result = ok("backends", env={"TRACKPLUG_URL": f"mystore://u:{SECRET}@h/db"})
    assert (
        "Default store ($TRACKPLUG_URL): mystore://u:***@h/db, which no installed backend serves"
    ) in result.stdout
    assert SECRET not in result.stdout


class URLDependentPlugin:
    """A third party's plugin: one factory with two forms of URL, one whose declaration is
    broken."""

    class Factory(BackendFactory):
        def open(self, url: str, **options: object) -> object:
            raise NotImplementedError  # never opened by `trackplug backends`

        def forms(self) -> list[UrlForm]:
            return [
                UrlForm("byurl://HOST", Capabilities(persistent=True, infinity="reject")),
                UrlForm("byurl://", Capabilities(), "in memory"),
            ]

    class Broken(Factory):
        def forms(self) -> list[UrlForm]:
            raise RuntimeError("no answer")

    @staticmethod
    @hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("byurl", URLDependentPlugin.Factory())
        register("broken", URLDependentPlugin.Broken())


def test_backends_asks_a_factory_whose_capabilities_depend_on_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    found = [importlib.metadata.EntryPoint("byurl", f"{__name__}:URLDependentPlugin", "trackplug")]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: found)
    result = run("backends")
    assert result.exit_code == 0
    rows = [row for row in table_rows(result.stdout) if row]
    at = next(i for i, row in enumerate(rows) if row[0] == "byurl://")
    assert rows[at][4] == "byurl://HOST: persistent, infinity=reject"
    assert rows[at + 1][4] == "byurl:// (in memory): not persistent"
    broken = next(row for row in rows if row[0] == "broken://")
    assert broken[4] == "not declared"  # and the other backends are still listed
    assert result.stderr == "Warning: broken://: capabilities unknown: RuntimeError: no answer\n"


@pytest.mark.filterwarnings("default::trackplug.PluginWarning")
def test_a_broken_plugin_is_one_warning_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    group = "trackplug"
    found = [
        importlib.metadata.EntryPoint("memory", "trackplug._memory", group),
        importlib.metadata.EntryPoint("broken", "broken_plugin", group),  # tests/broken_plugin.py
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: found)
    result = run("backends")
    assert result.exit_code == 0
    assert result.stderr.startswith("Warning: trackplug plugin 'broken' (")
    assert "is skipped: ModuleNotFoundError" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "memory://" in result.stdout


# -- the installed script --------------------------------------------------------------------


def script() -> str:
    found = shutil.which("trackplug", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the trackplug console script is not installed next to this Python")
    return found


def test_the_installed_script_runs_the_demo_and_reports_errors_in_one_line() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    demo = subprocess.run(
        [script(), "demo", "memory://"], capture_output=True, text=True, env=env, timeout=60
    )
    assert demo.returncode == 0, demo.stderr
    assert "Leaderboard: valid_f1, best first" in demo.stdout
    bad = subprocess.run(
        [script(), "ls", f"mystore://bob:{SECRET}@h/db"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("Error: no installed backend serves 'mystore://bob:***@h/db'")
    assert bad.stderr.count("\n") == 1
    assert SECRET not in bad.stderr


@needs_sql
def test_the_installed_script_reads_what_an_earlier_run_wrote(sqlite_url: str) -> None:
    for args in (["demo", sqlite_url], ["best", sqlite_url, "valid_f1", "--json"]):
        out = subprocess.run([script(), *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["leaderboard"][0]["resource"] == "demo/cnn"


@needs_mlflow
def test_mlflow_s_log_lines_are_quiet_unless_debug(tmp_path: Path) -> None:
    # MLflow logs at INFO while it creates a database's tables. Subprocesses (run side by
    # side: each imports mlflow), because MLflow's log handler keeps the stderr it found.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPLUG_", "MLFLOW_"))}
    small = ["--models", "1", "--epochs", "1", "--rows", "10"]
    runs = {
        name: subprocess.Popen(
            [script(), *options, "demo", f"mlflow+sqlite:///{tmp_path / name}.db", *small],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, options in (("quiet", []), ("loud", ["--debug"]))
    }
    (out, quiet), (_, loud) = (run.communicate(timeout=120) for run in runs.values())
    assert [run.returncode for run in runs.values()] == [0, 0], (quiet, loud)
    assert "Leaderboard: valid_f1" in out
    assert quiet == ""
    assert "INFO mlflow" in loud


def test_no_command_module_imports_matplotlib_before_plotting() -> None:
    code = "import sys, trackplug.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"


@needs_sql
def test_sync_replays_the_outbox_once_the_backend_is_back(tmp_path: Path) -> None:
    import trackplug
    from trackplug._fanout import BackendWarning

    outbox = tmp_path / "outbox.db"
    primary = f"sqlite:///{tmp_path / 'runs.db'}"
    later = f"sqlite:///{tmp_path / 'not-yet' / 'runs.db'}"  # its folder does not exist yet
    with pytest.warns(BackendWarning), trackplug.connect(primary, later, outbox=outbox) as tracker:
        for step in range(3):
            tracker.log_metric("r", "loss", step / 4, step=step)
    assert_one_line_error(run("sync", "--outbox", str(outbox)), "Error: ")
    (tmp_path / "not-yet").mkdir()
    result = ok("sync", "--outbox", str(outbox))
    assert f"Sent 1 of 1 waiting writes to {later}." in result.stdout
    history = json.loads(ok("history", later, "r", "loss", "--json").stdout)
    assert [point["value"] for point in history["points"]] == [0.0, 0.25, 0.5]
    assert "is empty" in ok("sync", "--outbox", str(outbox)).stdout


def test_sync_without_an_outbox_has_nothing_to_do(tmp_path: Path) -> None:
    result = ok("sync", "--outbox", str(tmp_path / "none.db"))
    assert "Nothing to sync" in result.stdout


# -- the guide -------------------------------------------------------------------------------

GUIDE = Path(__file__).parent.parent / "docs" / "guide" / "cli.md"
#: How the guide names the temporary folder its commands ran in.
GUIDE_DIR = "/tmp/demo"
#: What differs from run to run: durations, elapsed times, where the sources are.
VOLATILE = [
    (r"in \d+\.\d+ s\.", "in … s."),
    (r"\d+:\d\d:\d\d ", "…:…:… "),
    (r'File "[^"]+", line \d+', 'File "…", line …'),
    (r"-\d{8}-\d{6}\.\d{3}-[0-9a-f]{4}", "-…"),  # a run's id
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "…"),  # a start or an end
    (r"\b\d\.\d s\b", "… s"),  # a run's duration
    (r'"start": \d+, "end": \d+', '"start": …, "end": …'),  # a run's, in ms (export)
]
needs_full_install = pytest.mark.skipif(
    not {"sqlite", "mlflow"} <= set(Registry().backends)
    or importlib.util.find_spec("matplotlib") is None
    or shutil.which("bash") is None,
    reason="the guide shows the README's full install (the SQL and MLflow backends, "
    "matplotlib) at a bash prompt",
)


def guide_commands(text: str) -> list[tuple[str, str]]:
    """``[(command, output)]`` of every ``$ command`` in the guide's console blocks."""
    found: list[tuple[str, str]] = []
    for block in re.findall(r"^```console\n(.*?)^```$", text, flags=re.M | re.S):
        for line in block.splitlines(keepends=True):
            if line.startswith("$ "):
                found.append((line[2:].rstrip("\n"), ""))
            else:
                command, output = found[-1]
                found[-1] = (command, output + line)
    return found


def run_guide_command(command: str, cwd: Path) -> str:
    """What ``command`` prints in a shell at a terminal 100 columns wide (stdout and stderr
    as they interleave), with ``cwd`` written as the guide writes it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPLUG_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    out = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    return out.stdout.replace(str(cwd), GUIDE_DIR)


def steady(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = re.sub(pattern, replacement, text)
    return text


def rewrite_guide(text: str, cwd: Path) -> str:
    """``text`` with every console block's outputs replaced by what its commands print now."""

    def rerun(block: re.Match[str]) -> str:
        lines = [line for line in block[1].splitlines(keepends=True) if line.startswith("$ ")]
        runs = [line + run_guide_command(line[2:].rstrip("\n"), cwd) for line in lines]
        return "```console\n" + "".join(runs) + "```"

    return re.sub(r"^```console\n(.*?)^```$", rerun, text, flags=re.M | re.S)


@needs_full_install
def test_the_guide_shows_what_each_command_prints(tmp_path: Path) -> None:
    """Every command of docs/guide/cli.md, in order, in one empty folder. After changing
    what a command prints, ``TRACKPLUG_REWRITE_GUIDE=1 pytest tests/test_cli.py -k guide``
    rewrites the page's outputs from real runs (then read the diff)."""
    if os.environ.get("TRACKPLUG_REWRITE_GUIDE"):
        GUIDE.write_text(rewrite_guide(GUIDE.read_text(), tmp_path))
        pytest.skip("docs/guide/cli.md rewritten from real runs: check its diff")
    for command, shown in guide_commands(GUIDE.read_text()):
        assert steady(run_guide_command(command, tmp_path)) == steady(shown), command


def test_the_guide_has_a_row_and_a_synopsis_for_every_command() -> None:
    text = GUIDE.read_text()
    for name in cli.commands:
        assert re.search(rf"^\| \[`{name}\b.*\]\(#{name}\) \|", text, flags=re.M), name
        assert re.search(rf"^## {name}\n\n```\ntrackplug {name}\b", text, flags=re.M), name


def test_plot_by_time_refuses_a_timestamp_past_the_dates_it_shows() -> None:
    pytest.importorskip("matplotlib")
    import click

    from trackplug import Columns
    from trackplug.cli._plot import draw

    columns = Columns([1, 2], [1_000, 2**62], [0.5, 0.25])
    with pytest.raises(
        click.ClickException, match=r"loss at step 2 has timestamp 4611686018427387904"
    ):
        draw({"r": columns}, "loss", (800, 500), x_axis="time")
