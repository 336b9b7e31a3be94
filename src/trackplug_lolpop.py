"""trackplug's lolpop components, where lolpop's plugin mechanism looks for them.

lolpop loads a component class by name from its plugin modules: from YAML, ``config:
plugin_paths: [<this file>]`` (lolpop imports a file by its stem, so this one is not named
``lolpop.py``), or from Python, ``plugin_mods=["trackplug_lolpop"]``. ``python -m
trackplug_lolpop`` prints this file's path. The components live in
:mod:`trackplug.integrations.lolpop`, imported (with lolpop) when lolpop asks for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackplug.integrations.lolpop import TrackplugMetricsTracker, TrackplugMLFlowMetricsTracker

__all__ = ["TrackplugMLFlowMetricsTracker", "TrackplugMetricsTracker"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from trackplug.integrations import lolpop

        return getattr(lolpop, name)
    raise AttributeError(f"module 'trackplug_lolpop' has no attribute {name!r}")


if __name__ == "__main__":
    print(__file__)
