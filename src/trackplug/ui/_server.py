"""The dashboard's ASGI app and its server: GET endpoints over the public Tracker API.

Every endpoint answers JSON (the page itself and ``/static`` aside). Bad input — a missing
or malformed query parameter, an invalid key, an unknown route — is a 4xx with
``{"error": "..."}``; anything unexpected is a 500 with the exception's type only, never a
traceback. The store's URL is shown as ``Tracker.url`` gives it: password redacted.
Tracker calls are serialized by one lock: Starlette runs sync endpoints in a thread pool,
and a backend need not take concurrent reads.
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from itertools import islice
from typing import Any, TextIO

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from trackplug import MetricPoint, Tracker, TrackplugError, UnsupportedOperationError

__all__ = ["DEFAULT_POINTS", "LOOPBACK", "Dashboard", "create_app", "is_loopback", "serve"]

#: Points per chart line unless the page asks for more: a sampled history keeps each
#: bucket's extremes, so 2,000 points draw a 1,000-pixel-wide curve without losing a spike.
DEFAULT_POINTS = 2000
#: The most points one request may ask for.
MAX_POINTS = 200_000
#: Rows a leaderboard may ask for.
MAX_RANKS = 1000
#: The metric every prediction job has (``Tracker.log_prediction_metrics``).
PREDICTION_KEY = "num_predictions"
PREDICTION_PREFIXES = ("num_predictions", "class_distribution.", "prediction_")
LOOPBACK = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger(__name__)


class BadRequest(Exception):
    """A request the dashboard cannot answer as asked: a 400 with this message."""


def create_app(tracker: Tracker, *, allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The dashboard over ``tracker`` (which the caller opens and closes). With
    ``allowed_hosts``, requests naming another ``Host`` are refused (a web page elsewhere
    cannot reach a loopback dashboard through DNS rebinding)."""
    lock = threading.Lock()

    def endpoint(answer: Callable[[Request], object]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            with lock:
                body = answer(request)
            return JSONResponse(body, headers={"Cache-Control": "no-store"})

        return run

    routes = [
        Route("/", _index, methods=["GET"]),
        Route("/api/runs", endpoint(lambda r: _runs(tracker)), methods=["GET"]),
        Route("/api/history", endpoint(lambda r: _history(tracker, r)), methods=["GET"]),
        Route("/api/best", endpoint(lambda r: _best(tracker, r)), methods=["GET"]),
        Route("/api/predictions", endpoint(lambda r: _predictions(tracker)), methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(_static())), name="static"),
    ]
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            BadRequest: _bad_request,
            TrackplugError: _bad_request,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )


def _static() -> Any:
    return resources.files("trackplug.ui") / "static"


def _index(request: Request) -> Response:
    page = (_static() / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


# -- errors ----------------------------------------------------------------------------------


def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _server_error(request: Request, exc: Exception) -> Response:
    # The type alone: a message may quote what it should not (a path, a query).
    log.error("trackplug ui: %s failed: %s", request.url.path, type(exc).__name__)
    return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)


# -- query parameters ------------------------------------------------------------------------


def _text(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None or value == "":
        raise BadRequest(f"missing query parameter {name!r}")
    return value


def _integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    given = request.query_params.get(name)
    if given is None:
        return default
    try:
        value = int(given)
    except ValueError:
        raise BadRequest(
            f"query parameter {name!r} must be an integer, not {given[:40]!r}"
        ) from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name!r} must be from {low} to {high}, not {value}")
    return value


# -- answers ---------------------------------------------------------------------------------


def _number(value: float) -> float | str:
    """JSON has no NaN or infinity: those travel as text ("NaN", "inf", "-inf")."""
    if math.isnan(value):
        return "NaN"
    return value if math.isfinite(value) else str(value)


def _numbers(values: dict[str, float]) -> dict[str, float | str]:
    return {key: _number(value) for key, value in values.items()}


def _runs(tracker: Tracker) -> dict[str, object]:
    """Every run and every resource with metrics: status, times, params, tags, latest
    metrics and perf record (what ``trackplug ls`` lists)."""
    try:
        runs = {run.id: run for run in tracker.runs()}
    except UnsupportedOperationError:  # a backend without tags has no runs
        runs = {}
    rows: list[dict[str, Any]] = []
    for rid in sorted({*tracker.resources(), *runs}):
        run = runs.get(rid)
        perf = tracker.perf(rid)
        rows.append(
            {
                "id": rid,
                "name": run.name if run else None,
                "status": run.status if run else None,
                "start": run.start if run else None,
                "end": run.end if run else None,
                "params": run.params if run else _params(tracker, rid),
                "tags": run.tags if run else {},
                "metrics": _numbers(run.metrics if run else tracker.latest(rid)),
                "perf": {"metric": perf.metric, "value": _number(perf.value)} if perf else None,
            }
        )
    keys = sorted({key for row in rows for key in row["metrics"]})
    return {"url": tracker.url, "runs": rows, "keys": keys}


def _params(tracker: Tracker, rid: str) -> dict[str, object]:
    try:
        return dict(tracker.params(rid))
    except UnsupportedOperationError:
        return {}


def _history(tracker: Tracker, request: Request) -> dict[str, object]:
    """A sampled history (``history_sampled``), or with ``after_step`` and ``after_time``
    the points from that one on (a live chart asks for what is new; the points at that
    step and time are sent again, and the page replaces what it had from there), read
    from there a page at a time, no further than the :data:`MAX_POINTS`-th."""
    resource, key = _text(request, "resource"), _text(request, "key")
    limit = _integer(request, "max_points", DEFAULT_POINTS, 4, MAX_POINTS)
    after = request.query_params.get("after_step"), request.query_params.get("after_time")
    if after == (None, None):
        points: Sequence[MetricPoint] = tracker.history_sampled(resource, key, limit)
    elif None in after:
        raise BadRequest("give both after_step and after_time, or neither")
    else:
        last = (
            _integer(request, "after_step", 0, -(2**63), 2**63 - 1),
            _integer(request, "after_time", 0, -(2**63), 2**63 - 1),
        )
        points = list(islice(tracker.iter_history(resource, key, since=last), MAX_POINTS))
    return {
        "resource": resource,
        "key": key,
        "step": [p.step for p in points],
        "time": [p.timestamp for p in points],
        "value": [_number(p.value) for p in points],
    }


def _best(tracker: Tracker, request: Request) -> dict[str, object]:
    key = _text(request, "key")
    order = request.query_params.get("order", "max")
    if order not in ("max", "min"):
        raise BadRequest(f"query parameter 'order' must be 'max' or 'min', not {order[:40]!r}")
    limit = _integer(request, "limit", 50, 1, MAX_RANKS)
    ranking = tracker.best(key, order, limit)  # type: ignore[arg-type]  # checked above
    return {
        "key": key,
        "order": order,
        "ranking": [{"id": rid, "value": _number(value)} for rid, value in ranking],
    }


def _predictions(tracker: Tracker) -> dict[str, object]:
    """Every prediction job (a resource with ``num_predictions``) and its summary metrics."""
    jobs = []
    for rid in tracker.resources():
        latest = tracker.latest(rid)
        if PREDICTION_KEY in latest:
            summary = {k: v for k, v in latest.items() if k.startswith(PREDICTION_PREFIXES)}
            jobs.append({"id": rid, "metrics": _numbers(summary)})
    return {"jobs": jobs}


# -- serving ---------------------------------------------------------------------------------


class Dashboard:
    """The dashboard's server over ``tracker``, bound to ``host:port`` (0: a free port) as
    soon as it is built, so that :attr:`address` is known before :meth:`run`."""

    def __init__(self, tracker: Tracker, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.tracker = tracker
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(2048)  # connections wait in the backlog until run() serves them
        shown = f"[{host}]" if ":" in host else host
        #: Where the page is: ``http://127.0.0.1:PORT/``.
        self.address = f"http://{shown}:{self._socket.getsockname()[1]}/"
        app = create_app(tracker, allowed_hosts=_allowed_hosts(host))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)

    def run(self) -> None:
        """Serve until :meth:`stop` (:func:`serve` calls it on Ctrl-C or SIGTERM; run alone
        in the main thread, uvicorn's handlers stop it, then raise the signal again)."""
        self._server.run(sockets=[self._socket])

    @property
    def started(self) -> bool:
        return self._server.started

    def stop(self) -> None:
        """Stop serving once the requests under way are answered; a second call stops
        without waiting for them (a second Ctrl-C)."""
        if self._server.should_exit:
            self._server.force_exit = True
        self._server.should_exit = True


def serve(
    tracker: Tracker, host: str = "127.0.0.1", port: int = 0, out: TextIO | None = None
) -> None:
    """Serve the dashboard over ``tracker`` until Ctrl-C or SIGTERM, then return; port 0
    picks a free one. Prints the address to ``out`` (stdout) once it is bound."""
    dashboard = Dashboard(tracker, host, port)
    with _stopped_by_signals(dashboard):
        print(
            f"trackplug ui: {tracker.url} at {dashboard.address} (Ctrl-C stops it)",
            file=out or sys.stdout,
            flush=True,
        )
        dashboard.run()


@contextmanager
def _stopped_by_signals(dashboard: Dashboard) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop ``dashboard`` from before its address is printed. Left to
    uvicorn, a signal in its first milliseconds was lost: between ``asyncio.run``'s own
    SIGINT handler (which cancels a task that had not started serving yet) and uvicorn's,
    nothing stopped the server. With a handler of ours in place, asyncio installs none, and
    a server told to stop before it started stops right after binding. (Signals can only be
    handled in the main thread: elsewhere, nothing changes.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        dashboard.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _allowed_hosts(host: str) -> list[str] | None:
    """Loopback: only requests naming a loopback host (DNS rebinding). Elsewhere the user
    chose to be reachable, under names we cannot know."""
    return [*LOOPBACK, "[::1]"] if is_loopback(host) else None


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
