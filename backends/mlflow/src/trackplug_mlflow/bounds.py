"""A per-store bound on every request MLflow's REST client sends to a tracking server.

MLflow's ``http_request`` takes its timeout and retries from environment variables
(``MLFLOW_HTTP_REQUEST_TIMEOUT``, 120 s, and ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, 7, with
backoff), so a frozen server holds a caller for many minutes. Setting those variables would
change every other MLflow client in the process. Instead :func:`install` wraps
``mlflow.utils.rest_utils.http_request`` once, and inside :func:`bounded` (a context
variable: this thread or task only) a request that names no timeout of its own waits at most
the store's ``?timeout=`` and is sent once, unless ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` asks
for retries. Outside :func:`bounded` the wrapper changes nothing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["bounded", "install"]

_BOUND: ContextVar[float | None] = ContextVar("trackplug_mlflow_bound", default=None)
_INSTALL_LOCK = threading.Lock()


@contextmanager
def bounded(timeout: float) -> Iterator[None]:
    """MLflow's REST requests from this context wait at most ``timeout`` seconds each."""
    token = _BOUND.set(timeout)
    try:
        yield
    finally:
        _BOUND.reset(token)


def install() -> None:
    """Wrap MLflow's ``http_request`` (idempotent; the REST store looks it up per call)."""
    from mlflow.utils import rest_utils

    with _INSTALL_LOCK:
        if not getattr(rest_utils.http_request, "__trackplug_bounded__", False):
            rest_utils.http_request = _bounding(rest_utils.http_request)


def _bounding(http_request: Any) -> Any:
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES

    @functools.wraps(http_request)
    def bounded_http_request(*args: Any, **kwargs: Any) -> Any:
        timeout = _BOUND.get()
        if timeout is not None:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            if kwargs.get("max_retries") is None and not MLFLOW_HTTP_REQUEST_MAX_RETRIES.defined:
                kwargs["max_retries"] = 0  # the fan-out's outbox retries, not a blocked caller
        return http_request(*args, **kwargs)

    bounded_http_request.__trackplug_bounded__ = True  # type: ignore[attr-defined]
    return bounded_http_request
