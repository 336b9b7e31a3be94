"""What the framework adapters share (trackplug.integrations._session), without a framework:
targets, hyperparameters as params, metric values, run statuses, a run a raising training
left open."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trackplug
from trackplug._params import check_params
from trackplug.integrations._session import (
    TrainingRun,
    flatten_params,
    metric_values,
    open_target,
    run_status,
    safe_key,
)


@dataclass
class Optimizer:
    name: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: dict[str, int] = field(default_factory=lambda: {"warmup": 10})


def test_hyperparameters_flatten_as_lightnings_loggers_flatten_them() -> None:
    params = {
        "lr": 0.1,
        "opt": Optimizer(),
        "data": Namespace(path="/data", shuffle=True, limit=None),
        "layers": [{"units": 8}, {"units": 1}],
        "sizes": [8, 1],
        "nan": float("nan"),
        "activation": Namespace,
        "text": "a\x00b\nc",
    }
    assert flatten_params(params) == {
        "lr": 0.1,
        "opt/name": "adam",
        "opt/betas": "(0.9, 0.999)",
        "opt/schedule/warmup": 10,
        "data/path": "/data",
        "data/shuffle": True,
        "data/limit": None,
        "layers/0/units": 8,
        "layers/1/units": 1,
        "sizes": "[8, 1]",
        "nan": "nan",
        "activation": "<class 'argparse.Namespace'>",
        "text": "a\ufffdb\nc",
    }
    assert flatten_params(Namespace(a=Namespace(b=1))) == {"a/b": 1}
    assert flatten_params(None) == {}


def test_numpy_and_torch_scalars_become_python_numbers() -> None:
    np = pytest.importorskip("numpy", reason="numpy is not installed")
    assert flatten_params({"a": np.float32(0.5), "b": np.int64(3), "c": np.bool_(True)}) == {
        "a": 0.5,
        "b": 3,
        "c": True,
    }


def test_keys_are_made_valid_and_hopeless_ones_are_left_out_with_a_warning() -> None:
    assert safe_key("loss(train)") == "loss_train_"
    assert safe_key("/abs") == "abs"
    with pytest.warns(trackplug.TrackplugWarning, match=r"\['a\.\.b'\] were not logged"):
        assert flatten_params({"a..b": 1, "ok": 2}) == {"ok": 2}


def test_text_past_mlflows_limit_is_cut_there_with_a_warning() -> None:
    with pytest.warns(trackplug.TrackplugWarning, match="'long' is 7000 characters"):
        assert flatten_params({"long": "x" * 7000}) == {"long": "x" * 6000}


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=12), json_like, max_size=5))
def test_whatever_the_hyperparameters_the_params_pass_trackplugs_rules(params: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", trackplug.TrackplugWarning)  # hopeless keys: above
        flat = flatten_params(params)
    assert check_params(flat) == flat
    with trackplug.connect("memory://") as tracker:
        tracker.log_params("r", flat)
        assert tracker.params("r") == flat


def test_metric_values_keeps_real_numbers_only() -> None:
    np = pytest.importorskip("numpy", reason="numpy is not installed")
    logs = {"loss": 0.5, "step": 3, "acc": np.float64(0.75), "name": "x", "done": True}
    logs |= {"none": None, "vector": np.ones(2), "bad key!": 1.0}
    assert metric_values(logs) == {"loss": 0.5, "step": 3.0, "acc": 0.75, "bad key_": 1.0}


def test_statuses_map_to_a_runs_end() -> None:
    assert [run_status(s) for s in ("success", "finished", "failed", "interrupted")] == [
        "finished", "finished", "failed", "failed",
    ]  # fmt: skip
    with pytest.raises(trackplug.ValidationError, match="'done' is not one of"):
        run_status("done")


def test_a_target_is_urls_or_a_tracker_and_only_what_was_opened_is_owned() -> None:
    with trackplug.connect("memory://") as given_tracker:
        assert open_target(given_tracker) == (given_tracker, False)
        with pytest.raises(trackplug.ValidationError, match="already open"):
            open_target(given_tracker, outbox="x.db")
    opened, owned = open_target(["memory://", "memory://"])
    assert owned
    assert opened.url == "memory://"
    opened.close()
    with pytest.raises(trackplug.ValidationError, match=r"a list of URLs or a trackplug\.Tracker"):
        open_target([])


def test_a_run_ends_once_closing_an_owned_tracker_and_a_new_one_follows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    training = TrainingRun(url, "train", tags={"team": "a"})
    first = training.start({"lr": 0.1})
    training.log_metrics({"loss": 1.0}, step=0)
    training.start()  # a second start: the first run was never ended, its training raised
    training.end("success")
    training.end("success")  # nothing left to end
    assert training.tracker is None
    with trackplug.connect(url) as tracker:
        runs = tracker.runs("train")
    assert [(r.id, r.status) for r in runs] == [
        (first.id, "failed"),
        (training.last_id, "finished"),
    ]
    assert runs[0].metrics == {"loss": 1.0}


def test_a_run_left_open_by_a_training_that_raised_is_failed_at_exit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    script = textwrap.dedent(
        f"""
        from trackplug.integrations._session import TrainingRun
        training = TrainingRun({url!r}, "crashing")
        training.start()
        training.log_metrics({{"loss": 0.5}}, step=0)
        raise RuntimeError("out of memory")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "out of memory" in done.stderr
    with trackplug.connect(url) as tracker:
        (run,) = tracker.runs("crashing")
    assert (run.status, run.metrics) == ("failed", {"loss": 0.5})
