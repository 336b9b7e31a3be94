"""Exports: ``trackplug export`` (CSV, JSON Lines, Parquet) and ``Tracker.frame``, read back
and compared with the store, for any data (Hypothesis): NaN, ±inf, -0.0, 64-bit steps and
timestamps, unicode resources and keys. Needs the SQL backend (each command opens its own
tracker, so the store must persist), pandas and pyarrow (both come with mlflow)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import struct
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trackplug
from trackplug import Registry, ValidationError
from trackplug._export import METRIC_COLUMNS, MetricPage, MetricRow, metric_pages, metric_rows
from trackplug._params import check_params
from trackplug._validation import check_key
from trackplug.cli import _export as writers
from trackplug.cli import cli
from trackplug.cli._export import Format, write
from trackplug.cli._output import json_value

pd = pytest.importorskip("pandas", reason="exports are read back with pandas (pip install pandas)")
pytestmark = pytest.mark.skipif(
    "sqlite" not in Registry().backends,
    reason="the SQL backend is not installed (pip install -e backends/sql): an export "
    "reads what another tracker wrote",
)

INT64 = (-(2**63), 2**63 - 1)
SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]


def valid_key(text: str) -> bool:
    try:
        check_key(text)
    except ValidationError:
        return False
    return True


#: Keys and resource ids: unicode letters and digits and the punctuation keys allow.
names = st.text(
    st.one_of(st.characters(categories=("L", "Nd")), st.sampled_from("_-. :/")),
    min_size=1,
    max_size=12,
).filter(valid_key)
points = st.tuples(
    st.one_of(st.sampled_from(SPECIAL), st.floats()),
    st.integers(*INT64),
    st.integers(0, 2**63 - 1),
)
stores = st.dictionaries(
    names,
    st.dictionaries(names, st.lists(points, min_size=1, max_size=5), min_size=1, max_size=3),
    min_size=1,
    max_size=3,
)


def bits(value: float) -> int:
    """A float's bits: NaN equals NaN, -0.0 differs from 0.0."""
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


def store_rows(url: str) -> list[tuple[Any, ...]]:
    """The metrics table as the tracker reads it, values as bits."""
    with trackplug.connect(url) as t:
        return [(*row[:5], bits(row[5])) for row in metric_rows(t)]


def fill(url: str, data: dict[str, dict[str, list[tuple[float, int, int]]]]) -> None:
    with trackplug.connect(url) as t:
        for resource, keys in data.items():
            for key, pts in keys.items():
                for value, step, stamp in pts:
                    t.log_metric(resource, key, value, step=step, timestamp=stamp)
        run = t.start_run("sgd", params={"lr": 0.01, "opt": "sgd", "n": 3, "on": True})
        run.log_metric("loss", -0.0, step=2**63 - 1)
        run.set_tags({"note": 'ünïcode, "quoted"\nline'})
        run.end()


def export(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["export", *args])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return result


def read_csv_metrics(text: str) -> list[tuple[Any, ...]]:
    frame = pd.read_csv(
        io.StringIO(text),
        dtype={"resource": str, "run": str, "key": str, "step": "int64", "timestamp": "int64"},
        converters={"value": float},
        keep_default_na=False,
    )
    return [
        (r.resource, r.run or None, r.key, int(r.step), int(r.timestamp), bits(r.value))
        for r in frame.itertuples()
    ]


def read_json_metrics(text: str) -> list[tuple[Any, ...]]:
    rows = [json.loads(line) for line in text.splitlines()]
    return [
        (r["resource"], r["run"], r["key"], r["step"], r["timestamp"], bits(float(r["value"])))
        for r in rows
    ]


def read_parquet_metrics(path: Path) -> list[tuple[Any, ...]]:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet is read back with pyarrow")
    table = pq.read_table(path).to_pylist()
    return [
        (r["resource"], r["run"], r["key"], r["step"], r["timestamp"], bits(r["value"]))
        for r in table
    ]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=stores)
def test_every_format_reads_back_what_the_store_holds(tmp_path: Path, data: Any) -> None:
    db = tmp_path / f"{len(list(tmp_path.iterdir()))}.db"
    url = f"sqlite:///{db}"
    fill(url, data)
    expected = store_rows(url)
    assert len(expected) >= sum(len(p) for keys in data.values() for p in keys.values()) - sum(
        len(p) - len(set(p)) for keys in data.values() for p in keys.values()
    )
    assert read_csv_metrics(export(url).stdout) == expected
    assert read_json_metrics(export(url, "--format", "json").stdout) == expected
    parquet = db.with_suffix(".parquet")
    export(url, "-o", str(parquet))  # the format follows the suffix
    assert read_parquet_metrics(parquet) == expected
    with trackplug.connect(url) as t:
        frame = t.frame()
    assert list(frame.columns) == ["resource", "run", "key", "step", "timestamp", "value"]
    assert str(frame.step.dtype) == str(frame.timestamp.dtype) == "int64"
    got = [
        (r.resource, r.run, r.key, int(r.step), int(r.timestamp), bits(r.value))
        for r in frame.itertuples()
    ]
    assert got == expected


def test_the_run_s_points_name_their_run_and_other_resources_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    fill(url, {"model": {"acc": [(0.5, 1, 1)]}})
    rows = [json.loads(line) for line in export(url, "-f", "json").stdout.splitlines()]
    by_resource = {row["resource"]: row for row in rows}
    assert by_resource["model"]["run"] is None
    (run_id,) = set(by_resource) - {"model"}
    assert by_resource[run_id]["run"] == "sgd"
    assert by_resource[run_id]["step"] == 2**63 - 1
    assert math.copysign(1, by_resource[run_id]["value"]) == -1


def test_runs_and_params_tables_keep_types_and_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    fill(url, {"model": {"acc": [(0.5, 1, 1)]}})
    with trackplug.connect(url) as t:
        (run,) = t.runs()
        t.log_params("model", {"depth": 4})
    runs_json = [
        json.loads(line) for line in export(url, "-t", "runs", "-f", "json").stdout.splitlines()
    ]
    assert runs_json == [
        {
            "run_id": run.id,
            "name": "sgd",
            "status": "finished",
            "start": run.start,
            "end": run.end,
            "params": {"lr": 0.01, "opt": "sgd", "n": 3, "on": True},
            "tags": {"note": 'ünïcode, "quoted"\nline'},
        }
    ]
    runs_csv = list(csv.DictReader(io.StringIO(export(url, "-t", "runs").stdout)))
    assert [(r["run_id"], int(r["start"]), int(r["end"])) for r in runs_csv] == [
        (run.id, run.start, run.end)
    ]
    assert json.loads(runs_csv[0]["params"]) == run.params
    assert json.loads(runs_csv[0]["tags"]) == run.tags
    params_csv = list(csv.DictReader(io.StringIO(export(url, "-t", "params").stdout)))
    got = {
        (r["resource"], r["kind"], r["key"], json.dumps(json.loads(r["value"]))) for r in params_csv
    }
    assert got == {
        ("model", "param", "depth", "4"),
        (run.id, "param", "lr", "0.01"),
        (run.id, "param", "opt", '"sgd"'),
        (run.id, "param", "n", "3"),
        (run.id, "param", "on", "true"),
        (run.id, "tag", "note", json.dumps('ünïcode, "quoted"\nline')),
    }
    parquet = tmp_path / "runs.parquet"
    export(url, "-t", "runs", "-o", str(parquet))
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet is read back with pyarrow")
    (row,) = pq.read_table(parquet).to_pylist()
    assert (row["run_id"], row["start"], row["end"]) == (run.id, run.start, run.end)
    assert json.loads(row["params"]) == run.params


def test_resource_and_key_filters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    fill(
        url,
        {
            "a": {"valid_f1": [(1.0, 1, 1)], "train_f1": [(2.0, 1, 1)]},
            "b": {"valid_f1": [(3.0, 1, 1)]},
        },
    )
    rows = list(csv.DictReader(io.StringIO(export(url, "-r", "a", "-k", "valid_*").stdout)))
    assert [(r["resource"], r["key"], r["value"]) for r in rows] == [("a", "valid_f1", "1.0")]
    with trackplug.connect(url) as t:
        frame = t.frame(["a", "b"], "valid_f1")
        assert list(frame.value) == [1.0, 3.0]
        assert list(t.frame("b").key) == ["valid_f1"]
    bad = CliRunner().invoke(cli, ["export", url, "-r", "c"])
    assert bad.exit_code == 1
    assert "has no resource 'c'" in bad.stderr


def test_an_empty_store_exports_a_header_or_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    trackplug.connect(url).close()
    assert export(url).stdout == "resource,run,key,step,timestamp,value\n"
    assert export(url, "-f", "json").stdout == ""
    parquet = tmp_path / "e.parquet"
    export(url, "-o", str(parquet))
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet is read back with pyarrow")
    assert pq.read_table(parquet).column_names == [
        "resource",
        "run",
        "key",
        "step",
        "timestamp",
        "value",
    ]
    with trackplug.connect(url) as t:
        assert t.frame().empty


def test_a_file_output_notes_on_stderr_and_keeps_stdout_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    fill(url, {"m": {"k": [(1.0, 1, 1)]}})
    result = export(url, "-o", str(tmp_path / "out.csv"))
    assert result.stdout == ""
    assert result.stderr == f"Wrote 2 rows of metrics to {tmp_path / 'out.csv'} (csv).\n"


def test_parquet_to_stdout_is_a_parquet_file(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet is read back with pyarrow")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    fill(url, {"m": {"k": [(1.0, 1, 1)]}})
    result = export(url, "-f", "parquet")
    assert pq.read_table(io.BytesIO(result.stdout_bytes)).num_rows == 2


@pytest.mark.parametrize("file_format", ["csv", "json", "parquet"])
def test_writing_holds_a_batch_not_the_table(file_format: Format) -> None:
    """Rows are written as they come: 100,000 rows (Parquet: 200,000, over a dozen row
    groups) streamed through the writer peak far below the same rows held in a list."""
    if file_format == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet is written with pyarrow")
    n = 200_000 if file_format == "parquet" else 100_000  # past a few Parquet row groups

    def rows() -> Iterator[MetricRow]:
        for i in range(n):
            yield MetricRow("model", None, "loss", i, i, float(i))

    with open(os.devnull, "w") as text, open(os.devnull, "wb") as binary:
        tracemalloc.start()
        count = write("metrics", rows(), file_format, lambda b: binary if b else text)
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    tracemalloc.start()
    held_rows = list(rows())
    _, held = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == len(held_rows) == n
    assert streamed < held / 3, (streamed, held)


def test_the_metrics_table_reads_histories_a_page_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first row is out after one page of columns of the history was read, not all."""
    pulled: list[int] = []
    with trackplug.connect("memory://") as t:
        t.log_points("m", [trackplug.MetricPoint("k", float(i), i, i) for i in range(5_000)])
        paged = t._column_pages

        def counting(resource: object, key: str, page_size: int) -> Iterator[Any]:
            assert page_size == 100
            for page in paged(resource, key, page_size):
                pulled.append(len(page[0]))
                yield page

        monkeypatch.setattr(t, "_column_pages", counting)
        rows = metric_rows(t, page_size=100)
        first = next(rows)
        assert (first.step, pulled) == (0, [100])
        assert sum(1 for _ in rows) == 4_999
        assert pulled == [100] * 50


def test_frame_imports_pandas_only_when_called() -> None:
    import subprocess
    import sys

    script = (
        "import sys, trackplug\n"
        "t = trackplug.connect('memory://'); t.log_metric('r', 'k', 1.0)\n"
        "assert 'pandas' not in sys.modules\n"
        "print(len(t.frame()), 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "True"]


def valid_params(params: dict[str, Any]) -> bool:
    try:
        check_params(params)
    except ValidationError:
        return False
    return True


param_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(*INT64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(names, param_values, min_size=1, max_size=4).filter(valid_params),
    resource=names,
)
def test_params_read_back_with_their_type_in_every_format(
    tmp_path: Path, params: dict[str, Any], resource: str
) -> None:
    """A param's value is JSON text in CSV and Parquet and a JSON value in JSON Lines: each
    reads back as the value the store holds, type included (1, 1.0 and True differ)."""
    db = tmp_path / f"p{len(list(tmp_path.iterdir()))}.db"
    url = f"sqlite:///{db}"
    with trackplug.connect(url) as t:
        t.log_params(resource, params)
        t.log_metric(resource, "k", 1.0)
    with trackplug.connect(url) as t:
        held = t.params(resource)

    def typed(value: Any) -> tuple[str, str]:
        return type(value).__name__, json.dumps(value)

    expected = {key: typed(value) for key, value in held.items()}
    text = export(url, "-t", "params").stdout
    from_csv = {r["key"]: typed(json.loads(r["value"])) for r in csv.DictReader(io.StringIO(text))}
    lines = export(url, "-t", "params", "-f", "json").stdout.splitlines()
    from_json = {r["key"]: typed(r["value"]) for r in map(json.loads, lines)}
    assert from_csv == from_json == expected
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet is read back with pyarrow")
    parquet = db.with_suffix(".parquet")
    export(url, "-t", "params", "-o", str(parquet))
    rows = pq.read_table(parquet).to_pylist()
    assert {r["key"]: typed(json.loads(r["value"])) for r in rows} == expected
    assert {r["resource"] for r in rows} == {resource}


# -- the metrics table read as pages of columns (stop 28, branch frame) -----------------------
# frame() and the writers read histories as pages of columns: for any data, filters and page
# size they give exactly what the row-by-row path gave, built here from history() as the
# oracle (the code before the change): the same DataFrame (dtypes, order, value bits), the
# same CSV and JSON Lines text byte for byte, the same Parquet schema and cells. On the
# memory backend (its columns hook is built from pages of points) and SQLite (its own).

URLS = ["memory://", "sqlite:///:memory:"]
Row = tuple[str, str | None, str, int, int, float]


def arrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, or a skip."""
    pa = pytest.importorskip("pyarrow", reason="Parquet is written with pyarrow")
    return pa, pytest.importorskip("pyarrow.parquet", reason="Parquet is read with pyarrow")


#: Names that csv must quote (comma, quote, newline) beside unicode letters and digits.
quoted_names = st.text(
    st.one_of(st.characters(categories=("L", "Nd")), st.sampled_from('_-. :/,"\n')),
    min_size=1,
    max_size=8,
).filter(valid_key)
histories = st.dictionaries(quoted_names, st.lists(points, min_size=1, max_size=12), max_size=3)
any_stores = st.dictionaries(quoted_names, histories.filter(bool), max_size=3)


def fill_tracker(
    t: trackplug.Tracker, data: dict[str, Any], run: tuple[str, list[Any]] | None
) -> None:
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
    data=any_stores,
    run=st.none() | st.tuples(quoted_names, st.lists(points, max_size=12)),
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
    pa, pq = arrow()
    with trackplug.connect(url) as t:
        fill_tracker(t, data, run)
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
    pa, _ = arrow()
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

    if file_format == "parquet":
        arrow()

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
