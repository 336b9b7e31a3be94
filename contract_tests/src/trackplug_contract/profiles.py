"""How hard the suite tries: the ``fast`` and ``thorough`` profiles, chosen per pytest run.

The profile comes from ``--trackplug-profile`` (the pytest plugin records it while a session
is configured), else from ``$TRACKPLUG_CONTRACT_PROFILE``, else ``fast``. Settings are built
when a test asks for them, on top of whatever Hypothesis profile is loaded, so a user's own
profile (and Hypothesis's derandomized ``ci`` profile, loaded by Hypothesis itself when ``CI``
is set) still applies. Nothing here calls ``settings.load_profile()``: the suite never
changes the settings of a user's other tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from hypothesis import HealthCheck, settings

__all__ = [
    "ENV_VAR",
    "PROFILES",
    "Kind",
    "Profile",
    "active_profile",
    "contract_settings",
    "register_hypothesis_profiles",
    "shrinking_limited",
]

#: The environment variable that picks a profile when the command-line option is absent.
ENV_VAR = "TRACKPLUG_CONTRACT_PROFILE"

#: ``"property"``: one property test; ``"stateful"``: the state machine.
Kind = Literal["property", "stateful"]


@dataclass(frozen=True)
class Profile:
    """Examples per property test, examples (runs) and steps per run of the machine, and
    how long Hypothesis may shrink: one failure, and all the failures of a pytest session
    together (None: Hypothesis's own limit, five minutes per failure)."""

    examples: int
    machine_runs: int
    machine_steps: int
    shrink_seconds: float | None = None
    session_shrink_seconds: float | None = None


#: ``thorough`` runs ten times the examples of ``fast``, and longer machine runs, and
#: shrinks as long as Hypothesis likes. ``fast`` fails a broken backend within a minute:
#: it shrinks one failure for 8 s at most and all of a session's for 24 s (after that, a
#: failure is shown as found, shrunk for a second; the fixed cases that fail first are
#: small anyway), and reports one bug per test, not every distinct one.
PROFILES: dict[str, Profile] = {
    "fast": Profile(20, 12, 25, shrink_seconds=8.0, session_shrink_seconds=24.0),
    "thorough": Profile(examples=200, machine_runs=120, machine_steps=50),
}

# The profiles chosen by the pytest sessions configured in this process, innermost last
# (pytester runs sessions inside sessions), and the seconds each has spent in failing
# tests (an upper bound of its shrinking); maintained by trackplug_contract.plugin.
_chosen: list[str | None] = []
_failing_seconds: list[float] = [0.0]


def active_profile() -> str:
    """The profile name in force: the innermost session's option, the variable, ``fast``."""
    name = next((n for n in reversed(_chosen) if n), None) or os.environ.get(ENV_VAR) or "fast"
    if name not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={name!r} is not a trackplug-contract profile: use one of "
            f"{', '.join(sorted(PROFILES))}"
        )
    return name


def contract_settings(kind: Kind) -> settings:
    """Hypothesis settings for one test of the suite, built now from the active profile.

    No deadline (backends do I/O, and the machine is shared); the health checks that
    measure time are off for the same reason.
    """
    profile = PROFILES[active_profile()]
    if kind == "stateful":
        return settings(
            _property_settings(profile),
            max_examples=profile.machine_runs,
            stateful_step_count=profile.machine_steps,
        )
    return _property_settings(profile)


def _property_settings(profile: Profile) -> settings:
    return settings(
        max_examples=profile.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        report_multiple_bugs=profile.shrink_seconds is None,
    )


@contextmanager
def shrinking_limited() -> Iterator[None]:
    """While one test of the suite runs, Hypothesis shrinks a failure for at most the
    active profile's ``shrink_seconds``, and at most what is left of the session's
    ``session_shrink_seconds`` (one second at least). Hypothesis has no setting for it;
    its engine's ``MAX_SHRINKING_SECONDS`` is documented as the value to patch. Restored
    afterwards, so a project's other tests keep Hypothesis's own limit."""
    from hypothesis.internal.conjecture import engine

    profile = PROFILES[active_profile()]
    saved = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    if profile.shrink_seconds is None or saved is None:
        yield
        return
    left = (profile.session_shrink_seconds or float("inf")) - _failing_seconds[-1]
    engine.MAX_SHRINKING_SECONDS = max(1.0, min(profile.shrink_seconds, left))  # type: ignore[assignment]
    start = time.monotonic()
    try:
        yield
    except BaseException:
        _failing_seconds[-1] += time.monotonic() - start
        raise
    finally:
        engine.MAX_SHRINKING_SECONDS = saved


def register_hypothesis_profiles() -> None:
    """Register each profile's property-test settings with Hypothesis as
    ``trackplug-<name>`` (``trackplug-fast``, ``trackplug-thorough``), for a plugin author's
    own property tests (``pytest --hypothesis-profile trackplug-thorough``). Registering
    loads nothing: the suite builds its own settings per test, as above."""
    for name in PROFILES:
        settings.register_profile(f"trackplug-{name}", _property_settings(PROFILES[name]))


def push(name: str | None) -> None:
    """Record the profile a pytest session chose (None: not given)."""
    _chosen.append(name)
    _failing_seconds.append(0.0)


def pop() -> None:
    """Forget the profile of the session that ends."""
    if _chosen:
        _chosen.pop()
        _failing_seconds.pop()
