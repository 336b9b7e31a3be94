"""``BackendContract``: every test of the suite, in one class to subclass."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis.stateful import run_state_machine_as_test

from .base import ContractBase
from .batches import BatchTests
from .lifecycle import CapabilityTests, PersistenceTests, UrlTests
from .machine import ContractMachine
from .params import ParamTests, RunTests
from .points import (
    DuplicateTests,
    HistoryTests,
    KeyTests,
    LatestTests,
    OrderTests,
    StepTests,
    ValueTests,
)
from .profiles import shrinking_limited
from .reads import BestTests, ResourceTests, SampledHistoryTests
from .writes import CopyTests, LogMetricsTests, PredictionTests

__all__ = ["BackendContract", "StatefulTests"]


class StatefulTests(ContractBase):
    """Random sequences of every operation, compared with the model after every step."""

    @pytest.mark.trackplug_stateful
    def test_random_operations_match_the_model(self) -> None:
        # Hypothesis documents a factory here; its annotation says a class.
        factory: Any = lambda: ContractMachine(self.new_backend, self.reopen)  # noqa: E731
        with shrinking_limited():
            run_state_machine_as_test(factory, settings=self.hypothesis_settings("stateful"))


class BackendContract(
    StatefulTests,
    RunTests,
    ParamTests,
    UrlTests,
    PersistenceTests,
    CapabilityTests,
    SampledHistoryTests,
    ResourceTests,
    BestTests,
    PredictionTests,
    CopyTests,
    LogMetricsTests,
    BatchTests,
    DuplicateTests,
    OrderTests,
    HistoryTests,
    LatestTests,
    KeyTests,
    StepTests,
    ValueTests,
):
    """The contract every trackplug backend keeps. Subclass it in a test file and define
    ``make_backend`` (and ``reopen_backend`` for a persistent backend)::

        class TestMyBackend(BackendContract):
            def make_backend(self):
                return MyBackend("mystore://...")

    The name has no ``Test`` prefix, so pytest collects only the subclass. Its tests are
    grouped in mixins (``ValueTests``, ``CopyTests``…) that can be combined on their own.
    pytest runs the mixins' tests from the last base to the first: so the bases are listed
    in reverse, and the cheap, pointed tests run before the state machine.
    """
