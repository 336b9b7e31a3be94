"""trackplug-contract: the one suite every trackplug backend passes.

A plugin author's quick start. Declare the backend's entry point::

    # pyproject.toml
    [project.entry-points.trackplug]
    mystore = "mystore.plugin"

implement the hooks (``trackplug.spec``) on a class and register a factory::

    import trackplug
    from trackplug import Capabilities

    class MyBackend:
        CAPABILITIES = Capabilities(persistent=True)
        def __init__(self, url): ...
        @trackplug.hookimpl
        def capabilities(self): return self.CAPABILITIES
        ...  # log_metric, log_metrics, get_metric, history, latest, resources,
             # get_perf, best, flush, close

    @trackplug.hookimpl
    def trackplug_register_backends(register):
        register("mystore", MyBackend)

and validate it with one test file::

    from trackplug_contract import BackendContract

    class TestMyBackend(BackendContract):
        def make_backend(self):
            return MyBackend("mystore://...")
        def reopen_backend(self, backend):       # persistent backends only
            return MyBackend(backend.url)

``pytest --trackplug-profile thorough`` (or ``TRACKPLUG_CONTRACT_PROFILE=thorough``) tries ten
times the examples. ``docs/plugin-authors.md`` walks through a complete backend.
"""

from __future__ import annotations

from . import strategies
from .base import Pair
from .contract import BackendContract
from .profiles import contract_settings

__all__ = ["BackendContract", "Pair", "contract_settings", "strategies"]
