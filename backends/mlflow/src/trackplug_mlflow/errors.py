"""MLflow's exceptions -> trackplug's, with the original kept as ``__cause__``.

Messages name the store (password redacted) and what was being done; MLflow's own message
follows. MLflow, requests and urllib3 repeat the URL they failed to reach, password and all,
in their messages and in the exceptions they chain: :func:`trackplug._urls.redact_chain`
scrubs the whole chain, so even a full traceback shows no password.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from trackplug import BackendError, TrackplugError, ValidationError, redact_url
from trackplug.plugin import redact_chain

if TYPE_CHECKING:
    from .urls import MLflowTarget

__all__ = ["translate_errors", "unreachable"]


@contextmanager
def translate_errors(
    url: str, action: str, secrets: Sequence[str] = (), timeout: float | None = None
) -> Iterator[None]:
    """Re-raise what MLflow (or the network, or the file system) raises while doing
    ``action`` as :class:`~trackplug.BackendError`; trackplug's own errors pass through.
    ``secrets`` are the URIs MLflow was given: their passwords are scrubbed everywhere.
    ``timeout`` is the URL's bound, named when a request ran out of it."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    failures: tuple[type[Exception], ...] = (RequestException, OSError, *_database_errors())
    try:
        yield
    except TrackplugError as exc:
        redact_chain(exc, *secrets)
        raise
    except MlflowException as exc:
        code = getattr(exc, "error_code", None)
        detail = redact_chain(exc, *secrets).message
        if timeout is not None and _timed_out(exc):
            raise BackendError(
                f"MLflow at {url}: {action}: no answer within {timeout:g} s (the server is "
                "stopped, overloaded or unreachable; set the bound with ?timeout=<seconds>)"
            ) from exc
        raise BackendError(f"MLflow at {url}: {action} failed ({code}): {detail}") from exc
    except failures as exc:
        detail = f"{type(exc).__name__}: {redact_chain(exc, *secrets)}"
        raise BackendError(f"MLflow at {url}: {action} failed: {detail}") from exc


def not_as_given(url: str, exc: Exception, *secrets: str) -> ValidationError:
    """The error for a store URL that MLflow or its database driver cannot read (a
    ValueError or TypeError of theirs: ``?check_same_thread=maybe``)."""
    detail = f"{type(exc).__name__}: {redact_chain(exc, *secrets)}"
    return ValidationError(
        f"MLflow cannot open {url!r} as given ({detail}): check its path and options"
    )


def unreachable(target: MLflowTarget, what: str, uri: str, detail: str) -> BackendError:
    """The error of a tracking server or database server that cannot be reached at all."""
    where = target.url
    if not target.tracking_uri:  # mlflow://: say where MLflow pointed us
        where = f"{redact_url(uri)} (from MLFLOW_TRACKING_URI, {target.url})"
    return BackendError(
        f"the MLflow {what} at {where} cannot be reached (is it running, and is the "
        f"address right?): {' '.join(detail.split())}"
    )


def _timed_out(error: BaseException) -> bool:
    """Whether a request timeout caused ``error``: requests' own, or urllib3's inside the
    ``MaxRetryError`` that requests reports as a connection error once retries run out."""
    from requests.exceptions import Timeout
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    seen: set[int] = set()
    todo: list[object] = [error]
    while todo:
        cause = todo.pop()
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, (Timeout, Urllib3Timeout)):
            return True
        todo.extend((cause.__cause__, cause.__context__, getattr(cause, "reason", None)))
        todo.extend(cause.args)
    return False


def _database_errors() -> tuple[type[Exception], ...]:
    """SQLAlchemy's base error, when MLflow's database stores are installed (full mlflow)."""
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # mlflow-skinny alone: tracking servers only
        return ()
    return (SQLAlchemyError,)
