"""Discovery through entry points, scheme lookup, and the default URL."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

import trackplug
from trackplug import PluginError, Registry, UnknownBackendError
from trackplug._memory import MemoryFactory
from trackplug._registry import PluginWarning

GROUP = "trackplug"
MEMORY = EntryPoint("memory", "trackplug._memory", GROUP)
BROKEN = EntryPoint("broken", "broken_plugin", GROUP)
DUPLICATE = EntryPoint("another", "fake_plugins:Another", GROUP)
MISSPELLED = EntryPoint("misspelled", "fake_plugins:Misspelled", GROUP)
FAKE_PG = EntryPoint("fakepg", "fake_plugins:Fake", GROUP)


def test_the_installed_core_registers_memory_through_its_entry_point() -> None:
    entry = Registry().backends["memory"]
    assert entry.distribution == "trackplug"
    assert isinstance(entry.factory, MemoryFactory)


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning_naming_it() -> None:
    registry = Registry([BROKEN, MEMORY])
    with pytest.warns(PluginWarning, match="'broken'.*a_dependency_that_is_not_installed"):
        assert set(registry.backends) == {"memory"}


def test_strict_mode_raises_the_plugins_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKPLUG_STRICT_PLUGINS", "1")
    with pytest.raises(ModuleNotFoundError):
        _ = Registry([BROKEN, MEMORY]).backends


def test_a_misspelled_hook_skips_the_plugin_with_a_warning() -> None:
    registry = Registry([MISSPELLED, MEMORY])
    with pytest.warns(PluginWarning, match="trackplug_register_backend'"):
        assert set(registry.backends) == {"memory"}


def test_a_duplicate_scheme_is_an_error_naming_both_plugins() -> None:
    with pytest.raises(PluginError, match=r"'memory' is registered twice.*another"):
        _ = Registry([MEMORY, DUPLICATE]).backends


def test_an_unknown_scheme_lists_the_known_ones_and_the_extra() -> None:
    with pytest.raises(UnknownBackendError) as error:
        Registry([MEMORY]).lookup("sqlite:///runs.db")
    message = str(error.value)
    assert "installed schemes: memory" in message
    assert "trackplug[sql]" in message


def test_the_unknown_scheme_error_redacts_the_password() -> None:
    with pytest.raises(UnknownBackendError) as error:
        Registry([MEMORY]).lookup("nosuch://user:hunter2@host/db")
    assert "hunter2" not in str(error.value)


def test_a_driver_suffix_falls_back_to_the_base_scheme() -> None:
    registry = Registry([FAKE_PG])
    assert registry.lookup("postgresql+psycopg://h/db").scheme == "postgresql"


def test_an_allowlist_loads_only_the_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKPLUG_PLUGINS", "")
    assert set(Registry([MEMORY, FAKE_PG]).backends) == {"memory"}
    monkeypatch.setenv("TRACKPLUG_PLUGINS", "fakepg")
    assert set(Registry([MEMORY, FAKE_PG]).backends) == {"memory", "postgresql"}


def test_connect_without_a_url_uses_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKPLUG_URL", "memory://")
    with trackplug.connect(registry=Registry([MEMORY])) as tracker:
        assert tracker.url == "memory://"


def test_connect_without_a_url_or_sql_backend_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRACKPLUG_URL", raising=False)
    with pytest.raises(UnknownBackendError, match=r"sqlite:///trackplug.db.*trackplug\[sql\]"):
        trackplug.connect(registry=Registry([MEMORY]))


def test_a_url_without_a_scheme_is_a_validation_error() -> None:
    with pytest.raises(trackplug.ValidationError, match="scheme://"):
        trackplug.connect("runs.db")
