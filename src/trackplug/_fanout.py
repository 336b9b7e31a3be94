"""Several backends at once: each one a :class:`Destination` with its own failure policy.

``raise``
    the error reaches the caller (after every other backend has had the write);
``warn``
    a :class:`BackendWarning`, and the write is dropped for that backend;
``spool``
    the write goes to the :class:`~trackplug._outbox.Outbox`, durably, and is replayed in
    order by ``tracker.sync()``, ``trackplug sync`` or the next ``connect()``.

While a backend has writes waiting in the outbox, its new writes queue behind them, so the
order of writes (a later performance record replaces an earlier one) is kept. A failed
backend is not tried again for ``retry_interval`` seconds: a dead server costs one timeout,
not one per batch.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, get_args

from ._errors import BackendWarning, InvalidTypeError, ValidationError
from ._validation import short_repr

if TYPE_CHECKING:
    from ._hooks import BackendHooks
    from ._outbox import Outbox
    from ._writes import Write

__all__ = ["BackendWarning", "Destination", "Policy", "resolve_policies"]

Policy = Literal["raise", "warn", "spool"]
POLICIES: tuple[str, ...] = get_args(Policy)
PRIMARY_DEFAULT: Policy = "raise"
SECONDARY_DEFAULT: Policy = "spool"


def resolve_policies(
    urls: list[str], on_error: Policy | Mapping[str, Policy] | None
) -> list[Policy]:
    """One policy per URL: ``on_error`` for all, or per URL from a mapping; by default
    ``raise`` for the primary and ``spool`` for the others."""
    defaults: list[Policy] = [PRIMARY_DEFAULT] + [SECONDARY_DEFAULT] * (len(urls) - 1)
    if on_error is None:
        chosen = defaults
    elif isinstance(on_error, str):
        chosen = [on_error] * len(urls)
    elif isinstance(on_error, Mapping):
        unknown = [url for url in on_error if url not in urls]
        if unknown:
            from ._urls import redact_url

            shown = ", ".join(sorted(redact_url(url) for url in map(str, unknown)))
            raise ValidationError(f"on_error names URLs that are not connected: {shown}")
        chosen = [on_error.get(url, default) for url, default in zip(urls, defaults, strict=True)]
    else:
        raise InvalidTypeError(
            f"on_error of type {type(on_error).__name__} is invalid: give one of {POLICIES} "
            "or a {url: policy} mapping"
        )
    for policy in chosen:
        if not isinstance(policy, str) or policy not in POLICIES:
            raise ValidationError(
                f"on_error {short_repr(policy)} is invalid: use one of {POLICIES}"
            )
    return chosen


class Destination:
    """One backend of a tracker, its failure policy, and its place in the outbox."""

    def __init__(
        self,
        url: str,
        name: str,
        policy: Policy,
        attach: Callable[[], BackendHooks],
        outbox: Outbox,
        retry_interval: float,
        hooks: BackendHooks | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self.policy = policy
        self.hooks = hooks
        self._attach = attach
        self._outbox = outbox
        self._retry_interval = retry_interval
        self._retry_at = 0.0
        self._waiting = outbox.pending(url)
        self._failing = False

    def __repr__(self) -> str:
        return f"<Destination {self.name} on_error={self.policy} waiting={self._waiting}>"

    @property
    def waiting(self) -> int:
        """Writes in the outbox for this backend."""
        return self._waiting

    def backend(self) -> BackendHooks:
        """The backend, built now if it could not be built before."""
        if self.hooks is None:
            self.hooks = self._attach()
        return self.hooks

    def deliver(self, write: Write) -> Exception | None:
        """Apply ``write`` under this backend's policy; the error to raise, if any."""
        if self._waiting:
            self._spool(write)
            self._replay_quietly()
            return None
        if self.policy != "raise" and time.monotonic() < self._retry_at:
            return self._failed(write, None)
        try:
            write.apply(self.backend())
        except Exception as exc:  # the policy decides; nothing is swallowed silently
            return self._failed(write, exc)
        self._recovered()
        return None

    def replay(self, wait: bool = True) -> int:
        """Send every write waiting in the outbox, oldest first; raises on the first that
        fails (it stays, with the ones after it). Returns how many were sent. Under the
        outbox's replay lock, so no write is sent by two replays; ``wait=False`` sends
        nothing while another replay runs."""
        with self._outbox.replaying(wait) as held:
            return self._replay() if held else 0

    def _replay(self) -> int:
        sent = 0
        try:
            for entry_id, write in self._outbox.entries(self.url):
                write.apply(self.backend())
                self._outbox.remove(entry_id)
                sent += 1
        except Exception:
            self._retry_at = time.monotonic() + self._retry_interval
            raise
        finally:
            self._waiting = self._outbox.pending(self.url)
        self._recovered()
        return sent

    def flush(self) -> Exception | None:
        """The backend's own flush, under the policy."""
        if self.hooks is None:
            return None
        try:
            self.hooks.flush()
        except Exception as exc:
            if self.policy == "raise":
                return exc
            self._warn(f"flush failed: {type(exc).__name__}: {exc}")
        return None

    def _failed(self, write: Write, error: Exception | None) -> Exception | None:
        if error is not None:
            self._retry_at = time.monotonic() + self._retry_interval
        if self.policy == "raise":
            return error
        if self.policy == "spool":
            self._spool(write)
        if error is not None and not self._failing:
            self._failing = True
            self._warn(self._failure_message(error))
        return None

    def _failure_message(self, error: Exception) -> str:
        cause = f"{type(error).__name__}: {error}"
        if self.policy == "warn":
            return f"{cause}; its writes are dropped while it fails (on_error='warn')"
        return (
            f"{cause}; its writes are kept in the outbox {self._outbox.path} and replayed "
            "when it is back (tracker.sync() or `trackplug sync`)"
        )

    def _spool(self, write: Write) -> None:
        self._outbox.append(self.url, write)
        self._waiting += 1

    def _replay_quietly(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        try:
            self.replay(wait=False)  # a replay under way elsewhere sends them
        except Exception:  # still down: the writes wait, the next round tries again
            return

    def _recovered(self) -> None:
        self._failing = False

    def _warn(self, message: str) -> None:
        warnings.warn(f"backend {self.name}: {message}", BackendWarning, stacklevel=2)
