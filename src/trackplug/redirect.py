"""Where ``connect()`` sends a tracker: one process-wide slot, empty except in tests.

While a :class:`Redirect` is installed (by :func:`trackplug.testing.capture`, the pytest
fixture ``trackplug_capture``), every ``connect()`` — whatever its URLs, ``$TRACKPLUG_URL``
or the default, one URL or a fan-out — hands the redirect its URLs and returns the tracker
the redirect builds. It is a process-wide slot, not a context variable, on purpose: code
under test logs from threads it starts, and a plain thread does not inherit its starter's
context. pytest-xdist runs each worker in a process of its own, so workers never share it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ._errors import TrackplugError

if TYPE_CHECKING:
    from ._registry import Registry
    from ._tracker import Tracker

__all__ = ["OpenURLs", "Redirect", "install", "installed", "uninstall"]

#: ``open_urls(*extra)``: the tracker ``connect()`` would have opened on its URLs, with each
#: ``(url, backend)`` of ``extra`` as one more destination whose failures are raised.
OpenURLs = Callable[..., "Tracker"]


class Redirect(Protocol):
    """What ``connect()`` asks while installed."""

    def connect(
        self, urls: list[str], open_urls: OpenURLs, registry: Registry | None = None
    ) -> Tracker:
        """The tracker for ``connect(*urls)`` (``urls`` as resolved: never empty).
        ``open_urls`` opens them for real, for a redirect that also writes there;
        ``registry`` is where ``connect()`` would look them up (None: not from a registry)."""
        ...


_installed: Redirect | None = None
_lock = threading.Lock()


def installed() -> Redirect | None:
    """The redirect ``connect()`` must ask, or None (the usual case)."""
    return _installed


def install(redirect: Redirect) -> None:
    """Send every ``connect()`` to ``redirect`` until :func:`uninstall`. One at a time."""
    global _installed
    with _lock:
        if _installed is not None:
            raise TrackplugError(
                f"metrics are already captured by {_installed!r}: one capture at a time "
                "(a test asks for the trackplug_capture fixture once)"
            )
        _installed = redirect


def uninstall(redirect: Redirect) -> None:
    """Stop redirecting to ``redirect`` (nothing happens if it is not the one installed)."""
    global _installed
    with _lock:
        if _installed is redirect:
            _installed = None
