"""MLflow's exceptions -> trackplug's, with the original kept as ``__cause__``.

Messages name the store (password redacted) and what was being done; MLflow's own message
follows, scrubbed of the password too (MLflow repeats the URL it failed to reach).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from trackplug import BackendError, TrackplugError
from trackplug.urls import REDACTED

__all__ = ["scrub", "translate_errors"]


def scrub(text: str, password: str | None) -> str:
    """``text`` without ``password``."""
    return text.replace(password, REDACTED) if password else text


@contextmanager
def translate_errors(url: str, action: str, password: str | None = None) -> Iterator[None]:
    """Re-raise what MLflow (or the network, or the file system) raises while doing
    ``action`` as :class:`~trackplug.BackendError`; trackplug's own errors pass through."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    failures: tuple[type[Exception], ...] = (RequestException, OSError, *_database_errors())
    try:
        yield
    except TrackplugError:
        raise
    except MlflowException as exc:
        code = getattr(exc, "error_code", None)
        detail = scrub(str(exc.message), password)
        raise BackendError(f"MLflow at {url}: {action} failed ({code}): {detail}") from exc
    except failures as exc:
        detail = scrub(f"{type(exc).__name__}: {exc}", password)
        raise BackendError(f"MLflow at {url}: {action} failed: {detail}") from exc


def _database_errors() -> tuple[type[Exception], ...]:
    """SQLAlchemy's base error, when MLflow's database stores are installed (full mlflow)."""
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # mlflow-skinny alone: tracking servers only
        return ()
    return (SQLAlchemyError,)
