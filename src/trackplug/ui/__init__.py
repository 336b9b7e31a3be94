"""``trackplug ui``: a local, read-only dashboard on any store (docs/guide/ui.md).

An ASGI app (Starlette) over the public :class:`~trackplug.Tracker` API alone: it serves
one page (plain JavaScript, uPlot vendored under ``static/`` with its licence) and GET
endpoints answering JSON. Nothing here writes to the store. Needs the ``ui`` extra
(``pip install "trackplug[ui]"``); ``import trackplug`` never loads it.
"""

from __future__ import annotations

from ._server import DEFAULT_POINTS, Dashboard, create_app, is_loopback, serve

__all__ = ["DEFAULT_POINTS", "Dashboard", "create_app", "is_loopback", "serve"]
