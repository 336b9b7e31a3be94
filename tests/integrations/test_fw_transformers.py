"""The Trainer callback with the real ``transformers.Trainer``: a 2-layer BERT built from a
config (tiny vocabulary, no download) on synthetic token ids, a few CPU steps. The store must
hold exactly what ``trainer.state.log_history`` records, the arguments and the model's config
as params, and the run's status."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import pytest

import trackplug

torch = pytest.importorskip("torch", reason="torch is not installed (requirements/test.txt)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate")

from fw_points import Point, assert_same_points, stored_points  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainerState,
    TrainingArguments,
)

from trackplug.integrations.transformers import TrackplugCallback  # noqa: E402


class Tokens(torch.utils.data.Dataset[dict[str, Any]]):
    """``n`` sequences of 8 random token ids with a random label."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 50, (n, 8), generator=g)
        self.labels = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def tiny_bert() -> Any:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def trainer(tmp_path: Path, callbacks: list[Any], **arguments: Any) -> Any:
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        **{
            "max_steps": 6,
            "per_device_train_batch_size": 4,
            "logging_steps": 2,
            "eval_strategy": "steps",
            "eval_steps": 3,
            "report_to": "none",
            "save_strategy": "no",
            "use_cpu": True,
            "disable_tqdm": True,
            **arguments,
        },
    )
    return Trainer(
        model=tiny_bert(),
        args=args,
        train_dataset=Tokens(32, 0),
        eval_dataset=Tokens(8, 1),
        callbacks=callbacks,
    )


def history_points(log_history: list[dict[str, Any]]) -> list[Point]:
    """Every number the Trainer logged, at the step it recorded with it."""
    return [
        (key, entry["step"], float(value))
        for entry in log_history
        for key, value in entry.items()
        if key != "step" and isinstance(value, numbers.Real)
    ]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_training_stores_its_log_history_arguments_config_and_finished(
    store: str, tmp_path: Path
) -> None:
    callback = TrackplugCallback(store, name="bert", tags={"data": "synthetic"})
    done = trainer(tmp_path, [callback], hub_token="hf_secret_token")
    done.train()

    with trackplug.connect(store) as tracker:
        (run,) = tracker.runs("bert")
        assert (run.id, run.status, run.tags) == (
            callback.last_run_id,
            "finished",
            {"data": "synthetic"},
        )
        reported = history_points(done.state.log_history)
        assert {"loss", "eval_loss", "train_loss", "learning_rate"} <= {k for k, _, _ in reported}
        assert_same_points(stored_points(tracker, run.id), reported)
        params = tracker.params(run.id)
    assert params["max_steps"] == 6
    assert params["learning_rate"] == 5e-05
    assert params["lr_scheduler_type"] == "linear"
    assert params["model/hidden_size"] == 16
    assert params["model/num_hidden_layers"] == 2
    assert params["model/id2label/1"] == "LABEL_1"
    assert params["model/model_type"] == "bert"
    assert not [key for key, value in params.items() if "hf_secret" in str(value)]
    assert callback.run is None  # its tracker closed with the run


def test_an_evaluation_after_training_goes_to_the_trainings_run(store: str, tmp_path: Path) -> None:
    callback = TrackplugCallback(store, name="bert")
    done = trainer(tmp_path, [callback])
    done.train()
    metrics = done.evaluate()

    with trackplug.connect(store) as tracker:
        (run,) = tracker.runs("bert")
        assert tracker.history(run.id, "eval_loss")[-1][1:3] == (metrics["eval_loss"], 6)


class Diverging(TrainerCallback):
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 3:
            raise RuntimeError("the loss diverged")


def test_a_training_that_raised_is_failed_when_the_next_one_starts(
    store: str, tmp_path: Path
) -> None:
    callback = TrackplugCallback(store, name="bert")
    with pytest.raises(RuntimeError, match="diverged"):
        trainer(tmp_path, [callback, Diverging()]).train()
    crashed, tracker = callback.last_run_id, callback.run.tracker  # still open: it raised
    assert [run.status for run in tracker.runs("bert")] == ["running"]
    assert tracker.history(crashed, "loss")[-1].step == 2

    trainer(tmp_path, [callback]).train()
    with trackplug.connect(store) as tracker:
        runs = tracker.runs("bert")
    assert [(run.id, run.status) for run in runs] == [
        (crashed, "failed"),
        (callback.last_run_id, "finished"),
    ]


def test_report_to_trackplug_selects_it_and_writes_to_trackplug_url(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKPLUG_URL", store)
    done = trainer(tmp_path, [], report_to="trackplug", run_name="from-args")
    assert any(isinstance(c, TrackplugCallback) for c in done.callback_handler.callbacks)
    done.train()
    with trackplug.connect(store) as tracker:
        (run,) = tracker.runs("from-args")
        assert run.status == "finished"
        assert_same_points(stored_points(tracker, run.id), history_points(done.state.log_history))


def test_only_the_main_process_writes(store: str, tmp_path: Path) -> None:
    callback = TrackplugCallback(store)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none")
    state = TrainerState(is_world_process_zero=False, global_step=2)
    control = transformers.TrainerControl()
    callback.on_train_begin(args, state, control, model=tiny_bert())
    callback.on_log(args, state, control, logs={"loss": 0.5})
    callback.on_train_end(args, state, control)
    assert (callback.run, callback.last_run_id) == (None, None)
    assert not (tmp_path / "runs.db").exists()


def test_trackplug_capture_captures_what_the_callback_logs(
    trackplug_capture: Any, tmp_path: Path
) -> None:
    server = "mlflow+http://mlflow.internal:5000?experiment=bert"  # never reached
    done = trainer(tmp_path, [TrackplugCallback(server, name="captured")])
    done.train()

    (run,) = trackplug_capture.runs("captured")
    assert run.status == "finished"
    trackplug_capture.assert_logged(run.id, "loss", steps=[2, 4, 6])
    trackplug_capture.assert_logged(run.id, "eval_loss", steps=[3, 6])
    assert trackplug_capture.connections == [[server]]
