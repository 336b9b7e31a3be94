"""Schema migrations: a store written by an older trackplug-sql upgrades in place, in one
transaction, keeping every point bit-exact.

``fixtures/schema_v1.sqlite`` was written by the version-1 code (``fixtures/make_schema_v1.py``
says how) and ``fixtures/schema_v1.json`` holds what it must read back, every value as its
IEEE-754 bits. Version 2 (params and tags) is the first real change, version 3 (the
sampling rollup) the second; ``fixtures/schema_v2.sqlite`` is a version-2 file. Version 4
(a points row that is its key alone) rebuilds the points table; ``fixtures/schema_v3.sqlite``
is a version-3 file holding every kind of value. A test migration on top of the latest
(:data:`NEXT`) proves the path for the next ones.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
from trackplug_sql import SQLBackend, schema
from trackplug_sql.schema import Migration

import trackplug
from trackplug import BackendError, Tracker

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "schema_v1.json").read_text())

#: The migrations of this code (version 2: params and tags; 3: the sampling rollup).
REAL = schema.MIGRATIONS
#: The version after this code's.
NEXT = schema.latest_version() + 1
#: A plausible next version: a table of notes, filled from the perf records.
NOTES = Migration(
    NEXT,
    sqlite=(
        "CREATE TABLE trackplug_notes (resource TEXT NOT NULL, name TEXT NOT NULL, "
        "value TEXT NOT NULL, PRIMARY KEY (resource, name))",
        "INSERT INTO trackplug_notes SELECT resource, 'perf_metric', metric FROM trackplug_perf",
    ),
    postgresql=(
        'CREATE TABLE trackplug_notes (resource TEXT COLLATE "C" NOT NULL, name TEXT NOT NULL, '
        "value TEXT NOT NULL, PRIMARY KEY (resource, name))",
        "INSERT INTO trackplug_notes SELECT resource, 'perf_metric', metric FROM trackplug_perf",
    ),
)
#: A migration that fails half-way: its first statement must not survive, nor version 2.
BROKEN = Migration(
    NEXT,
    sqlite=("CREATE TABLE trackplug_half (x INTEGER)", "INSERT INTO no_such_table VALUES (1)"),
    postgresql=("CREATE TABLE trackplug_half (x BIGINT)", "INSERT INTO no_such_table VALUES (1)"),
)


def bits(value: float) -> int:
    found: int = struct.unpack("<q", struct.pack("<d", value))[0]
    return found


def contents(t: Tracker) -> dict[str, Any]:
    """Everything a tracker reads back, as the fixture's JSON writes it."""
    found: dict[str, Any] = {}
    for r in t.resources():
        perf = t.perf(r)
        found[r] = {
            "history": {
                k: [[p.step, p.timestamp, bits(p.value)] for p in t.history(r, k)]
                for k in t.latest(r)
            },
            "latest": {k: bits(v) for k, v in t.latest(r).items()},
            "perf": None if perf is None else [perf.metric, bits(perf.value)],
        }
    return found


def ranking(t: Tracker) -> dict[str, list[list[Any]]]:
    return {o: [[r, bits(v)] for r, v in t.best("valid_f1", o, 10)] for o in ("max", "min")}


@pytest.fixture
def v1_url(tmp_path: Path) -> str:
    """A copy of the version-1 file (opening switches it to WAL: never the original)."""
    copy = tmp_path / "v1.sqlite"
    shutil.copyfile(FIXTURES / "schema_v1.sqlite", copy)
    return f"sqlite:///{copy}"


def version_of(url: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return int(db.execute(schema.GET_VERSION).fetchone()[0])


def tables_of(url: str) -> set[str]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master")}


def test_the_fixture_is_a_version_1_file() -> None:
    with sqlite3.connect(f"file:{FIXTURES / 'schema_v1.sqlite'}?mode=ro", uri=True) as db:
        assert db.execute(schema.GET_VERSION).fetchone() == ("1",)


def test_this_version_reads_a_version_1_file_bit_exactly(v1_url: str) -> None:
    with trackplug.connect(v1_url) as t:
        assert contents(t) == EXPECTED["resources"]
        assert ranking(t) == EXPECTED["best_valid_f1"]
    assert version_of(v1_url) == schema.latest_version()


def test_version_2_upgrades_a_version_1_file_in_place_and_keeps_params_and_tags(
    v1_url: str,
) -> None:
    with trackplug.connect(v1_url) as t:
        assert contents(t) == EXPECTED["resources"]
        assert t.params("model-1") == {}
        assert t.tags("model-1") == {}
        t.log_params("model-1", {"lr": 0.01, "layers": 3, "opt": "sgd", "warm": True})
        t.set_tags("model-1", {"team": "vision"})
    assert {"trackplug_params", "trackplug_tags"} <= tables_of(v1_url)
    with trackplug.connect(v1_url) as t:  # reopened: nothing migrates twice
        assert contents(t) == EXPECTED["resources"]
        assert t.params("model-1") == {"layers": 3, "lr": 0.01, "opt": "sgd", "warm": True}
        assert t.tags("model-1") == {"team": "vision"}
    assert version_of(v1_url) == schema.latest_version()


def test_a_migration_upgrades_a_version_1_file_in_place_bit_exactly(
    v1_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "MIGRATIONS", (*REAL, NOTES))
    with trackplug.connect(v1_url) as t:
        assert contents(t) == EXPECTED["resources"]
        assert ranking(t) == EXPECTED["best_valid_f1"]
        t.log_metric("model-3", "loss", -0.0)  # and the upgraded store takes writes
    assert version_of(v1_url) == NEXT
    with sqlite3.connect(v1_url.removeprefix("sqlite:///")) as db:
        notes = db.execute("SELECT resource, value FROM trackplug_notes ORDER BY resource")
        assert notes.fetchall() == [("model-1", "f1"), ("model-1-copy", "f1"), ("model-2", "f1")]
    SQLBackend(v1_url).close()  # opening it again migrates nothing: no duplicate table


def test_a_new_store_is_built_by_the_same_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "MIGRATIONS", (*REAL, NOTES))
    url = f"sqlite:///{tmp_path / 'new.db'}"
    SQLBackend(url).close()
    assert version_of(url) == NEXT
    assert {"trackplug_params", "trackplug_tags", "trackplug_notes"} <= tables_of(url)


def test_a_failing_migration_changes_nothing(v1_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "MIGRATIONS", (*REAL, BROKEN))
    with pytest.raises(BackendError, match="no_such_table") as error:
        SQLBackend(v1_url)
    assert v1_url.removeprefix("sqlite:///") in str(error.value)
    assert version_of(v1_url) == 1  # versions 2.., in the same transaction, rolled back too
    assert not {"trackplug_half", "trackplug_params", "trackplug_blocks"} & tables_of(v1_url)
    monkeypatch.setattr(schema, "MIGRATIONS", ())
    with trackplug.connect(v1_url) as t:
        assert contents(t) == EXPECTED["resources"]


def test_a_store_of_a_newer_version_is_refused_untouched(
    v1_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "MIGRATIONS", (*REAL, NOTES))
    SQLBackend(v1_url).close()
    monkeypatch.setattr(schema, "MIGRATIONS", REAL)
    with pytest.raises(
        BackendError, match=rf"version {NEXT}, written by a newer.*up to {NEXT - 1}"
    ):
        SQLBackend(v1_url)
    assert version_of(v1_url) == NEXT


def test_postgresql_upgrades_in_one_transaction(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    search_path = pg_url.rpartition("search_path%3D")[2].partition("&")[0]
    base = pg_url.partition("?")[0]
    with trackplug.connect(pg_url) as t:
        t.log_metrics("m", {"valid": {"f1": -0.0}, "train": {"f1": float("nan")}}, "f1")
        before = contents(t)
    with psycopg.connect(base, options=f"-csearch_path={search_path}") as db:
        # back to version 1's tables: migrations 2 and 3 only added tables, and 4 rebuilds
        # the points table from the columns every version has
        for table in ("params", "tags", "rollups", "blocks"):
            db.execute(f"DROP TABLE trackplug_{table}")
        db.execute("UPDATE trackplug_meta SET value = '1' WHERE name = 'schema_version'")
    monkeypatch.setattr(schema, "MIGRATIONS", (*REAL, BROKEN))
    with pytest.raises(BackendError, match="no_such_table"):
        SQLBackend(pg_url)
    monkeypatch.setattr(schema, "MIGRATIONS", (*REAL, NOTES))
    with trackplug.connect(pg_url) as t:
        assert contents(t) == before
        t.log_params("m", {"lr": 0.5, "big": 2**70})
        assert t.params("m") == {"big": 2**70, "lr": 0.5}
    with psycopg.connect(base, options=f"-csearch_path={search_path}") as db:
        assert db.execute(schema.GET_VERSION).fetchone() == (str(NEXT),)
        assert db.execute("SELECT resource, value FROM trackplug_notes").fetchall() == [("m", "f1")]
        half = db.execute("SELECT to_regclass('trackplug_half')").fetchone()
        assert half == (None,)


@pytest.fixture
def v2_url(tmp_path: Path) -> str:
    copy = tmp_path / "v2.sqlite"
    shutil.copyfile(FIXTURES / "schema_v2.sqlite", copy)
    return f"sqlite:///{copy}"


def test_version_3_upgrades_a_version_2_file_and_samples_it_from_the_rollup(v2_url: str) -> None:
    """The rollup of each series is built by its first sampled read, then kept up to date."""
    expected = json.loads((FIXTURES / "schema_v2.json").read_text())
    with sqlite3.connect(f"file:{FIXTURES / 'schema_v2.sqlite'}?mode=ro", uri=True) as db:
        assert db.execute(schema.GET_VERSION).fetchone() == ("2",)
    with trackplug.connect(v2_url) as t:
        exact = [[p.step, p.timestamp, bits(p.value)] for p in t.history("run-1", "loss")]
        assert exact == expected["history"]
        sample = t.history_sampled("run-1", "loss", 100)
        assert [[p.step, p.timestamp, bits(p.value)] for p in sample] == expected["sample"]
        assert (t.params("run-1"), t.tags("run-1")) == (expected["params"], expected["tags"])
    assert version_of(v2_url) == schema.latest_version()
    with sqlite3.connect(v2_url.removeprefix("sqlite:///")) as db:
        (blocks,) = db.execute("SELECT count(*) FROM trackplug_blocks").fetchone()
    assert 0 < blocks < len(expected["history"]) // 10


V3 = json.loads((FIXTURES / "schema_v3.json").read_text())
#: A NaN with a payload and the sign set: no trackplug writes one (the facade makes every NaN
#: the canonical one), put into the version-3 file by hand.
PAYLOAD_NAN_BITS = -0x0007FFFFFFFFFFFF  # 0xFFF8000000000001


def histories(t: Tracker) -> dict[str, dict[str, list[list[int]]]]:
    return {
        r: {k: [[p.step, p.timestamp, bits(p.value)] for p in t.history(r, k)] for k in t.latest(r)}
        for r in t.resources()
    }


def latest_bits(t: Tracker) -> dict[str, dict[str, int]]:
    return {r: {k: bits(v) for k, v in t.latest(r).items()} for r in t.resources()}


@pytest.fixture
def v3_url(tmp_path: Path) -> str:
    copy = tmp_path / "v3.sqlite"
    shutil.copyfile(FIXTURES / "schema_v3.sqlite", copy)
    return f"sqlite:///{copy}"


def test_version_4_rebuilds_a_version_3_files_points_and_reads_them_bit_exactly(
    v3_url: str,
) -> None:
    """NaN, ±0.0, ±inf, negative values, subnormals and the largest finite values come back
    from their orders alone; a sampled series whose rollup was stale at version 3 samples as
    the rule does; the store takes writes and reopens without migrating again."""
    with sqlite3.connect(f"file:{FIXTURES / 'schema_v3.sqlite'}?mode=ro", uri=True) as db:
        assert db.execute(schema.GET_VERSION).fetchone() == ("3",)
    with trackplug.connect(v3_url) as t:
        assert histories(t) == V3["history"]
        assert latest_bits(t) == V3["latest"]
        sample = t.history_sampled("run-1", "wave", 50)
        assert [[p.step, p.timestamp, bits(p.value)] for p in sample] == V3["sample"]
        t.log_metric("run-1", "value", -0.0, step=10**6)
    assert version_of(v3_url) == schema.latest_version()
    with sqlite3.connect(v3_url.removeprefix("sqlite:///")) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(trackplug_points)")]
        assert columns == ["series", "step", "timestamp_ms", "value_order"]
        assert "trackplug_points_v3" not in {
            n for (n,) in db.execute("SELECT name FROM sqlite_master")
        }
    with trackplug.connect(v3_url) as t:
        last = t.history("run-1", "value")[-1]
        assert (last.step, bits(last.value)) == (10**6, bits(-0.0))
        assert histories(t)["run-2"] == V3["history"]["run-2"]


def test_a_nan_reads_back_as_the_canonical_nan_whatever_its_stored_payload(v3_url: str) -> None:
    """Version 3 kept a NaN's bits; version 4 keeps its order, the same for every NaN, and
    reads the canonical NaN, the one every backend holds (the facade's rule)."""
    with sqlite3.connect(v3_url.removeprefix("sqlite:///")) as db:
        (series,) = db.execute(
            "SELECT id FROM trackplug_series WHERE resource = 'run-1' AND key = 'value'"
        ).fetchone()
        db.execute(
            "INSERT INTO trackplug_points VALUES (?, 500, 1, ?, ?, NULL)",
            (series, -(2**63), PAYLOAD_NAN_BITS),
        )
    with trackplug.connect(v3_url) as t:
        (point,) = [p for p in t.history("run-1", "value") if p.step == 500]
    assert bits(point.value) == bits(float("nan")) != PAYLOAD_NAN_BITS


def test_postgresql_rebuilds_a_version_3_points_table(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version-3 file's histories, written as version 3 wrote its rows into a
    version-3 PostgreSQL store, read back bit-exactly after version 4 rebuilt the table."""
    import psycopg
    from trackplug_sql.codec import best_order, to_orders

    monkeypatch.setattr(schema, "MIGRATIONS", tuple(m for m in REAL if m.version <= 3))
    SQLBackend(pg_url).close()  # a version-3 store
    search_path = pg_url.rpartition("search_path%3D")[2].partition("&")[0]
    with psycopg.connect(pg_url.partition("?")[0], options=f"-csearch_path={search_path}") as db:
        for sid, (rid, key, points) in enumerate(
            (rid, key, points)
            for rid, keys in V3["history"].items()
            for key, points in keys.items()
        ):
            orders = to_orders([b for _, _, b in points])
            values = [struct.unpack("<d", struct.pack("<q", b))[0] for _, _, b in points]
            rows = [
                (sid, step, stamp, order, b, value)
                for (step, stamp, b), order, value in zip(points, orders, values, strict=True)
            ]
            step, stamp, b = points[-1]
            db.execute(
                "INSERT INTO trackplug_series (id, resource, key, step, timestamp_ms, "
                "value_order, value_bits, best_order, value) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (sid, rid, key, step, stamp, orders[-1], b, best_order(orders[-1]), values[-1]),
            )
            with db.cursor().copy("COPY trackplug_points FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    monkeypatch.setattr(schema, "MIGRATIONS", REAL)
    with trackplug.connect(pg_url) as t:
        assert histories(t) == V3["history"]
        assert latest_bits(t) == V3["latest"]
        sample = t.history_sampled("run-1", "wave", 50)
        assert [[p.step, p.timestamp, bits(p.value)] for p in sample] == V3["sample"]
    with psycopg.connect(pg_url.partition("?")[0], options=f"-csearch_path={search_path}") as db:
        assert db.execute(schema.GET_VERSION).fetchone() == (str(schema.latest_version()),)
        columns = db.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'trackplug_points'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
        assert [c for (c,) in columns] == ["series", "step", "timestamp_ms", "value_order"]
        key = db.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = 'trackplug_points'::regclass AND indisprimary"
        ).fetchone()
        assert key is not None
        assert key[0].endswith("(series, step, timestamp_ms, value_order)")
