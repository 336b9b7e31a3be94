"""Params, tags and runs through the facade: what only the facade decides (limits, refusal
by a backend without the hooks, fan-out, the outbox, copies between stores, run status on
exceptions and dead processes, steps). The backends' side is the contract's (ParamTests,
RunTests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trackplug
from trackplug import (
    ParamConflictError,
    Tracker,
    UnsupportedOperationError,
    ValidationError,
)
from trackplug._runs import _process_id, run_status
from trackplug.plugin import MemoryBackend


class MetricsOnly(MemoryBackend):
    """A backend written before params and tags: none of their hooks."""

    log_params = get_params = set_tags = get_tags = tagged = None  # type: ignore[assignment]


def test_a_param_keeps_its_json_type_and_the_same_value_again_is_a_no_op() -> None:
    with trackplug.connect("memory://") as t:
        t.log_params("m", {"lr": 0.1, "n": 3, "opt": "sgd", "on": True, "none": None})
        t.log_params("m", {"lr": 0.1, "n": 3})
        with pytest.raises(ParamConflictError, match=r"'n' of 'm' is already 3, not 3.0"):
            t.log_params("m", {"n": 3.0, "new": 1})  # 3 and 3.0 are two JSON values
        assert t.params("m") == {"lr": 0.1, "n": 3, "none": None, "on": True, "opt": "sgd"}
        assert type(t.params("m")["n"]) is int


def test_numpy_scalars_become_json_scalars() -> None:
    np = pytest.importorskip("numpy")
    with trackplug.connect("memory://") as t:
        t.log_params("m", {"a": np.int64(3), "b": np.float32(0.5), "c": np.bool_(True)})
        assert t.params("m") == {"a": 3, "b": 0.5, "c": True}
        assert [type(v) for v in t.params("m").values()] == [int, float, bool]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lr": float("inf")}, "finite"),
        ({"x": "a" * 6001}, "6000"),
        ({"x": 10**7000}, "6000"),
        ({"bad key!": 1}, "param key"),
        ({"x": b"bytes"}, "JSON scalars"),
        ({"x": "nul\x00"}, "control"),
    ],
)
def test_invalid_params_are_refused_naming_the_rule(
    params: dict[str, object], message: str
) -> None:
    with trackplug.connect("memory://") as t:
        with pytest.raises(ValidationError, match=message):
            t.log_params("m", params)
        assert t.params("m") == {}


def test_tags_replace_and_system_tags_are_reserved() -> None:
    with trackplug.connect("memory://") as t:
        t.set_tags("m", {"stage": "dev", "team": "a"})
        t.set_tags("m", {"stage": "prod"})
        assert t.tags("m") == {"stage": "prod", "team": "a"}
        for key in ("trackplug.run.status", "mlflow.runName"):
            with pytest.raises(ValidationError, match="reserved"):
                t.set_tags("m", {key: "x"})


def test_a_backend_without_the_hooks_is_refused_before_anything_is_written() -> None:
    memory = MemoryBackend()
    with Tracker(memory, MetricsOnly(), on_error="raise") as t:
        with pytest.raises(UnsupportedOperationError, match="keeps no params or tags"):
            t.log_params("m", {"lr": 0.1})
        with pytest.raises(UnsupportedOperationError):
            t.start_run("sgd")
        assert memory.get_params(trackplug.Resource("m")) == {}, "the primary was written"
        assert memory.tagged("trackplug.run.name", None) == []
        t.log_metric("m", "loss", 1.0)  # metrics still work
        t.copy_metrics("m", "n")  # and copies: there are no params to carry


def test_a_conflict_with_the_primary_reaches_no_secondary() -> None:
    primary, secondary = MemoryBackend(), MemoryBackend()
    with Tracker(primary, secondary, on_error="raise") as t:
        primary.log_params(trackplug.Resource("m"), {"lr": 0.1})  # only the primary has it
        with pytest.raises(ParamConflictError):
            t.log_params("m", {"lr": 0.2, "other": 1})
        assert secondary.get_params(trackplug.Resource("m")) == {}


def test_params_and_tags_wait_in_the_outbox_and_replay_in_order(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    box = tmp_path / "outbox.db"
    db.mkdir()  # a directory: SQLite cannot open it, so the secondary fails
    with trackplug.connect("memory://", f"sqlite:///{db}", outbox=str(box)) as t:
        with pytest.warns(trackplug.BackendWarning):
            t.log_params("m", {"lr": 0.1, "n": 3})
        t.set_tags("m", {"stage": "a"})
        t.set_tags("m", {"stage": "b"})
        assert t.outbox.pending() == 3
    db.rmdir()
    assert trackplug.sync(outbox=str(box)) == {f"sqlite:///{db}": 3}
    with trackplug.connect(f"sqlite:///{db}") as t:
        assert t.params("m") == {"lr": 0.1, "n": 3}
        assert t.tags("m") == {"stage": "b"}


def test_copy_moves_runs_params_and_tags_between_stores_idempotently(tmp_path: Path) -> None:
    src, dst = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with trackplug.connect(src) as t:
        with t.start_run("sgd", params={"lr": 0.1, "layers": 3}, tags={"team": "a"}) as run:
            run.log_metric("loss", 0.5)
        empty = t.start_run("idle")
        empty.end("killed")
    trackplug.copy(src, dst)
    trackplug.copy(src, dst)  # again: nothing changes, nothing conflicts
    with trackplug.connect(src) as a, trackplug.connect(dst) as b:
        assert b.runs() == a.runs()
        assert [r.status for r in b.runs()] == ["finished", "killed"]


def test_copy_into_a_store_without_tags_refuses_instead_of_dropping(tmp_path: Path) -> None:
    with trackplug.connect("memory://") as a, Tracker(MetricsOnly()) as b:
        a.log_metric("m", "loss", 1.0)
        a.log_params("m", {"lr": 0.1})
        with pytest.raises(UnsupportedOperationError):
            trackplug.copy(a, b)


def test_steps_count_up_per_key_inside_a_run() -> None:
    with trackplug.connect("memory://") as t, t.start_run("sgd") as run:
        for value in (3.0, 2.0):
            run.log_metric("loss", value)
        run.log_metric("acc", 0.5)
        run.log_metric("loss", 1.0, step=10)
        run.log_metric("loss", 0.5)
        run.log_metrics({"train": {"f1": 0.1}, "valid": {"f1": 0.2}})
        run.log_metrics({"train": {"f1": 0.3}, "valid": {"f1": 0.4}})
        steps = {key: [p.step for p in t.history(run.id, key)] for key in t.latest(run.id)}
    assert steps == {
        "acc": [0],
        "loss": [0, 1, 10, 11],
        "train_f1": [0, 1],
        "valid_f1": [0, 1],
    }


def test_ctrl_c_fails_the_run_and_close_finishes_a_forgotten_one() -> None:
    t = trackplug.connect("memory://")
    with pytest.raises(KeyboardInterrupt), t.start_run("sgd"):
        raise KeyboardInterrupt
    forgotten = t.start_run("sgd")
    assert [r.status for r in t.runs()] == ["failed", "running"]
    backend = t._primary.backend
    t.close()
    tags = backend.get_tags(trackplug.Resource(forgotten.id))  # type: ignore[attr-defined]
    assert tags["trackplug.run.status"] == "finished"


def test_run_ids_are_readable_sortable_and_unique() -> None:
    with trackplug.connect("memory://") as t:
        ids = [t.start_run("sgd").id for _ in range(50)]
        with pytest.raises(ValidationError):
            t.start_run("bad name!")
    assert len(set(ids)) == 50
    assert ids == sorted(ids)
    assert all(i.startswith("sgd-20") for i in ids)


def test_a_run_whose_process_died_reads_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    script = textwrap.dedent(
        f"""
        import os, trackplug
        t = trackplug.connect({url!r})
        run = t.start_run("sgd", params={{"lr": 0.1}})
        t.flush()
        os._exit(0)  # dies without ending the run: no atexit, no close
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    with trackplug.connect(url) as t:
        with t.start_run("sgd") as alive:
            assert {r.id: r.status for r in t.runs()}[alive.id] == "running"
        (killed,) = t.runs(status="killed")
        assert killed.params == {"lr": 0.1}
        assert killed.end is None


def test_runs_as_a_dataframe() -> None:
    pytest.importorskip("pandas")
    with trackplug.connect("memory://") as t:
        for lr in (0.1, 0.2):
            with t.start_run("sgd", params={"lr": lr}, tags={"team": "a"}) as run:
                run.log_metric("loss", lr * 10)
        frame = t.runs("sgd").to_pandas()
    assert list(frame.columns) == [
        "run_id",
        "name",
        "status",
        "start_time",
        "end_time",
        "params.lr",
        "metrics.loss",
        "tags.team",
    ]
    assert frame["params.lr"].tolist() == [0.1, 0.2]
    assert frame["status"].tolist() == ["finished", "finished"]


def test_best_among_the_runs_of_one_name() -> None:
    with trackplug.connect("memory://") as t:
        t.log_metric("not-a-run", "loss", 0.0)
        ids = {}
        for name, loss in (("sgd", 0.3), ("sgd", 0.1), ("adam", 0.05)):
            with t.start_run(name) as run:
                run.log_metric("loss", loss)
            ids[loss] = run.id
        assert t.best("loss", "min", 5, run_name="sgd") == [(ids[0.1], 0.1), (ids[0.3], 0.3)]
        assert t.best("loss", "min", 1) == [("not-a-run", 0.0)]


def test_the_cli_lists_runs_with_status_and_params(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from trackplug.cli import cli

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with trackplug.connect(url) as t:
        t.log_metric("plain", "loss", 2.0)
        for lr in (0.1, 0.01):
            with t.start_run("sgd", params={"lr": lr, "opt": "sgd"}) as run:
                run.log_metric("loss", lr)
    invoke = lambda *args: CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})  # noqa: E731
    ls = invoke("ls", url)
    assert ls.exit_code == 0, ls.output
    assert "finished" in ls.output
    assert "lr=0.01, opt='sgd'" in ls.output
    listed = json.loads(invoke("runs", url, "sgd", "-p", "lr=0.01", "--json").output)["runs"]
    assert [(r["id"], r["status"], r["params"]) for r in listed] == [
        (run.id, "finished", {"lr": 0.01, "opt": "sgd"})
    ]
    table = invoke("runs", url, "-m", "loss").output
    assert run.id in table
    assert "0.01" in table
    shown = json.loads(invoke("params", url, run.id, "--json").output)
    assert shown["params"] == {"lr": 0.01, "opt": "sgd"}
    assert shown["tags"] == {}
    assert "not KEY=VALUE" in invoke("runs", url, "-p", "lr").output


def test_a_process_id_reused_by_a_later_process_does_not_keep_a_run_running() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc: only a gone process id is detected")
    parent = os.getppid()  # alive, and not this process
    tags = {"trackplug.run.status": "running", "trackplug.run.host": socket.gethostname()}
    assert run_status({**tags, "trackplug.run.pid": _process_id(parent)}) == "running"
    reused = f"{parent}@1"  # the same id, but a process that started at another time
    assert run_status({**tags, "trackplug.run.pid": reused}) == "killed"
    elsewhere = {**tags, "trackplug.run.host": "another-machine", "trackplug.run.pid": reused}
    assert run_status(elsewhere) == "running"


def test_a_run_never_ends_before_it_starts() -> None:
    with trackplug.connect("memory://") as t:
        for _ in range(30):  # starts pushed ahead of the clock by the runs before them
            with t.start_run("quick"):
                pass
        assert all(run.end is not None and run.start <= run.end for run in t.runs())
