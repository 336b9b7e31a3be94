"""Runs: one execution of a script as its own resource, with params, tags, status and times.

A run is a convenience over resources, not a second data model: its id is a resource id
generated from its name (``sgd-20261202-133501.123-4f2a``: the name, the UTC start to the
millisecond, four random hex digits, so ids of one name sort by start and never collide),
and its name, status, times and process are tags under ``trackplug.run.`` kept by any
backend that keeps tags. Every backend with params and tags therefore has runs, and a
run copies between stores like any resource.

Status: ``running`` from :meth:`Tracker.start_run`; ``finished`` when it ends normally;
``failed`` when its ``with`` block raises, Ctrl-C (``KeyboardInterrupt``) included, as
MLflow's ``start_run`` does; ``killed`` when the process that ran it died without ending
it (SIGKILL, power loss, ``os._exit``). A dead process writes nothing, so ``killed`` is
decided when the run is read: a run still ``running`` whose host is this machine and whose
process no longer exists (its id is gone, or on Linux names a process started later) is
reported ``killed``. A run of a process on another machine
stays ``running`` until it ends (no clock or heartbeat is trusted across machines).

Steps: inside a run, a metric logged without ``step=`` goes to the next step of its key
(0, 1, 2… per key, as trackio and wandb's per-key charts do), so a plain loop plots as a
line; an explicit ``step=s`` moves that key's counter to ``s + 1``.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

from ._errors import ValidationError
from ._params import RUN_END_TAG as END
from ._params import RUN_HOST_TAG as HOST
from ._params import RUN_NAME_TAG as NAME
from ._params import RUN_PID_TAG as PID
from ._params import RUN_START_TAG as START
from ._params import RUN_STATUS_TAG as STATUS
from ._validation import check_key, check_step, now_ms, short_repr

if TYPE_CHECKING:
    from ._model import ParamValue
    from ._tracker import Tracker

__all__ = [
    "Run",
    "RunInfo",
    "RunStatus",
    "Runs",
    "new_run_id",
    "run_info",
]

RunStatus = Literal["running", "finished", "failed", "killed"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
#: Longest run name: its id adds 29 characters and stays within 250.
MAX_NAME_LENGTH = 200


class RunInfo(NamedTuple):
    """What ``Tracker.runs()`` lists of one run."""

    id: str
    name: str
    status: RunStatus
    #: Start and end, ms since the epoch; ``end`` is None while running (or killed).
    start: int
    end: int | None
    params: dict[str, ParamValue]
    tags: dict[str, str]
    #: ``{key: latest value}``.
    metrics: dict[str, float]


class Runs(list[RunInfo]):
    """A list of :class:`RunInfo`, oldest first; :meth:`to_pandas` makes a DataFrame."""

    def to_pandas(self) -> Any:
        """One row per run, columns as MLflow's ``search_runs`` names them: ``run_id``,
        ``name``, ``status``, ``start_time``, ``end_time``, ``params.<key>``,
        ``metrics.<key>``, ``tags.<key>``. Needs pandas."""
        try:
            import pandas as pd  # type: ignore[import-untyped]  # an optional dependency
        except ImportError:
            raise ImportError("Runs.to_pandas() needs pandas: pip install pandas") from None
        rows = [
            {
                "run_id": run.id,
                "name": run.name,
                "status": run.status,
                "start_time": pd.to_datetime(run.start, unit="ms", utc=True),
                "end_time": pd.to_datetime(run.end, unit="ms", utc=True),
                **{f"params.{k}": v for k, v in run.params.items()},
                **{f"metrics.{k}": v for k, v in run.metrics.items()},
                **{f"tags.{k}": v for k, v in run.tags.items()},
            }
            for run in self
        ]
        columns = ["run_id", "name", "status", "start_time", "end_time"]
        return pd.DataFrame(rows, columns=[*columns, *_other_columns(rows, columns)])


def _other_columns(rows: list[dict[str, Any]], first: list[str]) -> list[str]:
    seen = {column for row in rows for column in row} - set(first)
    return sorted(
        seen, key=lambda c: (("params.", "metrics.", "tags.").index(c[: c.index(".") + 1]), c)
    )


def check_run_name(name: object) -> str:
    """A run's name: a metric key of at most 200 characters (the id adds 29)."""
    name = check_key(name)
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"run name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return name


def check_status(status: object, allowed: tuple[str, ...] = RUN_STATUSES) -> RunStatus:
    """One of ``allowed`` (the statuses a run can have), compared as a string."""
    if not isinstance(status, str) or status not in allowed:
        raise ValidationError(
            f"status {short_repr(status)} is invalid: use one of {', '.join(allowed)}"
        )
    return status  # type: ignore[return-value]


_last_start = 0
_start_lock = threading.Lock()


def next_start_ms() -> int:
    """Now in ms, but after every run this process started before: the runs of one
    process sort by start (and by id) in the order they were started."""
    global _last_start
    with _start_lock:
        _last_start = max(now_ms(), _last_start + 1)
        return _last_start


def new_run_id(name: str, start_ms: int) -> str:
    """``<name>-<UTC yyyymmdd-hhmmss.mmm>-<4 hex>``: readable, sorted by start per name."""
    seconds, ms = divmod(start_ms, 1000)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(seconds))
    return f"{name}-{stamp}.{ms:03d}-{secrets.token_hex(2)}"


def start_tags(name: str, start_ms: int) -> dict[str, str]:
    """The tags that make a resource a running run of this process."""
    return {
        NAME: name,
        STATUS: "running",
        START: str(start_ms),
        HOST: socket.gethostname(),
        PID: _process_id(os.getpid()),
    }


def run_info(
    rid: str,
    tags: Mapping[str, str],
    params: dict[str, ParamValue],
    user_tags: dict[str, str],
    metrics: dict[str, float],
) -> RunInfo:
    end = tags.get(END)
    return RunInfo(
        rid,
        tags.get(NAME, rid),
        run_status(tags),
        int(tags.get(START, "0")),
        int(end) if end else None,
        params,
        user_tags,
        metrics,
    )


def run_status(tags: Mapping[str, str]) -> RunStatus:
    """The status the tags record; ``killed`` for a run still ``running`` whose process,
    on this machine, is gone."""
    status = tags.get(STATUS, "running")
    if status == "running" and _died(tags.get(HOST), tags.get(PID)):
        return "killed"
    if status not in RUN_STATUSES:
        return "running"
    return status


def _process_id(pid: int) -> str:
    """``pid@start``: the process id, and where the system says when it started (Linux's
    ``/proc``), so that a later process given the same id is not taken for it; else ``pid``."""
    start = _start_time(pid)
    return f"{pid}@{start}" if start else str(pid)


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[19].decode() if len(fields) > 19 else None  # field 22: starttime


def _died(host: str | None, recorded: str | None) -> bool:
    """Whether the process ``recorded`` (``pid`` or ``pid@start``) on ``host`` is gone;
    False whenever it cannot be told (another machine, no permission)."""
    pid, _, start = (recorded or "").partition("@")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        pass  # it exists under another user, or the check is not possible here
    now = _start_time(int(pid))
    return bool(start and now and now != start)  # the id now names a later process


class Run:
    """One execution: log through it, end it (``with`` ends it for you).

    ::

        with t.start_run("sgd", params={"lr": 0.01}) as run:
            for epoch in range(10):
                run.log_metric("loss", loss)      # steps 0, 1, 2…
    """

    def __init__(self, tracker: Tracker, run_id: str, name: str, start_ms: int) -> None:
        self.tracker = tracker
        #: The run's resource id: pass it to any read (``t.history(run.id, "loss")``).
        self.id = run_id
        self.name = name
        self.start = start_ms
        self.status: RunStatus = "running"
        self._next_step: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.status}>"

    def _step(self, key: str, step: object) -> int:
        """The step to log ``key`` at: ``step`` (checked), else the key's next."""
        return self._next_step.get(key, 0) if step is None else check_step(key, step)

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Log ``value``; without ``step``, at the key's next step (0, 1, 2…)."""
        key = check_key(key)
        chosen = self._step(key, step)
        self.tracker.log_metric(self.id, key, value, chosen, timestamp)
        self._next_step[key] = chosen + 1  # a refused call moves no counter

    def log_metrics(
        self,
        metrics: Mapping[str, float | Mapping[str, float]],
        step: int | None = None,
        timestamp: int | None = None,
        perf_metric: str | None = None,
    ) -> None:
        """Log several metrics at one step; without ``step``, the next step of the key
        furthest along (so they stay aligned)."""
        from ._validation import flatten

        keys = list(flatten(metrics))
        chosen = max((self._next_step.get(k, 0) for k in keys), default=0) if step is None else step
        self.tracker.log_metrics(self.id, metrics, perf_metric, step=chosen, timestamp=timestamp)
        for key in keys:
            self._next_step[key] = chosen + 1

    def log_params(self, params: Mapping[str, ParamValue]) -> None:
        self.tracker.log_params(self.id, params)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.tracker.set_tags(self.id, tags)

    def end(self, status: Literal["finished", "failed", "killed"] = "finished") -> None:
        """Record the end and its status; a second call does nothing."""
        if self.status != "running":
            return
        ended = check_status(status, RUN_STATUSES[1:])
        # never before the start, which may be a little ahead of the clock (next_start_ms)
        self.tracker._end_run(self, ended, max(now_ms(), self.start))
        self.status = ended

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.end("finished" if exc_type is None else "failed")
