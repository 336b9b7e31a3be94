"""URL -> backend: plugins found through the ``trackplug`` entry-point group.

Every backend, built-in or third-party, is a module listed under the entry-point group
``trackplug`` that implements ``trackplug_register_backends(register)``. Entry points are
loaded one at a time: a plugin that fails to import is skipped with a warning naming it
(``TRACKPLUG_STRICT_PLUGINS=1`` makes that an error). ``TRACKPLUG_PLUGINS`` is an allowlist
of entry-point names (unset: all; empty: only the core's ``memory``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy

from ._errors import PluginError, PluginWarning, UnknownBackendError
from ._hooks import check_hooks, new_plugin_manager
from ._urls import redact_url, scheme_of
from .spec import BackendFactory, CallableFactory

if TYPE_CHECKING:  # importlib.metadata costs ~30 ms: imported on first discovery only
    from importlib.metadata import EntryPoint

__all__ = [
    "DEFAULT_URL",
    "ENTRY_POINT_GROUP",
    "BackendEntry",
    "PluginWarning",
    "Registry",
    "default_registry",
    "default_url",
]

ENTRY_POINT_GROUP = "trackplug"
DEFAULT_URL = "sqlite:///trackplug.db"
ENV_URL = "TRACKPLUG_URL"
ENV_PLUGINS = "TRACKPLUG_PLUGINS"
ENV_STRICT = "TRACKPLUG_STRICT_PLUGINS"
CORE_PLUGINS = frozenset({"memory"})
#: Where a scheme we know of comes from, for the hint when it is not installed.
EXTRAS = {
    "sqlite": "sql",
    "postgresql": "sql",
    "postgres": "sql",
    "mlflow": "mlflow",
}


@dataclass(frozen=True)
class BackendEntry:
    """A scheme, the factory that serves it, and the plugin that registered it."""

    scheme: str
    factory: BackendFactory
    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.scheme}:// ({self.distribution})"


def default_url() -> str:
    """``$TRACKPLUG_URL`` if set, else the embedded SQLite default."""
    return os.environ.get(ENV_URL) or DEFAULT_URL


class Registry:
    """The backends that installed plugins serve, keyed by URL scheme.

    ``Registry()`` discovers entry points lazily, once; tests pass ``entry_points`` to
    control exactly what is found.
    """

    def __init__(self, entry_points: Iterable[EntryPoint] | None = None) -> None:
        self._entry_points = entry_points
        self._backends: dict[str, BackendEntry] | None = None

    @property
    def backends(self) -> dict[str, BackendEntry]:
        """``{scheme: entry}`` for every installed backend."""
        if self._backends is None:
            self._backends = self._discover()
        return self._backends

    def lookup(self, url: str) -> BackendEntry:
        """The entry serving ``url``: its exact scheme, else the part before ``+``
        (``postgresql+psycopg`` is served by ``postgresql``)."""
        scheme = scheme_of(url)
        entry = self.backends.get(scheme) or self.backends.get(scheme.partition("+")[0])
        if entry is None:
            raise UnknownBackendError(self._unknown_message(url, scheme))
        return entry

    def _unknown_message(self, url: str, scheme: str) -> str:
        known = ", ".join(sorted(self.backends)) or "none"
        message = f"no installed backend serves {redact_url(url)!r}; installed schemes: {known}"
        guesses = [self._form_of(name) for name in self._close_schemes(scheme)]
        if guesses:
            message += f"; did you mean {' or '.join(guesses)}?"
        base = scheme.partition("+")[0]
        extra = EXTRAS.get(scheme) or EXTRAS.get(base)
        if extra:
            message += (
                f". The {scheme}:// backend comes with pip install 'trackplug[{extra}]' "
                f"(from a clone: pip install -e ./backends/{extra})"
            )
        if url == DEFAULT_URL:
            message += f"; or choose another store: pass its URL, or set ${ENV_URL}"
        return message

    def _close_schemes(self, scheme: str) -> list[str]:
        """The installed scheme that ``scheme`` may be a typo of: by the whole scheme,
        else by its base (``postgress+psycopg`` is close to ``postgres``)."""
        import difflib

        close = difflib.get_close_matches(scheme, self.backends, n=1)
        base = scheme.partition("+")[0]
        if not close and base != scheme:
            close = difflib.get_close_matches(base, self.backends, n=1)
        return close

    def _form_of(self, scheme: str) -> str:
        """How ``scheme``'s URLs look, as its factory declares them (``shelf:///FILE``)."""
        forms = self.backends[scheme].factory.forms()
        mine = [str(form) for form in forms if form.scheme == scheme]
        return " or ".join(mine or [scheme + "://"])

    def _discover(self) -> dict[str, BackendEntry]:
        pm = new_plugin_manager()
        found: dict[str, BackendEntry] = {}
        for ep in self._allowed(self._candidates()):
            plugin = _load(pm, ep)
            if plugin is None:
                continue
            for impl in pm.hook.trackplug_register_backends.get_hookimpls():
                if impl.plugin is plugin:
                    impl.function(register=_registrar(found, ep))
        return found

    def _candidates(self) -> Iterable[EntryPoint]:
        if self._entry_points is not None:
            return self._entry_points
        from importlib.metadata import entry_points

        return entry_points(group=ENTRY_POINT_GROUP)

    @staticmethod
    def _allowed(eps: Iterable[EntryPoint]) -> list[EntryPoint]:
        allow = os.environ.get(ENV_PLUGINS)
        if allow is None:
            return list(eps)
        names = {name.strip() for name in allow.split(",") if name.strip()} | CORE_PLUGINS
        return [ep for ep in eps if ep.name in names]


def _describe(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    return (dist.name, dist.version) if dist is not None else ("unknown", "unknown")


def _load(pm: pluggy.PluginManager, ep: EntryPoint) -> object | None:
    """Import and register one plugin; a broken one is skipped with a warning."""
    name, version = _describe(ep)
    try:
        plugin: object = ep.load()
        pm.register(plugin, name=f"{ep.name}@{name}")
        check_hooks(pm, plugin, ep.name)
    except Exception as exc:  # any import-time failure of third-party code
        if os.environ.get(ENV_STRICT):
            raise
        warnings.warn(
            f"trackplug plugin {ep.name!r} ({name} {version}, {ep.value}) is skipped: "
            f"{type(exc).__name__}: {exc}",
            PluginWarning,
            stacklevel=4,
        )
        return None
    return plugin


def _registrar(found: dict[str, BackendEntry], ep: EntryPoint) -> Callable[..., None]:
    name, version = _describe(ep)

    def register(scheme: str, factory: BackendFactory | Callable[..., object]) -> None:
        scheme = scheme.lower()
        if not isinstance(factory, BackendFactory):
            if not callable(factory):
                raise PluginError(
                    f"plugin {ep.name} ({name}) registers {scheme!r} with a "
                    f"{type(factory).__name__}: register a trackplug.plugin.BackendFactory"
                )
            factory = CallableFactory(scheme, factory)
        if scheme in found:
            other = found[scheme]
            raise PluginError(
                f"URL scheme {scheme!r} is registered twice: by {other.distribution} "
                f"({other.plugin}) and by {name} ({ep.name}); uninstall one of them"
            )
        found[scheme] = BackendEntry(scheme, factory, ep.name, name, version)

    return register


_registry: Registry | None = None


def default_registry() -> Registry:
    """The registry of installed plugins, discovered on first use: the one ``connect()``
    and the CLI ask."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry
