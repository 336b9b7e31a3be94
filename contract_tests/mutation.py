"""Mutation testing of the reference: how many mutants of ``trackplug._memory`` and of the
ordering, ranking and bit rules of ``trackplug._model`` the contract suite kills (the
ranking of a backend without its own ``best`` is ``_model.rank``).

    python -m contract_tests.mutation              # every mutant (10-15 minutes)
    python -m contract_tests.mutation --sample 8   # 8 mutants drawn with a fixed seed

It runs cosmic-ray (``pip install cosmic-ray``) on a copy of ``src/`` and
``contract_tests/`` in a temporary folder, so the working tree is never mutated, with one
test command: the contract suite against ``MemoryBackend``, under a derandomized Hypothesis
profile without an example database, so that two runs give the same figure. It prints the
score and every survivor with its diff, and exits 1 below ``--fail-under`` (percent).
docs/mutation-testing.md explains each survivor.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The files mutated, and for each the functions whose mutants count (None: all of it).
TARGETS: dict[str, tuple[str, ...] | None] = {
    "src/trackplug/_memory.py": None,
    "src/trackplug/_model.py": ("float_bits", "value_order", "point_order", "rank"),
}
#: The test command: the whole contract suite on the in-memory reference, stopping at the
#: first failure. A mutant that makes it time out counts as killed (cosmic-ray's rule).
TEST = "contract_tests/tests/test_memory_contract.py::TestMemoryBackend"
CONFTEST = """\
from hypothesis import settings

settings.register_profile("mutation", database=None, derandomize=True, print_blob=False)
"""
PYTEST_INI = "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"

_SORTED_IDS = (
    "the tie-break then compares values that are equal in a tie (-0.0 == 0.0), so the stable "
    "sort keeps the order of resources(), which is sorted by id: the same ranking"
)
_SHIFTED_KEYS = (
    "the key of every negative value moves down by one (~x is -x - 1), staying distinct, "
    "below 0 and above NaN's: every comparison of two keys gives the same answer, and only "
    "their order is the contract"
)
#: Survivors that no test of the hooks can kill, with the reason: ``(file, line before,
#: line after)`` (whitespace ignored) -> why. docs/mutation-testing.md explains each.
UNOBSERVABLE: dict[tuple[str, str, str], str] = {
    (
        "src/trackplug/_model.py",
        "key=lambda item: (sign * item[1], item[0]),",
        "key=lambda item: (sign * item[1], item[1]),",
    ): _SORTED_IDS,
    (
        "src/trackplug/_model.py",
        "key=lambda item: (sign * item[1], item[0]),",
        "key=lambda item: (sign * item[1], item[-1]),",
    ): _SORTED_IDS,
    (
        "src/trackplug/_model.py",
        'sign = -1.0 if order == "max" else 1.0',
        'sign = -1.0 if order <= "max" else 1.0',
    ): "order is 'max' or 'min' (the facade refuses any other), and 'min' <= 'max' is False",
    (
        "src/trackplug/_model.py",
        'sign = -1.0 if order == "max" else 1.0',
        'sign = -1.0 if order is "max" else 1.0',
    ): "the facade's check_order hands rank its own literal 'max' or 'min': is and == agree",
    (
        "src/trackplug/_memory.py",
        "@hookimpl",
        "",
    ): "the discovery hook, not a backend hook: the suite builds backends with make_backend() "
    "and never looks a URL scheme up (tests/ checks connect('memory://'))",
    (
        "src/trackplug/_model.py",
        'bits: int = struct.unpack("<q", struct.pack("<d", value))[0]',
        'bits: int = struct.unpack("<q", struct.pack("<d", value))[-1]',
    ): "struct.unpack of one value returns a 1-tuple: [0] and [-1] are the same item",
    (
        "src/trackplug/_model.py",
        "return bits if bits >= 0 else -(bits & INT64_MAX) - 1",
        "return bits if bits >= -1 else -(bits & INT64_MAX) - 1",
    ): "bits == -1 (all bits set) is a NaN, and a NaN has returned INT64_MIN before this line",
    (
        "src/trackplug/_model.py",
        "return bits if bits >= 0 else -(bits & INT64_MAX) - 1",
        "return bits if bits >= 0 else ~(bits & INT64_MAX) - 1",
    ): _SHIFTED_KEYS,
    (
        "src/trackplug/_model.py",
        "return bits if bits >= 0 else -(bits & INT64_MAX) - 1",
        "return bits if bits >= 0 else -(bits & INT64_MAX) - 2",
    ): _SHIFTED_KEYS,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contract_tests.mutation", description=__doc__)
    parser.add_argument("--sample", type=int, help="test only this many mutants (fixed seed)")
    parser.add_argument("--fail-under", type=float, default=95.0, help="percent (default 95)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    args = parser.parse_args(argv)
    if shutil.which("cosmic-ray") is None:
        parser.error("cosmic-ray is not installed: pip install cosmic-ray")
    with tempfile.TemporaryDirectory(prefix="trackplug-mutation-") as tmp:
        work = Path(tmp)
        config = prepare(work, args.timeout)
        session = work / "session.sqlite"
        run(["cosmic-ray", "init", str(config), str(session)], work)
        chosen = select(session, work, args.sample)
        print(f"mutation: running {chosen} mutants of {', '.join(TARGETS)}", flush=True)
        run(["cosmic-ray", "exec", str(config), str(session)], work)
        score, unknown = report(session)
    return 0 if score >= args.fail_under and not unknown else 1


def prepare(work: Path, timeout: float) -> Path:
    """Copy the code and the suite into ``work``; write cosmic-ray's configuration."""
    for part in ("src", "contract_tests/src", "contract_tests/tests"):
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / part, work / part, ignore=ignore)
    (work / "conftest.py").write_text(CONFTEST)
    (work / "pytest.ini").write_text(PYTEST_INI)
    python = sys.executable
    command = f"{python} -m pytest -x -q --hypothesis-profile mutation {TEST}"
    modules = ", ".join(f'"{path}"' for path in TARGETS)
    config = work / "cosmic-ray.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        '[cosmic-ray.distributor]\nname = "local"\n'
    )
    return config


def run(command: list[str], work: Path) -> None:
    """Run a cosmic-ray command in ``work``, where the copied code comes first on the path."""
    paths = [work / "src", work / "contract_tests/src", work / "contract_tests/tests"]
    env = {"PYTHONPATH": os.pathsep.join(map(str, paths)), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(command, cwd=work, env={**os.environ, **env}, check=True)


Position = tuple[int, int]


class Scope:
    """Which mutants of one file count: those inside the chosen functions, and never those
    inside a type annotation. Every module here starts with ``from __future__ import
    annotations``, so an annotation is a string that nothing evaluates: a mutant of
    ``float | None`` (``float + None``…) is equivalent to the original by construction."""

    def __init__(self, path: Path, functions: tuple[str, ...] | None) -> None:
        tree = ast.parse(path.read_text())
        self.spans = [_span(n) for n in ast.walk(tree) if _chosen(n, functions)]
        self.annotations = [_span(a) for n in ast.walk(tree) for a in _annotations(n)]

    def chosen(self, start: Position) -> bool:
        """Whether the mutant at ``start`` (line, column) is in a chosen function."""
        return any(low <= start < high for low, high in self.spans)

    def in_annotation(self, start: Position) -> bool:
        """Whether the mutant at ``start`` changes a type annotation."""
        return any(low <= start < high for low, high in self.annotations)


def _chosen(node: ast.AST, functions: tuple[str, ...] | None) -> bool:
    if functions is None:
        return isinstance(node, ast.Module)
    return isinstance(node, ast.FunctionDef) and node.name in functions


def _span(node: ast.AST) -> tuple[Position, Position]:
    if isinstance(node, ast.Module):
        return (0, 0), (10**9, 0)
    start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
    return start, (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def _annotations(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.arg | ast.AnnAssign):
        return [node.annotation] if node.annotation is not None else []
    if isinstance(node, ast.FunctionDef) and node.returns is not None:
        return [node.returns]
    return []


def select(session: Path, work: Path, sample: int | None) -> int:
    """Skip the mutants outside the chosen functions or in annotations, and all but
    ``sample`` of the rest; returns how many are left to run."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    scopes = {path: Scope(work / path, functions) for path, functions in TARGETS.items()}
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = sorted(db.pending_work_items, key=_where)  # cosmic-ray lists them shuffled
        chosen_items = [i for i in items if _where_in(i, scopes, Scope.chosen)]
        kept = [i for i in chosen_items if not _where_in(i, scopes, Scope.in_annotation)]
        print(
            f"mutation: {len(chosen_items)} mutants in the chosen code; "
            f"{len(chosen_items) - len(kept)} of them in type annotations, not counted "
            "(never evaluated: equivalent by construction)"
        )
        if sample is not None:
            kept = random.Random(13).sample(kept, min(sample, len(kept)))
        chosen = {item.job_id for item in kept}
        for item in items:
            if item.job_id not in chosen:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    return len(chosen)


def _where_in(item: Any, scopes: dict[str, Scope], test: Any) -> bool:
    (m,) = item.mutations
    return bool(test(scopes[str(m.module_path)], tuple(m.start_pos)))


_UNOBSERVABLE = {
    (path, "".join(before.split()), "".join(after.split())): why
    for (path, before, after), why in UNOBSERVABLE.items()
}


def report(session: Path) -> tuple[float, int]:
    """Print the score and each survivor, with the reason it cannot be killed where one is
    known; return the percentage killed of the mutants that change what the hooks do, and
    how many survivors have no known reason."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    with use_db(str(session), WorkDB.Mode.open) as db:
        done = [
            (item, result)
            for item, result in db.completed_work_items
            if result.worker_outcome != WorkerOutcome.SKIPPED
        ]
    survivors = [(i, r) for i, r in done if r.test_outcome == TestOutcome.SURVIVED]
    unknown = 0
    for item, result in sorted(survivors, key=lambda pair: _where(pair[0])):
        path, line, _, operator, _ = _where(item)
        reason = _UNOBSERVABLE.get((path, *_changed_lines(result.diff)))
        unknown += reason is None
        print(f"\nSURVIVED {path}:{line} {operator}: {reason or 'NO TEST KILLS IT'}")
        print(result.diff)
    killed = len(done) - len(survivors)
    observable = len(done) - (len(survivors) - unknown)
    score = 100.0 * killed / observable if observable else 100.0
    print(
        f"\nmutation score: {killed}/{len(done)} mutants killed "
        f"({100.0 * killed / max(len(done), 1):.1f}%); {len(survivors) - unknown} survivors "
        f"cannot be observed through the hooks; of the {observable} that can: {score:.1f}% "
        f"killed; survivors without a known reason: {unknown}"
    )
    return score, unknown


def _changed_lines(diff: str) -> tuple[str, str]:
    """The line a mutant removes and the one it adds (whitespace dropped; "" if none)."""
    lines = diff.splitlines()
    before = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    after = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    removed = "".join(line.strip() for line in before if line.strip())
    added = "".join(line.strip() for line in after if line.strip())
    return "".join(removed.split()), "".join(added.split())


def _where(item: Any) -> tuple[str, int, int, str, int]:
    """Where a work item's mutation is: file, line, column, operator, occurrence."""
    (m,) = item.mutations
    return (str(m.module_path), *m.start_pos, m.operator_name, m.occurrence)


if __name__ == "__main__":
    sys.exit(main())
