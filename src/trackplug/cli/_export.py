"""``trackplug export``: a store's tables (``trackplug._export``) as CSV, JSON Lines or Parquet.

Rows are written as they are read, so memory stays bounded however long the histories:
CSV and JSON Lines a row at a time, Parquet a row group of :data:`BATCH_ROWS` at a time.

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
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import IO, Any, Literal

import click

from .._export import METRIC_COLUMNS, PARAM_COLUMNS, RUN_COLUMNS, TableName
from ._output import json_value

__all__ = ["BATCH_ROWS", "FORMATS", "PARQUET_HINT", "Format", "columns_of", "write"]

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


#: Opens the output: ``open_output(binary)``.
Opener = Callable[[bool], IO[Any]]


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _text_cells(table: TableName) -> Callable[[Sequence[Any]], list[Any]]:
    """A row's cells as CSV and Parquet hold them: params and tags as JSON text."""
    if table == "runs":
        return lambda row: [*row[:5], _json_text(row[5]), _json_text(row[6])]
    if table == "params":
        return lambda row: [*row[:3], _json_text(row[3])]
    return list


def _write_csv(table: TableName, rows: Iterable[Sequence[Any]], out: IO[str]) -> int:
    """csv writes a float as its ``repr`` (exact: ``nan``, ``inf``, ``-0.0``) and None as
    an empty cell."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns_of(table))
    counted = _Counted(map(_text_cells(table), rows))
    writer.writerows(counted)
    return counted.count


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


def _write_parquet(table: TableName, rows: Iterable[Sequence[Any]], open_output: Opener) -> int:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]  # an optional dependency
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError as exc:
        raise click.ClickException(PARQUET_HINT) from exc
    schema = pa.schema(list(zip(columns_of(table), _parquet_types(pa, table), strict=True)))
    cells = _text_cells(table)
    count = 0
    with pq.ParquetWriter(open_output(True), schema) as writer:
        for batch in _batches((cells(row) for row in rows), BATCH_ROWS):
            columns = list(zip(*batch, strict=True))
            writer.write_batch(pa.record_batch(columns, schema=schema))
            count += len(batch)
        if count == 0:  # a file with the schema and no rows, which readers accept
            writer.write_table(schema.empty_table())
    return count


def _parquet_types(pa: Any, table: TableName) -> list[Any]:
    text, integer = pa.string(), pa.int64()
    if table == "metrics":
        return [text, text, text, integer, integer, pa.float64()]
    if table == "runs":
        return [text, text, text, integer, integer, text, text]
    return [text, text, text, text]


def _batches(rows: Iterable[list[Any]], size: int) -> Iterator[list[list[Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch
