"""The ``pytest11`` plugin: markers, the ``--trackplug-profile`` option and the suite's
Hypothesis profiles (registered as ``trackplug-fast`` / ``trackplug-thorough``, never loaded).

It adds no fixtures (autouse or not) and loads no Hypothesis profile, so installing
``trackplug-contract`` changes nothing in a project's other tests. It registers the suite's
markers, so a test file built on :class:`~trackplug_contract.BackendContract` passes under
``pytest --strict-markers``.
"""

from __future__ import annotations

import pytest

from . import profiles

__all__ = ["MARKERS"]

#: The markers the suite puts on its tests; select with ``-m "not trackplug_stateful"``, e.g.
MARKERS = {
    "trackplug_contract": "a test of the shared trackplug backend contract (trackplug-contract)",
    "trackplug_stateful": "the contract's state machine: random sequences of every operation",
    "trackplug_persistent": "needs a persistent backend: data kept across close and reopen",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trackplug-contract", "trackplug backend contract suite")
    group.addoption(
        "--trackplug-profile",
        choices=sorted(profiles.PROFILES),
        default=None,
        help=(
            "how many examples the contract suite tries: 'fast' (default) or 'thorough' "
            f"(ten times as many); also ${profiles.ENV_VAR}"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    profiles.register_hypothesis_profiles()
    profiles.push(config.getoption("trackplug_profile", default=None))
    try:
        profiles.active_profile()
    except ValueError as error:  # a bad environment variable: say so once, up front
        profiles.pop()
        raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    profiles.pop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"trackplug-contract: profile {profiles.active_profile()}"
