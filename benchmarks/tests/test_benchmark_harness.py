"""The harness's own checks: a wrong count fails the run; figures and ratios are read right.
No timing is asserted here: benchmarks print figures, tests assert behaviour."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.cases import Case
from benchmarks.cli import main, select
from benchmarks.runner import RunFailed, run_case
from benchmarks.sizes import QUICK
from benchmarks.stats import advantage, summarize

BROKEN = Case("broken", "broken", "limit", "benchmarks.tests.broken:short_count", "per_point")
HONEST = Case("honest", "honest", "limit", "benchmarks.bodies.limits:list_append", "per_point")


def test_a_wrong_count_fails_the_case(tmp_path: Path) -> None:
    with pytest.raises(RunFailed, match=r"read back 19999 points, expected 20000"):
        run_case(BROKEN, 1, QUICK, tmp_path)


def test_a_right_count_gives_a_record(tmp_path: Path) -> None:
    record = run_case(HONEST, 1, QUICK, tmp_path)
    assert record["found"] == record["expected"] == QUICK.per_point
    assert record["figures"]["points_per_s"] > 0


def test_the_command_exits_1_on_a_wrong_count(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("benchmarks.cli.CASES", (BROKEN,))
    monkeypatch.setattr("benchmarks.cli.RESULTS", tmp_path)
    assert main(["--quick", "--only", "broken", "--no-docs"]) == 1


def _records(case: str, figure: str, values: list[float]) -> list[dict[str, object]]:
    return [
        {"kind": "case", "case": case, "round": i, "problem": None, "figures": {figure: v}}
        for i, v in enumerate(values)
    ]


def test_ratios_come_from_medians_and_respect_direction() -> None:
    records = _records("fast", "points_per_s", [90, 100, 300]) + _records(
        "slow", "points_per_s", [1, 2, 50]
    )
    records += _records("quick", "seconds", [0.1, 0.2, 0.9]) + _records(
        "late", "seconds", [2.0, 4.0, 4.0]
    )
    summaries = summarize(records)
    assert summaries["fast"]["points_per_s"].median == 100
    assert (summaries["fast"]["points_per_s"].low, summaries["fast"]["points_per_s"].high) == (
        90,
        300,
    )
    assert advantage(summaries, "fast", "slow", "points_per_s") == 50
    assert advantage(summaries, "quick", "late", "seconds") == 20


def test_a_rerun_replaces_the_section_only(tmp_path: Path) -> None:
    document = tmp_path / "performance.md"
    document.write_text(f"# intro\n\n{report.BEGIN}\nold\n{report.END}\n\n## after\n")
    report.replace_section(document, "new\n")
    report.replace_section(document, "newer\n")
    text = document.read_text()
    assert text == f"# intro\n\n{report.BEGIN}\nnewer\n{report.END}\n\n## after\n"


TINY_SCALE = dataclasses.replace(QUICK, repeats=1, scale_100k=300, scale_1m=600, scale_5m=900)


def test_a_scale_run_reads_back_every_series_and_tables_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("trackplug_sql")
    monkeypatch.setattr("benchmarks.cli.FULL", TINY_SCALE)
    monkeypatch.setattr("benchmarks.cli.RESULTS", tmp_path)
    assert main(["--scale", "--only", "scale-sqlite-*", "--no-docs"]) == 0
    text = (tmp_path / "performance-scale.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| SQLite")]
    assert len(rows) == 9  # log, history(), iter_history() at three sizes
    assert {row.split(" | ")[2] for row in rows} == {"300", "600", "900"}
    assert (tmp_path / "performance-scale.png").exists()


def test_scale_cases_run_only_under_scale() -> None:
    assert not any(case.slow for case in select(None))
    assert all(case.slow for case in select(None, scale=True))
    assert select("scale-*") == []  # a full or quick run never picks them, even by name


def test_a_floor_target_is_a_ratio_in_the_same_run() -> None:
    records = _records("tp-sqlite-startup", "seconds", [0.5, 0.6, 0.7])
    records += _records("floor-python", "seconds", [0.05, 0.1, 0.2])
    (target,) = [t for t in report.TARGETS if "bare" not in t.goal and "pass" in t.goal]
    value = target.measure(summarize(records))
    assert value is not None
    assert value == pytest.approx(6.0)  # 0.6 s over 0.1 s: a slow machine slows both
    assert target.met(value) == (value <= report.F_START_PYTHON)
