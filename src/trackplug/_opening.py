"""From URLs to backends: what ``connect()`` does before a :class:`~trackplug.Tracker` exists.

Each URL's factory comes from the registry; each factory gets the options it declares
(an option no backend takes is an error naming it); each backend gets its failure policy,
resolved once, by position. A secondary that cannot be opened now under ``warn`` or
``spool`` becomes a :class:`Slot` without a backend, opened again when first needed.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ._errors import BackendWarning, ValidationError
from ._fanout import Policy, resolve_policies
from ._registry import BackendEntry, Registry
from ._urls import redact_url, scrubbing

__all__ = ["Slot", "close_slots", "open_slots"]


class Slot(NamedTuple):
    """One backend of a tracker about to open: its URL (or name), its policy, and the
    backend, or None with the error when it could not be opened yet."""

    url: str
    policy: Policy
    backend: object | None
    build: Callable[[], object]
    error: Exception | None = None


def open_slots(
    urls: Sequence[str],
    on_error: Policy | Mapping[str, Policy] | None,
    registry: Registry,
    options: Mapping[str, Any],
) -> list[Slot]:
    """A slot per URL, the first one (the primary) always opened; on failure, every
    backend opened so far is closed again."""
    entries = [registry.lookup(url) for url in urls]
    chosen = _options_by_backend(urls, entries, options)
    slots: list[Slot] = []
    try:
        for index, (url, entry, policy) in enumerate(
            zip(urls, entries, resolve_policies(list(urls), on_error), strict=True)
        ):
            slots.append(_open(url, entry, policy, index == 0, chosen[index], urls))
    except BaseException:
        close_slots(slots)
        raise
    return slots


def close_slots(slots: Sequence[Slot]) -> None:
    """Close what was opened, when the tracker cannot be."""
    secrets = [slot.url for slot in slots]
    for slot in slots:
        close = getattr(slot.backend, "close", None)
        if callable(close):
            with scrubbing(*secrets):
                close()


def _options_by_backend(
    urls: Sequence[str], entries: list[BackendEntry], options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each factory's share of ``options``; one that no factory takes is an error."""
    takes = [entry.factory.options for entry in entries]
    for name in options:
        if not any(accepted is None or name in accepted for accepted in takes):
            raise ValidationError(_unknown_option(name, urls, entries))
    return [
        {k: v for k, v in options.items() if accepted is None or k in accepted}
        for accepted in takes
    ]


def _unknown_option(name: str, urls: Sequence[str], entries: list[BackendEntry]) -> str:
    described: dict[str, None] = {}  # in order, once each
    known: set[str] = set()
    for url, entry in zip(urls, entries, strict=True):
        accepted = sorted(entry.factory.options or ())
        known.update(accepted)
        takes = ", ".join(accepted) if accepted else "no options"
        described[f"{redact_url(url)} ({entry.distribution}) takes {takes}"] = None
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"option {name!r} is taken by no backend: {'; '.join(described)}{hint}"


def _open(
    url: str,
    entry: BackendEntry,
    policy: Policy,
    primary: bool,
    options: dict[str, Any],
    secrets: Sequence[str],
) -> Slot:
    """The backend for ``url``; for a secondary that may fail, a slot without one if it
    cannot be opened now (an unknown scheme is still an error: no retry will fix it).
    Whatever the factory raises, now or when it is tried again, shows no password of
    ``secrets`` (every URL of the tracker)."""

    def build() -> object:
        with scrubbing(*secrets):
            return entry.factory.open(url, **options)

    try:
        return Slot(url, policy, build(), build)
    except Exception as exc:
        if primary or policy == "raise":
            raise
        warnings.warn(
            f"backend {redact_url(url)} cannot be opened ({type(exc).__name__}: {exc}); "
            f"on_error={policy!r}: trying again when it is needed",
            BackendWarning,
            stacklevel=4,
        )
        return Slot(url, policy, None, build, exc)
