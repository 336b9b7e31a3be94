"""The plugin surface: a backend is fully described by what it registers.

A third party's backend (tests/shelf_plugin.py, eight hooks, imports only
``trackplug.plugin``) gets every command and every rule of the facade exactly as our own
backends do; options are checked per factory; failure policies are resolved once; optional
hooks are signalled by being implemented.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from collections.abc import Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fake_plugins import FlakyBackend
from shelf_plugin import ShelfBackend
from trackplug_contract import BackendContract

import trackplug
from trackplug import MetricPoint, PerfRecord, Registry, Resource, Tracker, ValidationError
from trackplug._memory import MemoryBackend
from trackplug.cli import cli
from trackplug.plugin import BackendFactory, Register, UrlForm, hookimpl

GROUP = "trackplug"
MEMORY = EntryPoint("memory", "trackplug._memory", GROUP)
SQL = EntryPoint("sql", "trackplug_sql", GROUP)
SHELF = EntryPoint("shelf", "shelf_plugin", GROUP)
FLAKY = EntryPoint("flaky", "test_plugin_surface:FreshFlaky", GROUP)


class FreshFlaky:
    """``flaky://``: a new flaky store per backend, even for the same URL."""

    @staticmethod
    @hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("flaky", FlakyBackend)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed plugins: the core, trackplug-sql and the third party's shelf."""
    pytest.importorskip("trackplug_sql", reason="needs trackplug-sql (pip install -e backends/sql)")
    found = [MEMORY, SQL, SHELF]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: found)
    monkeypatch.setattr("trackplug._registry._registry", Registry(found))


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})
    return result


def data(*args: str) -> dict[str, object]:
    """A command's --json output, without the URL (the one thing that differs)."""
    result = run(*args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    found: dict[str, object] = json.loads(result.stdout)
    found.pop("url")
    return found


def test_a_third_party_backend_gets_every_command_as_ours_do(
    installed: None, tmp_path: Path
) -> None:
    ours, theirs = f"sqlite:///{tmp_path / 'runs.db'}", f"shelf://{tmp_path / 'runs.json'}"
    assert run("demo", ours, "--epochs", "3").exit_code == 0
    copied = run("copy", ours, theirs)
    assert copied.exit_code == 0, copied.stderr
    assert data("ls", theirs) == data("ls", ours)
    for key in ("valid_f1", "train_loss"):
        assert data("history", theirs, "demo/cnn", key) == data("history", ours, "demo/cnn", key)
    assert data("best", theirs, "valid_f1") == data("best", ours, "valid_f1")
    assert data("best", theirs, "valid_loss", "--min") == data("best", ours, "valid_loss", "--min")
    points = int(copied.stdout.split(" points from ")[0].rpartition(" ")[2])
    again = run("copy", theirs, ours).stdout  # back again: everything is already there
    assert f"Copied 4 resources, 0 points from {theirs}" in again
    assert f"({points} points were already there)" in again


def test_a_third_party_store_that_does_not_exist_is_refused_not_created(
    installed: None, tmp_path: Path
) -> None:
    typo = tmp_path / "typo.json"
    result = run("ls", f"shelf://{typo}")
    assert result.exit_code == 1
    assert f"shelf://{typo} does not exist (no file {typo});" in result.stderr
    assert not typo.exists()


def test_a_third_party_backend_is_listed_with_its_forms_and_where_its_data_lives(
    installed: None, tmp_path: Path
) -> None:
    listed = json.loads(run("backends", "--json").stdout)["backends"]
    shelf = next(entry for entry in listed if entry["scheme"] == "shelf")
    assert shelf["capabilities"][0]["url"] == "shelf:///FILE"
    assert shelf["capabilities"][0]["persistent"] is True
    table = run("backends").stdout
    assert "shelf://" in table
    assert "persistent (a JSON file)" in table
    demo = run("demo", f"shelf://{tmp_path / 'demo.json'}", "--epochs", "1").stdout
    assert f"Data: shelf://{tmp_path / 'demo.json'} (file {tmp_path / 'demo.json'})" in demo


def test_a_misspelled_scheme_suggests_the_registered_form(installed: None) -> None:
    result = run("ls", "shelv:///runs.json")
    assert "did you mean shelf:///FILE (a JSON file)?" in result.stderr


class TestShelfBackend(BackendContract):
    """The third party's eight hooks pass the whole contract, the facade doing the rest."""

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def make_backend(self) -> ShelfBackend:
        import uuid

        return ShelfBackend(f"shelf://{self.directory / uuid.uuid4().hex}.json")

    def reopen_backend(self, backend: ShelfBackend) -> ShelfBackend:
        return ShelfBackend(backend.url)


# -- options ------------------------------------------------------------------------------


def test_an_option_no_backend_takes_is_an_error_naming_it_and_each_backend() -> None:
    registry = Registry([MEMORY])
    with pytest.raises(ValidationError) as error:
        trackplug.connect("memory://", "memory://", experiment="x", registry=registry)
    # Each backend once, with the distribution that serves it (none for a hand-made entry).
    assert str(error.value) == (
        "option 'experiment' is taken by no backend: memory:// (unknown) takes no options"
    )


def test_a_misspelled_option_is_refused_with_the_one_meant(installed: None) -> None:
    with pytest.raises(ValidationError, match=r"'indnt'.*takes indent.*did you mean 'indent'"):
        trackplug.connect("sqlite://", "shelf:///nowhere/x.json", indnt=2)


def test_each_factory_gets_only_the_options_it_declares(installed: None, tmp_path: Path) -> None:
    with trackplug.connect(f"shelf://{tmp_path / 'a.json'}", "sqlite://", indent=2) as t:
        t.log_metric("r", "x", 1.0)
        assert t.history("r", "x")[0].value == 1.0


class Bare:
    """A plugin registering a bare callable, as plugins did before BackendFactory: its
    keyword parameters are its options."""

    @staticmethod
    def open(url: str, *, colour: str = "red") -> MemoryBackend:
        return MemoryBackend(url)

    @staticmethod
    @hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("bare", Bare.open)


def test_a_bare_callable_factory_takes_its_keyword_parameters() -> None:
    registry = Registry([EntryPoint("bare", "test_plugin_surface:Bare", GROUP)])
    factory = registry.lookup("bare://").factory
    assert factory.options == {"colour"}
    assert factory.forms() == [UrlForm("bare://", None)]
    trackplug.connect("bare://", colour="blue", registry=registry).close()
    with pytest.raises(ValidationError, match=r"'color'.*did you mean 'colour'"):
        trackplug.connect("bare://", color="blue", registry=registry)


class NotAFactory:
    @staticmethod
    @hookimpl
    def trackplug_register_backends(register: Register) -> None:
        register("nope", "MemoryBackend")  # type: ignore[arg-type]


def test_registering_something_that_cannot_open_a_backend_is_a_plugin_error() -> None:
    registry = Registry([EntryPoint("nope", "test_plugin_surface:NotAFactory", GROUP)])
    with pytest.raises(trackplug.PluginError, match=r"register a trackplug\.plugin\.Backend"):
        _ = registry.backends


def test_a_factory_without_forms_says_what_to_implement() -> None:
    class Half(BackendFactory):
        def open(self, url: str, **options: object) -> object:
            return MemoryBackend(url)

    with pytest.raises(NotImplementedError, match=r"Half must implement forms\(\)"):
        Half().capabilities("half://")


# -- failure policies ---------------------------------------------------------------------


@pytest.fixture
def flaky() -> Iterator[Registry]:
    FlakyBackend.instances.clear()
    FlakyBackend.down = FlakyBackend.unreachable = False
    yield Registry([MEMORY, FLAKY])
    FlakyBackend.instances.clear()
    FlakyBackend.down = False


def test_the_primary_raises_even_when_a_secondary_has_the_same_url(
    flaky: Registry, tmp_path: Path
) -> None:
    # Policies are resolved once, by position: the same URL twice is still a primary
    # that raises and a secondary that spools.
    url = "flaky://same"
    with trackplug.connect(url, url, registry=flaky, outbox=tmp_path / "o.db") as t:
        FlakyBackend.down = True
        t.log_metrics("r", {"x": 1.0})  # buffered: written by the flush
        with pytest.raises(ConnectionError), pytest.warns(trackplug.BackendWarning):
            t.flush()
        FlakyBackend.down = False


def test_tracker_takes_backend_objects_only() -> None:
    with pytest.raises(ValidationError, match="2 backends but 1 urls"):
        Tracker(MemoryBackend(), MemoryBackend(), urls=["memory://"])


# -- optional hooks -----------------------------------------------------------------------


class Counting(MemoryBackend):
    """Counts the writes that reach the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    @hookimpl
    def log_metrics(
        self, resource: Resource, points: Sequence[MetricPoint], perf: PerfRecord | None
    ) -> None:
        self.writes += 1
        super().log_metrics(resource, points, perf)


class ForgetfulCopy(Counting):
    """A native copy that forgets ``return True``: it still counts as done."""

    @hookimpl
    def copy_metrics(self, source: Resource, target: Resource) -> None:
        points = [p for key in self.latest(source) for p in self.history(source, key)]
        self.log_metrics(target, points, self.get_perf(source))


class DecliningCopy(Counting):
    """A native copy that hands this call back to the facade."""

    @hookimpl
    def copy_metrics(self, source: Resource, target: Resource) -> object:
        return NotImplemented


@pytest.mark.parametrize(("backend_type", "writes"), [(ForgetfulCopy, 1), (DecliningCopy, 1)])
def test_an_implemented_optional_hook_did_the_work_unless_it_says_not(
    backend_type: type[Counting], writes: int
) -> None:
    backend = backend_type()
    with Tracker(backend) as t:
        t.log_points("a", [MetricPoint("x", -0.0, 1, 2)], PerfRecord("x", -0.0))
        backend.writes = 0
        t.copy_metrics("a", "b")
        assert backend.writes == writes  # the copy was made once, natively or composed
        assert t.history("b", "x") == t.history("a", "x")
        assert math.copysign(1.0, t.perf("b").value) == -1.0  # type: ignore[union-attr]


def test_a_minimal_backend_implements_eight_hooks() -> None:
    from trackplug import spec

    implemented = {name for name in spec.REQUIRED_HOOKS if hasattr(MemoryBackend, name)}
    assert len(spec.REQUIRED_HOOKS) == 8
    assert implemented == set(spec.REQUIRED_HOOKS)
    assert not any(hasattr(MemoryBackend, name) for name in ("best", "flush", "close"))
