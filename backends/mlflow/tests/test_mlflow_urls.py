"""URL forms: what each trackplug MLflow URL means to MLflow (no store is opened here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trackplug_mlflow import SCHEMES, MLflowFactory
from trackplug_mlflow.urls import parse_url, store_kind

import trackplug
from trackplug import BackendError, Registry, ValidationError


@pytest.mark.parametrize(
    ("url", "tracking_uri", "experiment"),
    [
        ("mlflow://", None, None),
        ("mlflow://?experiment=demo", None, "demo"),
        ("mlflow+http://127.0.0.1:5000", "http://127.0.0.1:5000", None),
        ("mlflow+https://host/prefix?experiment=a%20b", "https://host/prefix", "a b"),
        ("mlflow+sqlite:////tmp/x.db?experiment=e", "sqlite:////tmp/x.db", "e"),
        ("mlflow+sqlite:///rel.db", "sqlite:///rel.db", None),
        (
            "mlflow+postgresql://u:pw@db/mlflow?sslmode=require&experiment=e",
            "postgresql://u:pw@db/mlflow?sslmode=require&connect_timeout=30&tcp_user_timeout=30000",
            "e",
        ),
        (
            "mlflow+postgresql+psycopg2://db/m?timeout=2.5&connect_timeout=9",
            "postgresql+psycopg2://db/m?connect_timeout=9&tcp_user_timeout=2500",
            None,
        ),
        (
            "mlflow+mysql+pymysql://db/m?timeout=0.2",
            "mysql+pymysql://db/m?connect_timeout=1&read_timeout=1&write_timeout=1",
            None,
        ),
        ("mlflow+http://h:5000?timeout=3&experiment=e", "http://h:5000", "e"),
    ],
)
def test_url_forms(url: str, tracking_uri: str | None, experiment: str | None) -> None:
    target = parse_url(url)
    assert (target.tracking_uri, target.experiment) == (tracking_uri, experiment)


@pytest.mark.parametrize(
    ("url", "timeout"),
    [("mlflow://", 30.0), ("mlflow://?timeout=0.5", 0.5), ("mlflow+sqlite:///x.db?timeout=7", 7.0)],
)
def test_the_timeout_is_trackplugs_own_parameter(url: str, timeout: float) -> None:
    target = parse_url(url)
    assert target.timeout == timeout
    assert "timeout" not in (target.tracking_uri or "")


@given(st.floats(min_value=1e-3, max_value=1e9))
def test_any_positive_number_of_seconds_is_a_timeout(seconds: float) -> None:
    assert parse_url(f"mlflow+http://h?timeout={seconds!r}").timeout == seconds


@pytest.mark.parametrize("value", ["0", "-1", "abc", "inf", "nan", "", "1&timeout=2"])
def test_an_invalid_timeout_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match=r"timeout=.*give one positive") as e:
        parse_url(f"mlflow+http://u:hunter2@h:5000?timeout={value}")
    assert "hunter2" not in str(e.value)


def test_the_experiment_option_equals_the_query() -> None:
    assert parse_url("mlflow+sqlite:///x.db", experiment="e").experiment == "e"
    assert parse_url("mlflow+sqlite:///x.db?experiment=e", experiment="e").experiment == "e"
    with pytest.raises(ValidationError, match="two experiments"):
        parse_url("mlflow+sqlite:///x.db?experiment=a", experiment="b")
    with pytest.raises(ValidationError, match="empty"):
        parse_url("mlflow+sqlite:///x.db?experiment=")


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "mlflow:/x", "mlflowx://h", "mlflow://host:5000"]
)
def test_not_mlflow_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        parse_url(url)


def test_passwords_are_redacted() -> None:
    target = parse_url("mlflow+https://me:s3cret@host/?experiment=e")
    assert "s3cret" not in target.url
    assert target.tracking_uri == "https://me:s3cret@host/"  # MLflow needs it


def test_file_store_needs_mlflow_allow_file_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(BackendError, match="MLFLOW_ALLOW_FILE_STORE=true"):
        parse_url("mlflow+file:///tmp/mlruns")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert parse_url("mlflow+file:///tmp/mlruns").tracking_uri == "file:///tmp/mlruns"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("http://h", "server"),
        ("https://h", "server"),
        ("sqlite:///x", "database"),
        ("postgresql://h/d", "database"),
        ("file:///x", "file"),
        ("./mlruns", "file"),
        ("mlruns", "file"),
        ("databricks", "server"),
        ("databricks://profile", "server"),
        ("databricks-uc", "server"),
    ],
)
def test_store_kinds(uri: str, kind: str) -> None:
    assert store_kind(uri) == kind


def test_every_scheme_is_registered() -> None:
    registry = Registry()
    for scheme in SCHEMES:
        assert registry.lookup(f"{scheme}://x").distribution == "trackplug-mlflow"
    # an unregistered sub-scheme falls back to "mlflow", whose factory reads it whole
    assert registry.lookup("mlflow+postgresql+psycopg2://h/d").distribution == "trackplug-mlflow"


def test_importing_the_plugin_does_not_import_mlflow() -> None:
    code = (
        "import sys, trackplug, trackplug_mlflow; "
        "trackplug.Registry().lookup('mlflow+sqlite:///x.db'); "
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_misspelled_scheme_suggests_mlflow_without_importing_it() -> None:
    code = (
        "import sys, trackplug\n"
        "try:\n"
        "    trackplug.Registry().lookup('mlfow://')\n"
        "except trackplug.UnknownBackendError as error:\n"
        '    assert "did you mean mlflow:// (MLflow\'s own configuration)?" in str(error)\n'
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_the_factory_says_what_each_form_keeps_without_opening_a_store(tmp_path: Path) -> None:
    from trackplug_mlflow.capabilities import CAPABILITIES_BY_KIND

    factory = MLflowFactory()
    assert factory.capabilities("mlflow+http://h:5000") == CAPABILITIES_BY_KIND["server"]
    assert factory.capabilities("mlflow+file:///x") == CAPABILITIES_BY_KIND["file"]
    unlisted = factory.form("mlflow+postgresql+psycopg2://u:secret@h/db")
    assert unlisted.capabilities == CAPABILITIES_BY_KIND["database"]
    assert "secret" not in str(unlisted)
    local = factory.local_store(f"mlflow+sqlite:///{tmp_path}/m.db?experiment=e")
    assert local is not None
    assert (local.kind, local.path) == ("file", tmp_path / "m.db")
    assert factory.local_store("mlflow+http://h:5000") is None
    assert list(tmp_path.iterdir()) == []


def test_the_factory_declares_the_options_the_backend_takes() -> None:
    import inspect

    from trackplug_mlflow.backend import MLflowBackend

    keyword = inspect.signature(MLflowBackend).parameters
    assert MLflowFactory.options == {name for name in keyword if name != "url"}


def test_an_option_no_backend_takes_is_refused_before_mlflow_is_opened() -> None:
    with pytest.raises(ValidationError, match=r"'experimnt'.*did you mean 'experiment'"):
        trackplug.connect("mlflow://", experimnt="typo")
