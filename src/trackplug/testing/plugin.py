"""The pytest plugin (entry point ``pytest11``): the ``trackplug_capture`` fixture.

No autouse fixture: a test that does not ask for ``trackplug_capture`` runs exactly as
without trackplug. Importing this module at pytest's start loads nothing of trackplug.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from . import Capture

__all__ = ["MARKER", "trackplug_capture"]

MARKER = "trackplug_capture"
#: The marker's options: :class:`~trackplug.testing.Capture`'s.
OPTIONS = ("passthrough", "ignore")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(passthrough=False, ignore=()): how the trackplug_capture fixture captures "
        "metrics: passthrough=True also writes to the real URLs (opened for real); ignore= "
        "URL patterns whose trackers are left alone, not captured",
    )


@pytest.fixture
def trackplug_capture(request: pytest.FixtureRequest) -> Iterator[Capture]:
    """Every metric that trackers opened during the test log — ``trackplug.connect()``
    with any URL or none, fan-out, the MLflow drop-in, from any thread — in one in-memory
    store: no network, no file. Read it with ``history``/``latest``/``best``/… and the
    ``assert_*`` helpers; every tracker opened is closed at the end of the test.
    ``@pytest.mark.trackplug_capture(passthrough=True)`` also writes to the real URLs."""
    from . import capture

    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    wrong = [repr(arg) for arg in (marker.args if marker is not None else ())]
    wrong += sorted(set(options) - set(OPTIONS))
    if wrong:
        pytest.fail(
            f"@pytest.mark.{MARKER} takes the keyword options {', '.join(OPTIONS)}; "
            f"got {', '.join(wrong)}",
            pytrace=False,
        )
    with capture(**options) as captured:
        yield captured
