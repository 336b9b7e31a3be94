"""``python -m benchmarks [--quick | --scale] [--only CASES] [--repeats N] [--write-docs]``.

A full run writes docs/performance.md (between its markers) and docs/performance.png; a
``--scale`` run (the scaling curves only, slow) writes its own section of that page and
docs/performance-scale.png; a ``--quick`` or ``--only`` run writes benchmarks/results/
instead, unless ``--write-docs``.
Raw records go to benchmarks/results/<run id>.jsonl either way. Exit status 1 when a case
failed (a wrong count read back, an error), 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import chart, report
from .cases import CASES, Case, skip_reason
from .environment import describe_machine, versions
from .runner import ROOT, Record, RunFailed, build_fixtures, run_rounds, scale_stores
from .sizes import FULL, QUICK, Sizes
from .stats import summarize

RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="trackplug measured against MLflow."
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a smoke run: fewer points, 2 rounds")
    mode.add_argument(
        "--scale",
        action="store_true",
        help="only the scaling curves (100k / 1M / 5M points; slow, never in a full run)",
    )
    parser.add_argument("--repeats", type=int, help="rounds of every case (full: 3, quick: 2)")
    parser.add_argument("--only", help="comma-separated case names or globs, e.g. 'tp-sqlite-*'")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--write-docs", action="store_true", help="write docs/ even for a --quick/--only run"
    )
    parser.add_argument("--no-docs", action="store_true", help="never write docs/")
    parser.add_argument(
        "--from-records",
        type=Path,
        metavar="JSONL",
        help="run nothing: render the table and chart from a results file of an earlier run",
    )
    return parser.parse_args(argv)


def select(only: str | None, scale: bool = False) -> list[Case]:
    """The cases of the mode (the scaling curves under ``--scale``, the others otherwise)
    whose names match ``only``."""
    cases = [case for case in CASES if case.slow == scale]
    if not only:
        return cases
    patterns = [pattern.strip() for pattern in only.split(",") if pattern.strip()]
    return [case for case in cases if any(fnmatch.fnmatch(case.name, p) for p in patterns)]


def mode_of(args: argparse.Namespace) -> str:
    return "quick" if args.quick else "scale" if args.scale else "full"


def plan(cases: Sequence[Case]) -> tuple[list[Case], dict[str, str]]:
    """The cases that can run here, and why each of the others cannot."""
    runnable, skipped = [], {}
    for case in cases:
        reason = skip_reason(case)
        if reason:
            skipped[case.name] = reason
        else:
            runnable.append(case)
    return runnable, skipped


def run_header(args: argparse.Namespace, sizes: Sizes, skipped: dict[str, str]) -> Record:
    stamp, mode = time.strftime("%Y%m%d-%H%M%S"), mode_of(args)
    return {
        "kind": "run",
        "run_id": stamp if mode == "full" else f"{mode}-{stamp}",
        "mode": mode,
        "only": args.only,
        "repeats": sizes.repeats,
        "sizes": dataclasses.asdict(sizes),
        "machine": describe_machine(),
        "versions": versions(),
        "skipped": skipped,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def progress(record: Record, out: TextIO) -> None:
    figures = record["figures"]
    shown = [report.fmt_value("seconds", figures["seconds"])]
    if "points_per_s" in figures:
        shown.append(f"{figures['points_per_s']:,.0f} points/s")
    extra = [name for name in ("p99_us", "peak_rss_mib") if name in figures]
    shown += [f"{name.partition('_')[0]} {report.fmt_value(name, figures[name])}" for name in extra]
    print(f"  round {record['round']}  {record['case']:<26} {'  '.join(shown)}", file=out)


def execute(cases: Sequence[Case], sizes: Sizes, results: TextIO) -> list[Record]:
    def sink(record: Record) -> None:
        results.write(json.dumps(record) + "\n")
        results.flush()
        progress(record, sys.stdout)

    with tempfile.TemporaryDirectory(prefix="trackplug-bench-fixtures-") as name:
        fixtures = Path(name)
        started = time.perf_counter()
        if build_fixtures(cases, sizes, fixtures):
            took = time.perf_counter() - started
            print(f"built the MLflow fixtures (template and read stores) in {took:.1f} s")
        started = time.perf_counter()
        with scale_stores(cases, sizes, fixtures) as built:
            if built:
                print(f"built the scale stores in {time.perf_counter() - started:.1f} s")
            return run_rounds(cases, sizes, fixtures, sink)


def write_outputs(run: Record, sizes: Sizes, records: list[Record], to_docs: bool) -> Path:
    """The markdown and the chart; returns the markdown's path."""
    summaries = summarize(records)
    mode = run["mode"]
    document = DOCS / "performance.md" if to_docs else RESULTS / f"performance-{mode}.md"
    picture = document.with_suffix(".png")
    if mode == "scale":
        picture = picture.with_name(f"{picture.stem}-scale.png") if to_docs else picture
        drawn = chart.draw_scaling(summaries, sizes, picture, f"scale run {run['run_id']}")
        section = report.render_scaling(run, sizes, summaries, picture.name if drawn else "")
    else:
        subtitle = f"{mode} run {run['run_id']}, mlflow {run['versions'].get('mlflow', '?')}"
        drawn = chart.draw(summaries, picture, subtitle)
        section = report.render(run, sizes, summaries, picture.name if drawn else "")
    if not to_docs:
        document.write_text(f"# trackplug benchmarks, {mode} run\n\n")
    report.replace_section(document, section, report.marker_of(mode))
    return document


def rerender(args: argparse.Namespace) -> int:
    """The outputs of an earlier run, from its records (no case runs)."""
    lines = [json.loads(line) for line in args.from_records.read_text().splitlines() if line]
    run, records = lines[0], [line for line in lines[1:] if line.get("kind") == "case"]
    if any(line.get("kind") == "failure" for line in lines):
        print(f"{args.from_records} is the record of a failed run")
        return 1
    sizes = Sizes(**run["sizes"])
    complete = run["mode"] in ("full", "scale") and not run.get("only")
    to_docs = (args.write_docs or complete) and not args.no_docs
    print(f"wrote {write_outputs(run, sizes, records, to_docs)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for case in CASES:
            where = skip_reason(case) or "runs here"
            print(f"{case.name:<30} {case.label}  [{where}{', --scale' if case.slow else ''}]")
        return 0
    if args.from_records:
        return rerender(args)
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    cases, skipped = plan(select(args.only, args.scale))
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    run = run_header(args, sizes, skipped)
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"{run['run_id']}.jsonl"
    print(f"{len(cases)} cases x {sizes.repeats} rounds; records: {raw}")
    with raw.open("w") as results:
        results.write(json.dumps(run) + "\n")
        try:
            records = execute(cases, sizes, results)
        except RunFailed as failure:
            results.write(json.dumps({"kind": "failure", "problem": str(failure)}) + "\n")
            print(f"FAILED: {failure}")
            return 1
    to_docs = (args.write_docs or not (args.quick or args.only)) and not args.no_docs
    document = write_outputs(run, sizes, records, to_docs)
    print(f"wrote {document}")
    return 0
