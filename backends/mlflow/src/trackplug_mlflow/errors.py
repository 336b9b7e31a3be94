"""MLflow's exceptions -> trackplug's, with the original kept as ``__cause__``.

Messages name the store (password redacted) and what was being done; MLflow's own message
follows. MLflow, requests and urllib3 repeat the URL they failed to reach, password and all,
in their messages and in the exceptions they chain: :func:`trackplug._urls.redact_chain`
scrubs the whole chain, so even a full traceback shows no password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from trackplug import BackendError, TrackplugError
from trackplug.plugin import redact_chain

__all__ = ["translate_errors"]


@contextmanager
def translate_errors(url: str, action: str, tracking_uri: str | None = None) -> Iterator[None]:
    """Re-raise what MLflow (or the network, or the file system) raises while doing
    ``action`` as :class:`~trackplug.BackendError`; trackplug's own errors pass through.
    ``tracking_uri`` is the URI MLflow was given: its password is scrubbed everywhere."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    failures: tuple[type[Exception], ...] = (RequestException, OSError, *_database_errors())
    secret = [tracking_uri] if tracking_uri else []
    try:
        yield
    except TrackplugError as exc:
        redact_chain(exc, *secret)
        raise
    except MlflowException as exc:
        code = getattr(exc, "error_code", None)
        detail = redact_chain(exc, *secret).message
        raise BackendError(f"MLflow at {url}: {action} failed ({code}): {detail}") from exc
    except failures as exc:
        detail = f"{type(exc).__name__}: {redact_chain(exc, *secret)}"
        raise BackendError(f"MLflow at {url}: {action} failed: {detail}") from exc


def _database_errors() -> tuple[type[Exception], ...]:
    """SQLAlchemy's base error, when MLflow's database stores are installed (full mlflow)."""
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # mlflow-skinny alone: tracking servers only
        return ()
    return (SQLAlchemyError,)
