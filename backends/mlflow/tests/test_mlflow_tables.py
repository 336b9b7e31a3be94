"""A database store read straight from MLflow's tables (:mod:`trackplug_mlflow.tables`):
the same answers as MLflow's own client, without importing mlflow; a schema it was not
checked against is left to the client."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_mlflow_native import fill_native_store
from trackplug_mlflow.reads import RunReads
from trackplug_mlflow.store import RunStore
from trackplug_mlflow.tables import VERIFIED_REVISIONS, TableReader, open_tables
from trackplug_mlflow.urls import parse_url

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Path:
    """An MLflow SQLite store MLflow's own API filled (nested, deleted, NaN, ±inf...)."""
    path = tmp_path_factory.mktemp("tables") / "native.db"
    path.write_bytes(template_db.read_bytes())
    fill_native_store(f"sqlite:///{path}")
    return path


def both(path: Path) -> tuple[TableReader, RunStore]:
    target = parse_url(f"mlflow+sqlite:///{path}")
    tables = open_tables(target)
    assert isinstance(tables, TableReader)
    return tables, RunStore(target)


def described(run: Any) -> tuple[Any, ...]:
    """What the backend reads of a run (NaN compared as its repr)."""
    info, data = run.info, run.data
    metrics = {key: repr(float(value)) for key, value in data.metrics.items()}
    return (
        str(info.run_id),
        str(info.experiment_id),
        info.run_name,
        info.start_time,
        metrics,
        dict(data.params),
        dict(data.tags),
    )


def test_the_template_revision_is_verified(template_db: Path) -> None:
    """The MLflow installed here creates a schema this module reads."""
    (revision,) = sqlite3.connect(template_db).execute("SELECT version_num FROM alembic_version")
    assert revision[0] in VERIFIED_REVISIONS


def test_the_tables_answer_as_mlflows_client(filled: Path) -> None:
    tables, client = both(filled)
    readers: tuple[RunReads, RunReads] = (tables, client)
    for view_all in (False, True):
        assert tables.experiments(view_all) == client.experiments(view_all)
    experiments = list(client.experiments(True))
    alpha = client.experiment(name="alpha")
    assert tables.experiment(name="alpha") == alpha
    assert tables.experiment(experiment_id=alpha.experiment_id) == alpha
    assert tables.experiment(name="nowhere") is None
    searches: list[dict[str, Any]] = [
        {},
        {"view_all": True},
        {"tag": ("team", "vision")},
        {"tag": ("mlflow.parentRunId", None)},
        {"order": ("x", "max")},
        {"order": ("x", "min"), "page_size": 2},
        {"order": ("loss", "min")},
        {"since": 0},
    ]
    for options in searches:
        found = [[described(r) for r in each.search(experiments, **options)] for each in readers]
        assert found[0] == found[1], options
        assert found[0]
    for run in client.search(experiments, view_all=True):
        run_id = run.info.run_id
        assert described(tables.get_run(run_id)) == described(client.get_run(run_id))
        assert tables.latest(run) == client.latest(run)
        for key in run.data.metrics:
            histories = [[repr(p) for p in reader.history(run_id, key)] for reader in readers]
            assert histories[0] == histories[1]


def test_pages_come_in_the_contracts_order(filled: Path) -> None:
    tables, client = both(filled)
    (batch,) = [
        r for r in client.search(list(client.experiments(False))) if r.info.run_name == "batch"
    ]
    for key in ("odd", "long"):
        whole = tables.history(batch.info.run_id, key)
        paged, cursor = [], None
        while True:
            page = tables.history_page(batch.info.run_id, key, cursor, 7)
            paged += page.points
            cursor = page.cursor
            if cursor is None:
                break
        assert [repr(p) for p in paged] == [repr(p) for p in whole]
        assert any(math.isnan(p.value) for p in whole) == (key == "odd")


def test_reading_commands_import_no_mlflow(filled: Path) -> None:
    """``ls``'s and ``best``'s reads, a history, params and tags: mlflow never imported."""
    script = f"""
import sys, trackplug
with trackplug.connect("mlflow+sqlite:///{filled}?runs=all") as t:
    assert t.resources(), "no resources"
    assert t.best("x", "max", 3)
    assert t.latest("alpha/train") and t.history("alpha/train", "loss")
    assert list(t.iter_history("beta/batch", "long", page_size=100))
    assert t.params("alpha/train") == {{"lr": "0.1"}}
    assert t.tags("alpha/train")["team"] == "vision"
assert "mlflow" not in sys.modules, sorted(m for m in sys.modules if m.startswith("mlflow"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_writes_go_through_mlflows_client_and_are_read_back(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trackplug

    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # mlflow.set_experiment's
    with trackplug.connect(sqlite_url) as t:
        t.log_metric("model", "loss", 0.5, step=1)
        t.log_params("model", {"lr": 0.1})
        assert t.latest("model") == {"loss": 0.5}
        assert t.params("model") == {"lr": "0.1"}
    assert "mlflow" in sys.modules


def test_other_schemas_and_missing_stores_are_left_to_the_client(
    tmp_path: Path, template_db: Path
) -> None:
    """A revision this module was not checked against (an older or newer MLflow), and a
    store MLflow has not created yet, are read through MLflow's client."""
    missing = parse_url(f"mlflow+sqlite:///{tmp_path / 'not-yet.db'}")
    assert open_tables(missing) is None
    assert not (tmp_path / "not-yet.db").exists()  # nothing created by looking
    other = tmp_path / "other.db"
    other.write_bytes(template_db.read_bytes())
    with sqlite3.connect(other) as db:
        db.execute("UPDATE alembic_version SET version_num = 'f0f0f0f0f0f0'")
    assert open_tables(parse_url(f"mlflow+sqlite:///{other}")) is None
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert open_tables(parse_url(f"mlflow+sqlite:///{empty}")) is None
