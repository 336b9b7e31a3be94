"""``Tracker.frame()`` and the ``metrics`` table's writers read histories as pages of
columns: for any data, filters and page size they give exactly what the row-by-row path
gave, built here from ``history()`` as the oracle (the code before stop 28's branch frame):
the same DataFrame (dtypes, order, value bits), the same CSV and JSON Lines text byte for
byte, the same Parquet schema and cells. On the memory backend (its columns hook is built
from pages of points) and SQLite (its native columns hook)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import struct
import tracemalloc
from collections.abc import Iterable
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trackplug
from trackplug import Registry, ValidationError
from trackplug._export import METRIC_COLUMNS, metric_pages
from trackplug._validation import check_key
from trackplug.cli import _export as writers
from trackplug.cli._output import json_value

pd = pytest.importorskip("pandas", reason="frame() needs pandas")
pa = pytest.importorskip("pyarrow", reason="Parquet is written with pyarrow")
pq = pytest.importorskip("pyarrow.parquet", reason="Parquet is read back with pyarrow")

URLS = ["memory://"] + (["sqlite:///:memory:"] if "sqlite" in Registry().backends else [])
INT64 = (-(2**63), 2**63 - 1)
SPECIAL = [math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]
Row = tuple[str, str | None, str, int, int, float]


def valid_key(text: str) -> bool:
    try:
        check_key(text)
    except ValidationError:
        return False
    return True


#: Names that csv must quote (comma, quote, newline) beside unicode letters and digits.
names = st.text(
    st.one_of(st.characters(categories=("L", "Nd")), st.sampled_from('_-. :/,"\n')),
    min_size=1,
    max_size=8,
).filter(valid_key)
points = st.tuples(
    st.one_of(st.sampled_from(SPECIAL), st.floats()),
    st.integers(*INT64),
    st.integers(0, 2**63 - 1),
)
histories = st.dictionaries(names, st.lists(points, min_size=1, max_size=12), max_size=3)
stores = st.dictionaries(names, histories.filter(bool), max_size=3)


def bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


def fill(t: trackplug.Tracker, data: dict[str, Any], run: tuple[str, list[Any]] | None) -> None:
    for resource, keys in data.items():
        for key, pts in keys.items():
            for value, step, stamp in pts:
                t.log_metric(resource, key, value, step=step, timestamp=stamp)
    if run is not None:
        name, pts = run
        started = t.start_run(name)
        for value, step, stamp in pts:
            started.log_metric("loss", value, step=step, timestamp=stamp)
        started.end()


def oracle_rows(
    t: trackplug.Tracker, resources: list[str] | None, keys: set[str] | None
) -> list[Row]:
    """The metrics table point by point from ``history()``."""
    runs = {run.id: run.name for run in t.runs()}
    return [
        (resource, runs.get(resource), key, point.step, point.timestamp, point.value)
        for resource in sorted(t.resources() if resources is None else resources)
        for key in t.latest(resource)
        if keys is None or key in keys
        for point in t.history(resource, key)
    ]


def oracle_frame(rows: list[Row]) -> Any:
    types = ("object", "object", "object", "int64", "int64", "float64")
    columns = list(zip(*rows, strict=True)) or [()] * 6
    return pd.DataFrame(
        {
            name: pd.Series(list(column), dtype=kind)
            for name, column, kind in zip(METRIC_COLUMNS, columns, types, strict=True)
        }
    )


def oracle_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def oracle_json(rows: list[Row]) -> str:
    return "".join(
        json.dumps(
            {
                name: json_value(cell) if type(cell) is float else cell
                for name, cell in zip(METRIC_COLUMNS, row, strict=True)
            },
            ensure_ascii=False,
            allow_nan=False,
        )
        + "\n"
        for row in rows
    )


def written(pages: Iterable[Any], file_format: writers.Format) -> tuple[int, Any]:
    text, binary = io.StringIO(), io.BytesIO()
    count = writers.write_metrics(pages, file_format, lambda b: binary if b else text)
    return count, binary.getvalue() if file_format == "parquet" else text.getvalue()


def cells(rows: Iterable[Any]) -> list[tuple[Any, ...]]:
    return [(*row[:5], bits(row[5])) for row in rows]


choices = st.data()


def subsets(items: list[str]) -> st.SearchStrategy[list[str] | None]:
    """None (all) or some of ``items``."""
    return st.none() | st.lists(st.sampled_from(items), min_size=1, unique=True)


@settings(max_examples=40, deadline=None)
@given(
    url=st.sampled_from(URLS),
    data=stores,
    run=st.none() | st.tuples(names, st.lists(points, max_size=12)),
    page_size=st.integers(1, 7),
    batch_rows=st.integers(1, 20),
    choose=choices,
)
def test_frame_and_every_format_give_what_the_row_path_gave(
    url: str,
    data: dict[str, Any],
    run: tuple[str, list[Any]] | None,
    page_size: int,
    batch_rows: int,
    choose: st.DataObject,
) -> None:
    with trackplug.connect(url) as t:
        fill(t, data, run)
        every = sorted({*t.resources(), *(r.id for r in t.runs())})
        every_key = sorted({k for r in t.resources() for k in t.latest(r)})
        resources = choose.draw(subsets(every)) if every else None
        picked = choose.draw(subsets(every_key)) if every_key else None
        keys = None if picked is None else set(picked)
        rows = oracle_rows(t, resources, keys)

        frame = t.frame(resources, keys)
        expected = oracle_frame(rows)
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
        assert frame.value.to_numpy().view("int64").tolist() == [bits(r[5]) for r in rows]

        def pages() -> Iterable[Any]:
            test = None if keys is None else keys.__contains__
            return metric_pages(t, resources, test, page_size=page_size)

        assert written(pages(), "csv") == (len(rows), oracle_csv(rows))
        assert written(pages(), "json") == (len(rows), oracle_json(rows))
        with mock.patch.object(writers, "BATCH_ROWS", batch_rows):
            count, parquet = written(pages(), "parquet")
        table = pq.read_table(io.BytesIO(parquet))
        assert count == table.num_rows == len(rows)
        assert table.schema.equals(writers._schema(pa, "metrics"))
        assert cells(tuple(r.values()) for r in table.to_pylist()) == cells(rows)
        groups = pq.ParquetFile(io.BytesIO(parquet)).metadata
        sizes = [groups.row_group(i).num_rows for i in range(groups.num_row_groups)]
        # whole pages per row group: at least batch_rows rows, less than a page more
        assert all(batch_rows <= size < batch_rows + page_size for size in sizes[:-1])


def test_the_parquet_columns_are_the_pages_buffers() -> None:
    """No copy per point: the Arrow step, timestamp and value columns of a page's batch
    are views of the page's arrays."""
    with trackplug.connect("memory://") as t:
        t.log_points("m", [trackplug.MetricPoint("k", float(i), i, i) for i in range(50)])
        (page,) = metric_pages(t)
    batch = writers._page_batch(pa, writers._schema(pa, "metrics"), page)
    for column, source in zip(batch.columns[3:], page[3:], strict=True):
        assert column.buffers()[1].address == source.buffer_info()[0]
        assert column.to_pylist() == source.tolist()


@pytest.mark.parametrize("file_format", ["csv", "json", "parquet"])
def test_writing_pages_holds_a_page_not_the_table(file_format: writers.Format) -> None:
    """Pages are written as they come: 300,000 points in pages of 10,000 (Parquet: over
    a dozen row groups) peak far below their columns held at once (24 bytes a point)."""
    from array import array

    from trackplug._export import MetricPage

    def pages() -> Iterable[MetricPage]:
        for start in range(0, 300_000, 10_000):
            numbers = range(start, start + 10_000)
            yield MetricPage(
                "model", None, "loss", array("q", numbers), array("q", numbers), array("d", numbers)
            )

    held = sum(sum(len(c) * c.itemsize for c in page[3:]) for page in pages())
    with open(os.devnull, "w") as text, open(os.devnull, "wb") as binary:
        tracemalloc.start()
        count = writers.write_metrics(pages(), file_format, lambda b: binary if b else text)
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert count == 300_000
    assert streamed < held / 3, (streamed, held)
