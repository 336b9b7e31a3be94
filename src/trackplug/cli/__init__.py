"""The ``trackplug`` command: ``demo``, ``ls``, ``runs``, ``params``, ``history``, ``best``,
``plot``, ``export``, ``ui``, ``copy``, ``sync``, ``backends``.

::

    trackplug demo                      # a simulated training run into the default store
    trackplug ls                        # resources and their latest metrics
    trackplug runs sqlite:///trackplug.db sgd -m loss   # runs side by side, with params
    trackplug best valid_f1 --limit 3   # the URL may be left out: $TRACKPLUG_URL, else the default
    trackplug plot sqlite:///trackplug.db valid_loss -o loss.png
    trackplug export -t runs -o runs.parquet
    trackplug ui                        # a dashboard in the browser (the ui extra)

Importing :mod:`trackplug` never imports this package (nor click, rich or matplotlib):
only running the command does. Every error is one line on stderr and a non-zero exit code;
``trackplug --debug …`` shows the traceback instead.
"""

from __future__ import annotations

from ._app import cli, main

__all__ = ["cli", "main"]
