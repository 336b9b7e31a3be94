"""Mutation testing of the reference: how many mutants of ``trackplug.memory`` and of the
ordering and bit rules of ``trackplug.model`` the contract suite kills.

    python -m contract_tests.mutation              # every mutant (about 15 minutes)
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
    "src/trackplug/memory.py": None,
    "src/trackplug/model.py": ("float_bits", "value_order", "point_order"),
}
#: The test command: the whole contract suite on the in-memory reference, stopping at the
#: first failure. A mutant that makes it time out counts as killed (cosmic-ray's rule).
TEST = "contract_tests/tests/test_memory_contract.py::TestMemoryBackend"
CONFTEST = """\
from hypothesis import settings

settings.register_profile("mutation", database=None, derandomize=True, print_blob=False)
"""
PYTEST_INI = "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"


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
        print(f"mutation: {chosen} mutants of {', '.join(TARGETS)}", flush=True)
        run(["cosmic-ray", "exec", str(config), str(session)], work)
        score = report(session, work)
    return 0 if score >= args.fail_under else 1


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


def counted_lines(path: Path, functions: tuple[str, ...] | None) -> set[int] | None:
    """The lines of ``functions`` in ``path`` (None: every line)."""
    if functions is None:
        return None
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name in functions:
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def select(session: Path, work: Path, sample: int | None) -> int:
    """Skip the mutants outside the counted functions, and all but ``sample`` of the rest."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    lines = {path: counted_lines(work / path, functions) for path, functions in TARGETS.items()}
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = sorted(db.pending_work_items, key=_where)  # cosmic-ray lists them shuffled
        kept = [item for item in items if all(_counted(m, lines) for m in item.mutations)]
        if sample is not None:
            kept = random.Random(13).sample(kept, min(sample, len(kept)))
        chosen = {item.job_id for item in kept}
        for item in items:
            if item.job_id not in chosen:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
    return len(chosen)


def _counted(mutation: Any, lines: dict[str, set[int] | None]) -> bool:
    wanted = lines.get(str(mutation.module_path))
    return wanted is None or mutation.start_pos[0] in wanted


def report(session: Path, work: Path) -> float:
    """Print the score and each survivor; return the percentage killed."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    with use_db(str(session), WorkDB.Mode.open) as db:
        done = [
            (item, result)
            for item, result in db.completed_work_items
            if result.worker_outcome != WorkerOutcome.SKIPPED
        ]
    survivors = [(i, r) for i, r in done if r.test_outcome == TestOutcome.SURVIVED]
    for item, result in sorted(survivors, key=lambda pair: _where(pair[0])):
        path, line, _, operator, _ = _where(item)
        print(f"\nSURVIVED {path}:{line} {operator}\n{result.diff}")
    killed = len(done) - len(survivors)
    score = 100.0 * killed / len(done) if done else 100.0
    print(f"\nmutation score: {killed}/{len(done)} mutants killed ({score:.1f}%)")
    return score


def _where(item: Any) -> tuple[str, int, int, str, int]:
    """Where a work item's mutation is: file, line, column, operator, occurrence."""
    (m,) = item.mutations
    return (str(m.module_path), *m.start_pos, m.operator_name, m.occurrence)


if __name__ == "__main__":
    sys.exit(main())
