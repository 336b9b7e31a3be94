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
  ``mlflow.parentRunId``;
- deleted runs are left out unless ``?deleted=true``.

The index is read once (one ``search_runs`` pass, MLflow's pages) and again when a
resource is asked for that it does not know, and whenever :meth:`RunIndex.runs` lists them.
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
        experiments = self.experiment_ids()
        runs = list(self._reads.search(experiments, view_all=self._deleted))
        chosen: dict[str, Any] = {}  # two writers racing may leave two runs of one resource
        for rid, run in zip(self._resource_ids(runs), runs, strict=True):
            if rid not in chosen or _age(run) < _age(chosen[rid]):
                chosen[rid] = run
        with self._lock:
            self._ids = {rid: str(run.info.run_id) for rid, run in chosen.items()}
        yield from chosen.items()

    def run_id(self, resource_id: str) -> str | None:
        """The run of ``resource_id``; the index is read again when it does not know it."""
        with self._lock:
            known = self._ids.get(resource_id)
        if known is None:
            for _ in self.runs():
                pass
            with self._lock:
                known = self._ids.get(resource_id)
        return known

    def remember(self, resource_id: str, run_id: str) -> None:
        with self._lock:
            self._ids[resource_id] = run_id

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
