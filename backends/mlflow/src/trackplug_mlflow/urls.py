"""trackplug URLs -> MLflow tracking URIs and experiments; no mlflow import here.

=================================  ========================================================
``mlflow://``                      MLflow's own configuration: ``MLFLOW_TRACKING_URI``,
                                   ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME``,
                                   ``MLFLOW_TRACKING_TOKEN`` (read by MLflow itself)
``mlflow+http://host:port``        a tracking server (``mlflow+https://`` with TLS)
``mlflow+sqlite:///path.db``       an MLflow database store (``mlflow+postgresql://…`` too)
``mlflow+file:///path``            MLflow's legacy file store: needs
                                   ``MLFLOW_ALLOW_FILE_STORE=true`` with MLflow 3
=================================  ========================================================

Every form takes ``?experiment=<name>`` (created when missing) and ``?timeout=<seconds>``
(default :data:`DEFAULT_TIMEOUT`, the longest wait for the store to answer one request: see
:mod:`.bounds`); other query parameters are passed on to MLflow (e.g. ``?sslmode=require``
for PostgreSQL).

``?runs=all`` reads every run of the store, not only the ones trackplug wrote (see
:mod:`.native`): of the experiment ``?experiment=`` names, or of every experiment when it
names none (MLflow's environment variables are not consulted then); ``?deleted=true`` adds
the runs MLflow marks deleted. The default, ``?runs=trackplug``, is trackplug's own runs.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from trackplug import BackendError, ValidationError, redact_url
from trackplug.plugin import timeout_of

__all__ = ["ALLOW_FILE_STORE", "DEFAULT_TIMEOUT", "Kind", "MLflowTarget", "parse_url"]

PREFIX = "mlflow"
EXPERIMENT_PARAM = "experiment"
TIMEOUT_PARAM = "timeout"
RUNS_PARAM = "runs"
DELETED_PARAM = "deleted"
#: Which runs are resources: trackplug's own (tagged) ones, or every run of the store.
Runs = Literal["trackplug", "all"]
RUNS_VALUES: tuple[Runs, ...] = ("trackplug", "all")
#: Seconds to wait for the store to answer, unless the URL says ``?timeout=``.
DEFAULT_TIMEOUT = 30.0
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}

#: What kind of store the data lands in: it decides what MLflow keeps (capabilities).
Kind = Literal["server", "database", "file"]


@dataclass(frozen=True)
class MLflowTarget:
    """Where a trackplug MLflow URL points.

    ``tracking_uri`` None means MLflow's own choice (``MLFLOW_TRACKING_URI`` or its
    default); ``experiment`` None means MLflow's (``MLFLOW_EXPERIMENT_ID`` / ``_NAME``, else
    the ``Default`` experiment).
    """

    url: str  # the trackplug URL, password redacted
    tracking_uri: str | None
    experiment: str | None
    timeout: float = DEFAULT_TIMEOUT  # seconds, from ?timeout=
    runs: Runs = "trackplug"  # from ?runs=
    deleted: bool = False  # from ?deleted=: with runs="all", deleted runs are resources too

    @property
    def every_experiment(self) -> bool:
        """``?runs=all`` without an experiment: every experiment of the store."""
        return self.runs == "all" and self.experiment is None

    @property
    def resolved_uri(self) -> str:
        """The tracking URI MLflow will use (asks MLflow for ``mlflow://``)."""
        return self.tracking_uri or _mlflow_default_uri()

    @property
    def kind(self) -> Kind:
        return store_kind(self.resolved_uri)


def parse_url(url: str, experiment: str | None = None) -> MLflowTarget:
    """Read a trackplug MLflow URL; ``experiment`` (a factory option) is the same as
    ``?experiment=``, and the two may not disagree."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or not (scheme == PREFIX or scheme.startswith(PREFIX + "+")):
        raise ValidationError(
            f"{redact_url(url)!r} is not an MLflow URL: use mlflow://, mlflow+http://host:port, "
            "mlflow+sqlite:///path.db, mlflow+postgresql://… or mlflow+file:///path"
        )
    store = scheme.partition("+")[2]
    parts = urlsplit(f"{store or 'mlflow'}://{rest}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    named = [value for name, value in pairs if name == EXPERIMENT_PARAM]
    chosen = _one_experiment(url, [*named, *([experiment] if experiment is not None else [])])
    given = [value for name, value in pairs if name == TIMEOUT_PARAM]
    timeout = timeout_of(url, given, DEFAULT_TIMEOUT)
    runs, deleted = _runs_of(url, pairs)
    ours = (EXPERIMENT_PARAM, TIMEOUT_PARAM, RUNS_PARAM, DELETED_PARAM)
    query = urlencode(
        [(n, v) for n, v in pairs if n not in ours] + _driver_bounds(store, pairs, timeout)
    )
    if not store:
        if parts.netloc or parts.path.strip("/"):
            raise ValidationError(
                f"{redact_url(url)!r}: mlflow:// takes no host or path (it uses "
                "MLFLOW_TRACKING_URI); write mlflow+http://host:port or mlflow+sqlite:///path"
            )
        return MLflowTarget(redact_url(url), None, chosen, timeout, runs, deleted)
    base = rest.partition("?")[0].partition("#")[0]  # urlunsplit would drop sqlite:////'s //
    tracking_uri = f"{store}://{base}" + (f"?{query}" if query else "")
    if store == "file":
        _check_file_store_allowed(url)
    return MLflowTarget(redact_url(url), tracking_uri, chosen, timeout, runs, deleted)


def _runs_of(url: str, pairs: list[tuple[str, str]]) -> tuple[Runs, bool]:
    """``?runs=`` (which runs are resources) and ``?deleted=`` (deleted runs too)."""
    runs = [value.strip().lower() for name, value in pairs if name == RUNS_PARAM]
    deleted = [value.strip().lower() for name, value in pairs if name == DELETED_PARAM]
    if len(runs) > 1 or len(deleted) > 1:
        raise ValidationError(f"{redact_url(url)!r}: give ?runs= and ?deleted= at most once")
    chosen = runs[0] if runs else "trackplug"
    if chosen not in RUNS_VALUES:
        raise ValidationError(
            f"{redact_url(url)!r}: ?runs={runs[0]!r} is not one of {', '.join(RUNS_VALUES)} "
            "(all: every run of the store, trackplug: the runs trackplug wrote)"
        )
    if deleted and deleted[0] not in (*_TRUE, *_FALSE):
        raise ValidationError(f"{redact_url(url)!r}: ?deleted= takes true or false")
    with_deleted = bool(deleted) and deleted[0] in _TRUE
    if with_deleted and chosen != "all":
        raise ValidationError(
            f"{redact_url(url)!r}: ?deleted=true reads deleted runs of the store, so it needs "
            "?runs=all too"
        )
    return ("all" if chosen == "all" else "trackplug"), with_deleted


def _one_experiment(url: str, names: list[str]) -> str | None:
    if any(not name for name in names):
        raise ValidationError(f"{redact_url(url)!r}: the experiment name is empty")
    if len(set(names)) > 1:
        raise ValidationError(
            f"{redact_url(url)!r}: two experiments given ({', '.join(map(repr, names))}); "
            "name it once, in ?experiment= or in experiment="
        )
    return names[0] if names else None


def _driver_bounds(
    store: str, pairs: list[tuple[str, str]], timeout: float
) -> list[tuple[str, str]]:
    """The database driver's own bounds, from ``timeout``, unless the URL sets them: how long
    opening a connection may take, and (PostgreSQL) how long sent data may go unacknowledged
    or (MySQL) how long a read or write may wait."""
    dialect = store.partition("+")[0]
    seconds, millis = str(max(1, math.ceil(timeout))), str(math.ceil(timeout * 1000))
    bounds = {
        "postgresql": {"connect_timeout": seconds, "tcp_user_timeout": millis},
        "mysql": {"connect_timeout": seconds, "read_timeout": seconds, "write_timeout": seconds},
    }.get(dialect, {})
    named = {name for name, _ in pairs}
    return [(name, value) for name, value in bounds.items() if name not in named]


def _check_file_store_allowed(url: str) -> None:
    if os.environ.get(ALLOW_FILE_STORE, "").strip().lower() not in _TRUE:
        raise BackendError(
            f"{redact_url(url)}: MLflow 3 refuses its legacy file store unless "
            f"{ALLOW_FILE_STORE}=true is set in the environment; set it, or use a database "
            "store instead, e.g. mlflow+sqlite:///mlflow.db"
        )


def store_kind(tracking_uri: str) -> Kind:
    """``server`` for http(s) and Databricks, ``file`` for a path, else ``database``."""
    scheme = urlsplit(tracking_uri).scheme.lower()
    if scheme in _REMOTE or tracking_uri.lower() in _REMOTE:  # "databricks" has no scheme
        return "server"
    if scheme in ("", "file"):
        return "file"
    return "database"


_REMOTE = ("http", "https", "databricks", "databricks-uc", "uc")


def _mlflow_default_uri() -> str:
    """MLflow's tracking URI when none is given: ``mlflow.get_tracking_uri()``, which
    honours ``mlflow.set_tracking_uri()``. Before mlflow is imported nobody can have called
    that, so there ``$MLFLOW_TRACKING_URI`` decides without the 2.5 s import."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured and "mlflow" not in sys.modules:
        return configured
    import mlflow

    uri: str = mlflow.get_tracking_uri()
    return uri
