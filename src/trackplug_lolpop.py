"""trackplug's lolpop components, where lolpop's plugin mechanism looks for them.

lolpop loads a component class by name from its plugin modules: from YAML, ``config:
plugin_paths: [<this file>]`` (lolpop imports a file by its stem, so this one is not named
``lolpop.py``), or from Python, ``plugin_mods=["trackplug_lolpop"]``. ``python -m
trackplug_lolpop`` prints this file's path. The components live in
:mod:`trackplug.integrations.lolpop`.
"""

from __future__ import annotations

from trackplug.integrations.lolpop import TrackplugMetricsTracker, TrackplugMLFlowMetricsTracker

__all__ = ["TrackplugMLFlowMetricsTracker", "TrackplugMetricsTracker"]

if __name__ == "__main__":
    print(__file__)
