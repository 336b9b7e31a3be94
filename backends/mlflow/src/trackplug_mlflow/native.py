"""``?runs=all``: every run of an MLflow store as a trackplug resource, not only trackplug's.

Which resource a run is (docs/backends/mlflow.md, "Moving off MLflow, or onto it"):

- a run trackplug wrote (tag ``trackplug.resource``) is the resource that tag names, as
  without ``?runs=all``: trackplug's runs and MLflow's own coexist in one store;
- any other run is its run name when no other run of its experiment goes by that name,
  else (and when it has none) its run id;
- reading every experiment (``?runs=all`` without ``?experiment=``), the id is prefixed by
  the experiment's name and ``/``: ``Default/bright-owl-42``. A new resource written there
  is a run of the experiment its prefix names (the longest existing one, else the text
  before the last ``/``, created);
- a nested run is a resource of its own; its parent's run id stays in its tag
  ``mlflow.parentRunId``, and its parent's resource id is reported as the tag
  ``trackplug.parent`` (when the parent is among the runs read). Written to an MLflow
  store, ``trackplug.parent`` sets ``mlflow.parentRunId`` to the parent's run there, so a
  copy keeps nested runs nested under the copies of their parents;
- deleted runs are left out unless ``?deleted=true``.

The index is read whole (one ``search_runs`` pass, MLflow's pages) on first use and
whenever :meth:`RunIndex.runs` lists the runs. A resource it does not know is looked for
among the runs started since the newest one it holds (one search for just those), so
writing many new resources (``trackplug copy`` into ``?runs=all``) reads each run once,
not every run per resource.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from trackplug import ValidationError

from .reads import RunReads

__all__ = ["RESOURCE_TAG", "RunIndex"]

RESOURCE_TAG = "trackplug.resource"
PREFIX_SEPARATOR = "/"


class RunIndex:
    """Resource ids <-> run ids for every run of some experiments (all when ``None``)."""

    def __init__(
        self,
        reads: RunReads,
        create_experiment: Callable[[str], str],
        experiment_id: str | None,
        deleted: bool,
    ) -> None:
        self._reads = reads
        self._create_experiment = create_experiment
        self._experiment_id = experiment_id
        self._deleted = deleted
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}  # resource id -> run id
        self._resources: dict[str, str] = {}  # run id -> resource id
        self._held: dict[str, Any] = {}  # run id -> run, every run read
        self._newest: int | None = None  # the newest run's start time; None: never read
        self._names: dict[str, str] = {}  # experiment id -> name (every experiment)

    @property
    def every_experiment(self) -> bool:
        return self._experiment_id is None

    def experiment_ids(self) -> list[str]:
        """The experiments searched: the one named, else every one (read again each time)."""
        if self._experiment_id is not None:
            return [self._experiment_id]
        return list(self.experiment_ids_by_name())

    def runs(self) -> Iterator[tuple[str, Any]]:
        """``(resource id, run)`` of every run, the index rebuilt on the way."""
        yield from self._read().items()

    def _read(self, since: int | None = None) -> dict[str, Any]:
        """``{resource id: run}``, reading every run (or only those started ``since``, added
        to the ones held)."""
        experiments = self.experiment_ids()
        found = self._reads.search(experiments, view_all=self._deleted, since=since)
        held = {**(self._held if since is not None else {})}
        held.update((str(run.info.run_id), run) for run in found)
        runs = list(held.values())
        chosen: dict[str, Any] = {}  # two writers racing may leave two runs of one resource
        for rid, run in zip(self._resource_ids(runs), runs, strict=True):
            if rid not in chosen or _age(run) < _age(chosen[rid]):
                chosen[rid] = run
        with self._lock:
            self._held = held
            self._newest = max((run.info.start_time or 0 for run in runs), default=0)
            self._ids = {rid: str(run.info.run_id) for rid, run in chosen.items()}
            self._resources = {run_id: rid for rid, run_id in self._ids.items()}
        return chosen

    def run_id(self, resource_id: str) -> str | None:
        """The run of ``resource_id``; a resource the index does not know is looked for
        among the runs started since the newest it holds."""
        with self._lock:
            known, newest = self._ids.get(resource_id), self._newest
        if known is None:
            found = self._read(since=newest)
            known = str(found[resource_id].info.run_id) if resource_id in found else None
        return known

    def resource_of(self, run_id: str) -> str | None:
        """The resource a run is (None for a run not among them: another experiment's, a
        deleted one without ``?deleted=true``)."""
        with self._lock:
            known, never_read = self._resources.get(run_id), self._newest is None
        if known is None and never_read:
            known = {str(run.info.run_id): rid for rid, run in self._read().items()}.get(run_id)
        return known

    def remember(self, resource_id: str, run_id: str) -> None:
        with self._lock:
            self._ids[resource_id] = run_id
            self._resources[run_id] = resource_id

    def _resource_ids(self, runs: list[Any]) -> list[str]:
        """Each run's id by the module's rule; a name taken twice in one experiment names
        neither run."""
        local = [_local_id(run) for run in runs]
        pairs = zip(runs, local, strict=True)
        taken = Counter((run.info.experiment_id, name) for run, (name, _) in pairs)
        ids = []
        for run, (name, tagged) in zip(runs, local, strict=True):
            unique = tagged or taken[(run.info.experiment_id, name)] == 1
            rid = name if unique and name else str(run.info.run_id)
            if self.every_experiment:
                experiment = str(run.info.experiment_id)
                rid = f"{self._names.get(experiment, experiment)}{PREFIX_SEPARATOR}{rid}"
            ids.append(rid)
        return ids

    def place(self, resource_id: str) -> tuple[str, str]:
        """``(experiment id, id within it)`` of a new resource; with every experiment, the
        experiment its prefix names is created when missing."""
        if self._experiment_id is not None:
            return self._experiment_id, resource_id
        by_name = {
            name: eid for eid, name in (self._names or self.experiment_ids_by_name()).items()
        }
        if not any(resource_id.startswith(n + PREFIX_SEPARATOR) for n in by_name):
            by_name = {name: eid for eid, name in self.experiment_ids_by_name().items()}
        prefixes = [n for n in by_name if resource_id.startswith(n + PREFIX_SEPARATOR)]
        if prefixes:
            name = max(prefixes, key=len)
            return by_name[name], resource_id[len(name) + 1 :]
        name, sep, local = resource_id.rpartition(PREFIX_SEPARATOR)
        if not sep or not name or not local:
            raise ValidationError(
                f"resource id {resource_id!r} names no experiment: reading every experiment "
                "(?runs=all without ?experiment=), a resource is EXPERIMENT/RUN; write "
                "EXPERIMENT/RUN or name one experiment with ?experiment="
            )
        return self._create_experiment(name), local

    def experiment_ids_by_name(self) -> dict[str, str]:
        """``{experiment id: name}`` of every experiment, read again."""
        self._names = self._reads.experiments(self._deleted)
        return self._names


def _age(run: Any) -> tuple[int, str]:
    return (run.info.start_time or 0, str(run.info.run_id))


def _local_id(run: Any) -> tuple[str, bool]:
    """The name a run goes by in its experiment, and whether trackplug's tag gave it."""
    tagged = run.data.tags.get(RESOURCE_TAG)
    if tagged:
        return str(tagged), True
    return str(run.info.run_name or ""), False
