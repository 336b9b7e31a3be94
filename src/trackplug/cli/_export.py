"""``trackplug export``: a store's tables (``trackplug._export``) as CSV, JSON Lines or Parquet.

Rows are written as they are read, so memory stays bounded however long the histories:
CSV and JSON Lines a row at a time, Parquet a row group of :data:`BATCH_ROWS` at a time.
The metrics table comes as pages of columns (:func:`write_metrics`): its text rows are
zipped from the columns, its Parquet columns are the pages' arrays (no copy per point).

- CSV: a header, then a row per line; values exactly (Python's ``repr``: ``nan``, ``inf``,
  ``-inf``, ``-0.0``), None as an empty cell; a param's value, and a run's params and tags,
  as JSON text (so ``0.01``, ``"sgd"`` and ``true`` keep their types).
- JSON Lines: one JSON object per line; NaN and infinities as the strings ``"NaN"``,
  ``"Infinity"``, ``"-Infinity"`` (JSON has none), None as null, params with their type.
- Parquet (pyarrow, imported only for it): typed columns (int64 steps and timestamps,
  float64 values with NaN, ±inf and -0.0 as they are); params and tags as JSON text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import IO, Any, Literal

import click

from .._export import METRIC_COLUMNS, PARAM_COLUMNS, RUN_COLUMNS, MetricPage, TableName
from ._output import json_value

__all__ = [
    "BATCH_ROWS",
    "FORMATS",
    "PARQUET_HINT",
    "Format",
    "columns_of",
    "write",
    "write_metrics",
]

Format = Literal["csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "json", "parquet")
#: Rows per Parquet row group (and per batch held in memory).
BATCH_ROWS = 16_384
PARQUET_HINT = "--format parquet needs pyarrow: pip install pyarrow"


def columns_of(table: TableName) -> Sequence[str]:
    """The columns of ``table``, in order."""
    return {"metrics": METRIC_COLUMNS, "runs": RUN_COLUMNS, "params": PARAM_COLUMNS}[table]


def write(
    table: TableName, rows: Iterable[Sequence[Any]], file_format: Format, open_output: Opener
) -> int:
    """Write ``rows`` of ``table`` in ``file_format`` to the stream ``open_output`` gives
    (text for CSV and JSON, binary for Parquet); returns how many rows were written."""
    if file_format == "parquet":
        return _write_parquet(table, rows, open_output)
    out = open_output(False)
    if file_format == "csv":
        return _write_csv(table, rows, out)
    return _write_json_lines(table, rows, out)


def write_metrics(pages: Iterable[MetricPage], file_format: Format, open_output: Opener) -> int:
    """Write the metrics table, given as pages of columns, as :func:`write` writes its
    rows (the same text and values); returns how many rows were written."""
    if file_format == "parquet":
        return _write_parquet_pages(pages, open_output)
    if file_format == "json":
        return _write_json_pages(pages, open_output(False))
    return _write_csv_pages(pages, open_output(False))


#: Opens the output: ``open_output(binary)``.
Opener = Callable[[bool], IO[Any]]


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _as_text(table: TableName, rows: Iterable[Sequence[Any]]) -> Iterable[Sequence[Any]]:
    """Rows with their cells as CSV and Parquet hold them: params and tags as JSON text."""
    if table == "runs":
        return ([*row[:5], _json_text(row[5]), _json_text(row[6])] for row in rows)
    if table == "params":
        return ([*row[:3], _json_text(row[3])] for row in rows)
    return rows


def _write_csv(table: TableName, rows: Iterable[Sequence[Any]], out: IO[str]) -> int:
    """csv writes a float as its ``repr`` (exact: ``nan``, ``inf``, ``-0.0``) and None as
    an empty cell."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns_of(table))
    counted = _Counted(iter(_as_text(table, rows)))
    writer.writerows(counted)
    return counted.count


def _write_csv_pages(pages: Iterable[MetricPage], out: IO[str]) -> int:
    """The text :func:`_write_csv` writes, built from a page's columns: the names' cells
    once per page (by csv, so quoted as it quotes them), then per point ``int``'s and
    ``float``'s ``repr``, which csv writes as they are (no number needs quoting)."""
    csv.writer(out, lineterminator="\n").writerow(METRIC_COLUMNS)
    names = io.StringIO()
    name_writer = csv.writer(names, lineterminator="\n")  # the same quoting as the rows
    count = 0
    for page in pages:
        names.seek(0)
        names.truncate()
        name_writer.writerow(page[:3])
        head = names.getvalue()[:-1] + ","
        out.writelines(
            f"{head}{step},{stamp},{value!r}\n"
            for step, stamp, value in zip(*page[3:], strict=True)
        )
        count += len(page.steps)
    return count


class _Counted(Iterator[Any]):
    """An iterator that counts what it yields."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self.count = 0

    def __next__(self) -> Any:
        item = next(self._items)
        self.count += 1
        return item


def _write_json_lines(table: TableName, rows: Iterable[Sequence[Any]], out: IO[str]) -> int:
    names = columns_of(table)
    count = 0
    for row in rows:
        record = {
            name: json_value(cell) if type(cell) is float else cell
            for name, cell in zip(names, row, strict=True)
        }
        out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        count += 1
    return count


def _write_json_pages(pages: Iterable[MetricPage], out: IO[str]) -> int:
    """The lines :func:`_write_json_lines` writes, built from a page's columns: the names'
    part of the line once per page, then ``int``'s and ``float``'s ``repr`` per point, as
    ``json.dumps`` writes them (NaN and infinities as strings, as :func:`json_value`)."""
    count = 0
    for page in pages:
        names = {"resource": page.resource, "run": page.run, "key": page.key}
        head = json.dumps(names, ensure_ascii=False)[:-1] + ', "step": '
        out.writelines(
            f'{head}{step}, "timestamp": {stamp}, "value": {_json_number(value)}}}\n'
            for step, stamp, value in zip(*page[3:], strict=True)
        )
        count += len(page.steps)
    return count


def _json_number(value: float) -> str:
    """``value`` as ``json.dumps(json_value(value))`` writes it."""
    if value - value == 0.0:  # finite (NaN and ±inf give NaN)
        return repr(value)
    return json.dumps(json_value(value))


def _write_parquet(table: TableName, rows: Iterable[Sequence[Any]], open_output: Opener) -> int:
    pa, pq = _pyarrow()
    schema = _schema(pa, table)
    count = 0
    with pq.ParquetWriter(open_output(True), schema) as writer:
        for batch in _batches(iter(_as_text(table, rows)), BATCH_ROWS):
            columns = list(zip(*batch, strict=True))
            writer.write_batch(pa.record_batch(columns, schema=schema))
            count += len(batch)
        _close_empty(writer, schema, count)
    return count


def _write_parquet_pages(pages: Iterable[MetricPage], open_output: Opener) -> int:
    """A row group per :data:`BATCH_ROWS` rows or more (whole pages, so at most a page
    more), its columns the pages' arrays as they are (int64 and float64 buffers, names
    repeated in Arrow), so no object is built per point."""
    pa, pq = _pyarrow()
    schema = _schema(pa, "metrics")
    count = 0
    with pq.ParquetWriter(open_output(True), schema) as writer:
        held: list[Any] = []
        for page in pages:
            held.append(_page_batch(pa, schema, page))
            if sum(map(len, held)) >= BATCH_ROWS:
                count += _write_batches(pa, writer, schema, held)
                held = []
        count += _write_batches(pa, writer, schema, held)
        _close_empty(writer, schema, count)
    return count


def _page_batch(pa: Any, schema: Any, page: MetricPage) -> Any:
    size = len(page.steps)
    names = [pa.repeat(pa.scalar(name, pa.string()), size) for name in page[:3]]
    numbers = [
        pa.Array.from_buffers(kind, size, [None, pa.py_buffer(column)])
        for kind, column in zip(schema.types[3:], page[3:], strict=True)
    ]
    return pa.record_batch([*names, *numbers], schema=schema)


def _write_batches(pa: Any, writer: Any, schema: Any, batches: list[Any]) -> int:
    """Write ``batches`` as one row group; returns their rows."""
    if not batches:
        return 0
    table = pa.Table.from_batches(batches, schema=schema)
    writer.write_table(table, row_group_size=table.num_rows)
    return int(table.num_rows)


def _close_empty(writer: Any, schema: Any, count: int) -> None:
    if count == 0:  # a file with the schema and no rows, which readers accept
        writer.write_table(schema.empty_table())


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]  # an optional dependency
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError as exc:
        raise click.ClickException(PARQUET_HINT) from exc
    return pa, pq


def _schema(pa: Any, table: TableName) -> Any:
    return pa.schema(list(zip(columns_of(table), _parquet_types(pa, table), strict=True)))


def _parquet_types(pa: Any, table: TableName) -> list[Any]:
    text, integer = pa.string(), pa.int64()
    if table == "metrics":
        return [text, text, text, integer, integer, pa.float64()]
    if table == "runs":
        return [text, text, text, integer, integer, text, text]
    return [text, text, text, text]


def _batches(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch
