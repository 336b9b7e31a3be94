"""Mutation testing of the reference (``python -m contract_tests.mutation``): a sample of
its mutants on every run, all of them with ``TRACKPLUG_MUTATION=full`` (10-15 minutes).

A run fails when the suite kills less than 95% of the mutants that change what the hooks
do, or when a mutant survives that ``UNOBSERVABLE`` does not explain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Enough to run the whole machinery (copy, cosmic-ray, the suite per mutant) in ~30 s.
SAMPLE = 6


def test_the_suite_kills_the_mutants_of_the_reference() -> None:
    full = os.environ.get("TRACKPLUG_MUTATION") == "full"
    sample = [] if full else ["--sample", str(SAMPLE)]
    command = [sys.executable, "-m", "contract_tests.mutation", *sample]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert "mutation score:" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-4000:]
