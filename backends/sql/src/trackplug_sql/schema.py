"""The schema and every statement, written once for SQLite and PostgreSQL.

Tables (``docs/backends/sql.md`` shows the query plans):

* ``trackplug_meta``: ``schema_version`` and nothing else yet: what :data:`MIGRATIONS` a
  store still needs.
* ``trackplug_series``: one row per (resource, key), with its latest point. Reads of
  ``get_metric``, ``latest``, ``resources`` and ``best`` touch only this small table.
* ``trackplug_points``: every point, keyed by ``(series, step, timestamp_ms, value_order)``,
  which is the history's order and the duplicate rule at once: ``value_order`` is a
  one-to-one function of a (canonical-NaN) value's bits, so equal keys are exact duplicates.
  Since version 4 the key is the whole row: a value is read back from its ``value_order``
  (:func:`trackplug_sql.codec.from_orders`).
* ``trackplug_perf``: the performance record of each resource.
* ``trackplug_params`` (version 2): each resource's write-once params, as JSON text (so a
  value comes back with its type).
* ``trackplug_tags`` (version 2): each resource's tags, indexed by ``(key, value)`` so that
  the runs of one name are found without a scan.
* ``trackplug_rollups`` and ``trackplug_blocks`` (version 3): the block-extremes rollup that
  ``history_sampled`` reads instead of the points (:mod:`trackplug_sql.rollup`): per series,
  its block width and the step from which its blocks are stale; per block of steps, its
  least and greatest points.
* version 4 rebuilds ``trackplug_points`` without ``value_bits`` and ``value``.

The DDL below is version 1's, forever: every later change is a :class:`Migration`, run on
new stores and old ones alike, so both are built by the same statements.

Statements use ``:name`` parameters, which both sqlite3 and SQLAlchemy's ``text()``
understand; they never contain ``::`` casts (``text()`` would read them as parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .codec import CANONICAL_NAN_BITS

__all__ = [
    "MIGRATIONS",
    "POSTGRESQL_DDL",
    "SCHEMA_VERSION",
    "SQLITE_DDL",
    "VALUE_BITS",
    "Migration",
    "PointColumns",
    "SeriesRow",
    "SpreadColumns",
    "best_order",
    "latest_version",
    "pending",
    "value_bits",
]


class Migration(NamedTuple):
    """One change of the tables, from ``version - 1`` to ``version``: statements for each
    database, run in order inside the transaction that records the new version."""

    version: int
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


def value_bits(order: str) -> str:
    """The value bits (``float_bits``) of the SQL expression ``order``, a ``value_order``:
    the inverse of :func:`trackplug_sql.codec.to_orders` (``codec.orders_to_bits``, which
    the reads use, in bulk), for the rollup's blocks, which keep the bits of their
    extremes. Non-negative orders are the bits; a negative value's order is its bits with
    the 63 low bits flipped (``~order`` with the sign bit set); the least order is the
    canonical NaN. ``-9223372036854775807 - 1``: SQLite reads the literal
    ``-9223372036854775808`` as REAL."""
    o = f"({order})"
    return (
        f"(CASE WHEN {o} >= 0 THEN {o} "
        f"WHEN {o} = -9223372036854775807 - 1 THEN {CANONICAL_NAN_BITS} "
        f"ELSE (~{o}) | (-9223372036854775807 - 1) END)"
    )


#: A point's value bits from its ``value_order`` column (:func:`value_bits`).
VALUE_BITS = value_bits("value_order")


def best_order(order: str) -> str:
    """:func:`trackplug_sql.codec.best_order` of the SQL expression ``order``: NULL for NaN
    (never ranked), -0.0's order (-1) as 0.0's, any other order as it is."""
    o = f"({order})"
    return f"(CASE WHEN {o} = -9223372036854775807 - 1 THEN NULL WHEN {o} = -1 THEN 0 ELSE {o} END)"


#: A block's least and greatest points (by ``value_order``, ties by history order).
_EXTREME_COLUMNS = ", ".join(
    f"{extreme}_{column} {{int}} NOT NULL"
    for extreme in ("min", "max")
    for column in ("step", "timestamp_ms", "value_order", "value_bits")
)

#: Every change since version 1, oldest first. A store is upgraded in place, in one
#: transaction, by the ones after its version; a store of a newer version is refused.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        sqlite=(
            """CREATE TABLE trackplug_params (
                resource TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (resource, key)) WITHOUT ROWID""",
            """CREATE TABLE trackplug_tags (
                resource TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (resource, key)) WITHOUT ROWID""",
            "CREATE INDEX trackplug_tags_by_value ON trackplug_tags (key, value, resource)",
        ),
        postgresql=(
            """CREATE TABLE trackplug_params (
                resource TEXT COLLATE "C" NOT NULL,
                key TEXT COLLATE "C" NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (resource, key))""",
            """CREATE TABLE trackplug_tags (
                resource TEXT COLLATE "C" NOT NULL,
                key TEXT COLLATE "C" NOT NULL,
                value TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (resource, key))""",
            "CREATE INDEX trackplug_tags_by_value ON trackplug_tags (key, value, resource)",
        ),
    ),
    # The sampling rollup. An existing store needs no filling here: no series has a rollup
    # row yet, so each one's blocks are built by its first sampled read (a read of its points
    # like ``history``), and kept up to date from then on.
    Migration(
        3,
        sqlite=(
            """CREATE TABLE trackplug_rollups (
                series INTEGER PRIMARY KEY,
                shift INTEGER NOT NULL,
                stale_from INTEGER)""",
            f"""CREATE TABLE trackplug_blocks (
                series INTEGER NOT NULL,
                block INTEGER NOT NULL,
                {_EXTREME_COLUMNS.format(int="INTEGER")},
                PRIMARY KEY (series, block)) WITHOUT ROWID""",
        ),
        postgresql=(
            """CREATE TABLE trackplug_rollups (
                series BIGINT PRIMARY KEY,
                shift INTEGER NOT NULL,
                stale_from BIGINT)""",
            f"""CREATE TABLE trackplug_blocks (
                series BIGINT NOT NULL,
                block BIGINT NOT NULL,
                {_EXTREME_COLUMNS.format(int="BIGINT")},
                PRIMARY KEY (series, block))""",
        ),
    ),
    # A points row that is its key alone. ``value_bits`` and ``value`` repeated the value
    # that ``value_order`` already holds: the order is a one-to-one function of a value's
    # bits, every NaN being the one canonical NaN (the facade's rule for every backend; a
    # NaN's payload was never a metric, and two NaNs of one step and time were already one
    # duplicate), so reads rebuild the bits from it (codec.from_orders). Dropping both cut
    # SQLite's insert CPU by 45% (one of them: 28%) and the table by 41%
    # (docs/backends/sql.md, "Exactness"). The table is rebuilt, not altered: SQLite's DROP
    # COLUMN needs 3.35 and PostgreSQL's leaves the dropped values in every row on disk. In
    # PostgreSQL the primary key is added after the copy (one sorted build, not one index
    # insertion per row); it no longer INCLUDEs anything: the key is every column.
    Migration(
        4,
        sqlite=(
            "ALTER TABLE trackplug_points RENAME TO trackplug_points_v3",
            """CREATE TABLE trackplug_points (
                series INTEGER NOT NULL,
                step INTEGER NOT NULL,
                timestamp_ms INTEGER NOT NULL,
                value_order INTEGER NOT NULL,
                PRIMARY KEY (series, step, timestamp_ms, value_order)) WITHOUT ROWID""",
            "INSERT INTO trackplug_points SELECT series, step, timestamp_ms, value_order "
            "FROM trackplug_points_v3 ORDER BY series, step, timestamp_ms, value_order",
            "DROP TABLE trackplug_points_v3",
        ),
        postgresql=(
            "ALTER TABLE trackplug_points RENAME TO trackplug_points_v3",
            """CREATE TABLE trackplug_points (
                series BIGINT NOT NULL,
                step BIGINT NOT NULL,
                timestamp_ms BIGINT NOT NULL,
                value_order BIGINT NOT NULL)""",
            "INSERT INTO trackplug_points SELECT series, step, timestamp_ms, value_order "
            "FROM trackplug_points_v3",
            "DROP TABLE trackplug_points_v3",
            "ALTER TABLE trackplug_points "
            "ADD PRIMARY KEY (series, step, timestamp_ms, value_order)",
        ),
    ),
)


def latest_version() -> int:
    """The version this code writes (read at call time, so a test can add a migration)."""
    return MIGRATIONS[-1].version if MIGRATIONS else 1


def pending(version: int) -> tuple[Migration, ...]:
    """The migrations a store of ``version`` needs, in order."""
    return tuple(m for m in MIGRATIONS if m.version > version)


#: The version this code writes.
SCHEMA_VERSION = latest_version()


class PointColumns(NamedTuple):
    """A batch of point rows as columns, in the order the insert statements take them."""

    series: Sequence[int]
    step: Sequence[int]
    timestamp_ms: Sequence[int]
    value_order: Sequence[int]


POINT_COLUMNS = ", ".join(PointColumns._fields)

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS trackplug_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS trackplug_series (
        id INTEGER PRIMARY KEY,
        resource TEXT NOT NULL,
        key TEXT NOT NULL,
        step INTEGER NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        value_order INTEGER NOT NULL,
        value_bits INTEGER NOT NULL,
        best_order INTEGER,
        value REAL,
        UNIQUE (resource, key))""",
    "CREATE INDEX IF NOT EXISTS trackplug_series_best "
    "ON trackplug_series (key, best_order, resource)",
    """CREATE TABLE IF NOT EXISTS trackplug_points (
        series INTEGER NOT NULL,
        step INTEGER NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        value_order INTEGER NOT NULL,
        value_bits INTEGER NOT NULL,
        value REAL,
        PRIMARY KEY (series, step, timestamp_ms, value_order)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS trackplug_perf (
        resource TEXT PRIMARY KEY,
        metric TEXT NOT NULL,
        value_bits INTEGER NOT NULL,
        value REAL)""",
)

# COLLATE "C": ids and keys sort by code point, as Python sorts them (the database's
# locale collation would not). The points' primary key INCLUDEs the bits, so a history is
# an index-only scan (version 4: the key is the whole row). No foreign key: its per-row
# trigger would halve insert speed, and series ids only ever come from the same transaction.
POSTGRESQL_DDL = (
    'CREATE TABLE IF NOT EXISTS trackplug_meta (name TEXT COLLATE "C" PRIMARY KEY, '
    "value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS trackplug_series (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        resource TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        step BIGINT NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        value_order BIGINT NOT NULL,
        value_bits BIGINT NOT NULL,
        best_order BIGINT,
        value DOUBLE PRECISION,
        UNIQUE (resource, key))""",
    "CREATE INDEX IF NOT EXISTS trackplug_series_best "
    "ON trackplug_series (key, best_order, resource)",
    """CREATE TABLE IF NOT EXISTS trackplug_points (
        series BIGINT NOT NULL,
        step BIGINT NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        value_order BIGINT NOT NULL,
        value_bits BIGINT NOT NULL,
        value DOUBLE PRECISION,
        PRIMARY KEY (series, step, timestamp_ms, value_order) INCLUDE (value_bits))""",
    """CREATE TABLE IF NOT EXISTS trackplug_perf (
        resource TEXT COLLATE "C" PRIMARY KEY,
        metric TEXT NOT NULL,
        value_bits BIGINT NOT NULL,
        value DOUBLE PRECISION)""",
)

GET_VERSION = "SELECT value FROM trackplug_meta WHERE name = 'schema_version'"
#: Version 1, recorded with the tables it creates.
SET_VERSION = (
    "INSERT INTO trackplug_meta (name, value) VALUES ('schema_version', '1') "
    "ON CONFLICT (name) DO NOTHING"
)
UPGRADE_VERSION = "UPDATE trackplug_meta SET value = :version WHERE name = 'schema_version'"

# -- writes ------------------------------------------------------------------------------

_SET_LATEST = """
    ON CONFLICT (resource, key) DO UPDATE SET
        step = excluded.step, timestamp_ms = excluded.timestamp_ms,
        value_order = excluded.value_order, value_bits = excluded.value_bits,
        best_order = excluded.best_order, value = excluded.value
    WHERE (excluded.step, excluded.timestamp_ms, excluded.value_order)
        > (trackplug_series.step, trackplug_series.timestamp_ms, trackplug_series.value_order)
"""
SERIES_COLUMNS = "resource, key, step, timestamp_ms, value_order, value_bits, best_order, value"
#: A series row as the upserts take it: :data:`SERIES_COLUMNS`, its latest point.
SeriesRow = tuple[str, str, int, int, int, int, int | None, float]


def upsert_series(rows: str) -> str:
    """Create each series of ``rows`` (a VALUES or SELECT of :data:`SERIES_COLUMNS`) or
    move its latest point forward (never back: replays are harmless)."""
    return f"INSERT INTO trackplug_series ({SERIES_COLUMNS}) {rows}" + _SET_LATEST


#: What an upsert returns of each series it created or moved forward (where the database
#: has RETURNING): the write needs no other statement for their ids.
RETURNING_SERIES = " RETURNING resource, key, id"


def upsert_series_values(rows: int, placeholder: str) -> str:
    """:func:`upsert_series` of ``rows`` rows of positional parameters (``?`` for sqlite3,
    ``%s`` for psycopg), returning the ids it touched."""
    row = f"({', '.join([placeholder] * len(SERIES_COLUMNS.split(', ')))})"
    return upsert_series(f"VALUES {', '.join([row] * rows)}") + RETURNING_SERIES


class SpreadColumns(NamedTuple):
    """The points of a write spread over many series, as columns: point ``i`` is of the
    series ``(resource[i], key[i])``. :func:`upsert_spread` and :func:`insert_spread` take
    each point as a row of these six parameters, in this order."""

    resource: Sequence[str]
    key: Sequence[str]
    step: Sequence[int]
    timestamp_ms: Sequence[int]
    value_order: Sequence[int]
    value: Sequence[float]


#: The rows of a spread write: ``VALUES`` of ``{rows}`` rows of six ``{placeholder}``s.
_SPREAD = "(VALUES {values}) AS v"


def _spread_values(rows: int, placeholder: str) -> str:
    row = f"({', '.join([placeholder] * len(SpreadColumns._fields))})"
    return _SPREAD.format(values=", ".join([row] * rows))


def upsert_spread(rows: int, placeholder: str) -> str:
    """:func:`upsert_series` of every point of ``rows`` :class:`SpreadColumns` rows, in
    order: each creates its series or moves it forward (never back), so the latest point
    of each series wins without Python finding it; the bits and ``best_order`` are derived
    from the order in SQL. (``WHERE true``: SQLite's parser needs it before ON CONFLICT.)"""
    derived = f"{value_bits('v.column5')}, {best_order('v.column5')}"
    return upsert_series(
        "SELECT v.column1, v.column2, v.column3, v.column4, v.column5, "
        f"{derived}, v.column6 FROM {_spread_values(rows, placeholder)} WHERE true"
    )


def insert_spread(rows: int, placeholder: str) -> str:
    """Insert the points of ``rows`` :class:`SpreadColumns` rows (after
    :func:`upsert_spread` of the same), each series id found by the database in the series'
    unique index, exact duplicates ignored."""
    return (
        f"INSERT INTO trackplug_points ({POINT_COLUMNS}) "
        f"SELECT s.id, v.column3, v.column4, v.column5 FROM {_spread_values(rows, placeholder)} "
        "JOIN trackplug_series AS s ON s.resource = v.column1 AND s.key = v.column2 "
        "WHERE true ON CONFLICT DO NOTHING"
    )


def mark_spread_stale(rows: int, placeholder: str) -> str:
    """The rollups of the series of ``rows`` :class:`SpreadColumns` rows marked stale
    from the least step among them (as a write marks all its series from its least step)."""
    return (
        f"WITH v AS (SELECT * FROM {_spread_values(rows, placeholder)}) "
        "UPDATE trackplug_rollups SET stale_from = (SELECT min(column3) FROM v) "
        "WHERE series IN (SELECT s.id FROM v JOIN trackplug_series AS s "
        "ON s.resource = v.column1 AND s.key = v.column2) "
        "AND (stale_from IS NULL OR stale_from > (SELECT min(column3) FROM v))"
    )


#: Whether any series has a rollup (else a spread write marks none stale).
ANY_ROLLUP = "SELECT 1 FROM trackplug_rollups LIMIT 1"

SET_PERF = """
    INSERT INTO trackplug_perf (resource, metric, value_bits, value)
    VALUES (:resource, :metric, :value_bits, :value)
    ON CONFLICT (resource) DO UPDATE SET
        metric = excluded.metric, value_bits = excluded.value_bits, value = excluded.value
"""

# copy_metrics: the points are one INSERT ... SELECT; the series (latest points) and the
# perf record follow in the same transaction. "WHERE" before "ON CONFLICT" is required by
# SQLite's parser in INSERT ... SELECT.
COPY_SERIES = (
    "INSERT INTO trackplug_series (resource, key, step, timestamp_ms, value_order, "
    "value_bits, best_order, value) SELECT CAST(:target AS TEXT), key, step, timestamp_ms, "
    "value_order, value_bits, best_order, value FROM trackplug_series "
    "WHERE resource = :source" + _SET_LATEST
)
COPY_POINTS = f"""
    INSERT INTO trackplug_points ({POINT_COLUMNS})
    SELECT target.id, p.step, p.timestamp_ms, p.value_order
    FROM trackplug_series AS source
    JOIN trackplug_points AS p ON p.series = source.id
    JOIN trackplug_series AS target ON target.resource = :target AND target.key = source.key
    WHERE source.resource = :source
    ON CONFLICT DO NOTHING
"""
COPY_PERF = """
    INSERT INTO trackplug_perf (resource, metric, value_bits, value)
    SELECT CAST(:target AS TEXT), metric, value_bits, value FROM trackplug_perf
    WHERE resource = :source
    ON CONFLICT (resource) DO UPDATE SET
        metric = excluded.metric, value_bits = excluded.value_bits, value = excluded.value
"""

# params: inserted unless held (then compared by the backend, in the same transaction)
INSERT_PARAM = (
    "INSERT INTO trackplug_params (resource, key, value) VALUES (:resource, :key, :value) "
    "ON CONFLICT (resource, key) DO NOTHING"
)
SET_TAG = (
    "INSERT INTO trackplug_tags (resource, key, value) VALUES (:resource, :key, :value) "
    "ON CONFLICT (resource, key) DO UPDATE SET value = excluded.value"
)

# -- reads -------------------------------------------------------------------------------

# A history: one range of the points' primary key, read in its order (no sort). The series
# is a scalar subquery, not a join, so PostgreSQL knows the range is one series and reads it
# by an index-only scan in key order.
_HISTORY = """
    SELECT step, timestamp_ms, value_order FROM trackplug_points
    WHERE series = (SELECT id FROM trackplug_series WHERE resource = :resource AND key = :key)
    {after}ORDER BY step, timestamp_ms, value_order{limit}
"""
_AFTER = "AND (step, timestamp_ms, value_order) > (:step, :timestamp_ms, :value_order)\n    "


def history_statement(after: bool, limit: str) -> str:
    """A history read: from its first point, or (``after``) from after the point order
    ``(:step, :timestamp_ms, :value_order)``, with the clause ``limit`` ("" for none)."""
    return _HISTORY.format(after=_AFTER if after else "", limit=limit)


HISTORY = history_statement(after=False, limit="")
#: A page of a history (``history_page``), keyset paging: the first ``:limit`` points, or
#: the ``:limit`` points after a point order (the page starts inside the primary key range,
#: never by OFFSET). Keyed by whether the page follows a point.
HISTORY_PAGE = {after: history_statement(after, " LIMIT :limit") for after in (False, True)}
# history_sampled (``trackplug._model.sample_points``): the series, whether it has more
# points than asked for (reading at most that many), its first and last points, then each
# bucket's least and greatest points (per store: sqlite.py, postgresql.py).
SERIES_ID = "SELECT id FROM trackplug_series WHERE resource = :resource AND key = :key"
COUNT_UP_TO = (
    "SELECT count(*) FROM (SELECT 1 FROM trackplug_points WHERE series = :series "
    "LIMIT :limit) AS head"
)
SAMPLE_ENDS = {
    end: "SELECT step, timestamp_ms, value_order FROM trackplug_points "
    f"WHERE series = :series ORDER BY step {d}, timestamp_ms {d}, value_order {d} LIMIT 1"
    for end, d in (("first", "ASC"), ("last", "DESC"))
}
GET_METRIC = "SELECT value_bits FROM trackplug_series WHERE resource = :resource AND key = :key"
LATEST = "SELECT key, value_bits FROM trackplug_series WHERE resource = :resource ORDER BY key"
RESOURCES = "SELECT DISTINCT resource FROM trackplug_series ORDER BY resource"
GET_PERF = "SELECT metric, value_bits FROM trackplug_perf WHERE resource = :resource"
GET_PARAMS = "SELECT key, value FROM trackplug_params WHERE resource = :resource ORDER BY key"
GET_TAGS = "SELECT key, value FROM trackplug_tags WHERE resource = :resource ORDER BY key"
TAGGED = "SELECT resource FROM trackplug_tags WHERE key = :key ORDER BY resource"
TAGGED_VALUE = (
    "SELECT resource FROM trackplug_tags WHERE key = :key AND value = :value ORDER BY resource"
)
# NaN latest values have a NULL best_order and are never ranked.
BEST = {
    order: "SELECT resource, value_bits FROM trackplug_series "
    "WHERE key = :key AND best_order IS NOT NULL "
    f"ORDER BY best_order {direction}, resource LIMIT :limit"
    for order, direction in (("max", "DESC"), ("min", "ASC"))
}
