"""The Lightning logger with the real Lightning: a tiny ``LightningModule`` on random tensors,
a few CPU steps. The store must hold exactly what Lightning's own ``CSVLogger`` wrote beside
it in the same fit (``Trainer(logger=[ours, CSVLogger])``), the hyperparameters as params,
and the status Lightning's ``finalize`` gave."""

from __future__ import annotations

import csv
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

import trackplug

torch = pytest.importorskip("torch", reason="torch is not installed (requirements/test.txt)")
pl = pytest.importorskip("lightning.pytorch", reason="lightning is not installed")

from fw_points import Point, assert_same_points, stored_points  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from lightning.pytorch.utilities.rank_zero import rank_zero_only  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from trackplug.integrations.lightning import TrackplugLogger  # noqa: E402


class Regression(pl.LightningModule):
    """A linear model; ``fail_at`` makes that training step raise."""

    def __init__(
        self,
        lr: float = 0.1,
        net: dict[str, Any] | None = None,
        run: Namespace | None = None,
        fail_at: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, index: int) -> Any:
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("the loss diverged")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[DataLoader[Any], DataLoader[Any]]:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g))
    return DataLoader(data, batch_size=8), DataLoader(data, batch_size=32)


def fit(
    model: pl.LightningModule, loggers: list[Any], tmp_path: Path, epochs: int = 2
) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=loggers,
        log_every_n_steps=2,
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, *loaders())
    return trainer


def csv_points(logger: CSVLogger) -> list[Point]:
    """Every ``(key, step, value)`` CSVLogger wrote: one row per ``log_metrics`` call."""
    with open(Path(logger.log_dir) / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    return [
        (key, int(row["step"]), float(value))
        for row in rows
        for key, value in row.items()
        if key != "step" and value != ""
    ]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


HPARAMS = {
    "lr": 0.1,
    "net": {"hidden": 8, "layers": [{"act": "relu"}, {"act": "tanh"}], "sizes": [4, 1]},
    "run": Namespace(seed=7, tag=None),
}
#: The params Lightning's own ``_flatten_dict`` + ``_sanitize_params`` would give.
FLAT = {
    "lr": 0.1,
    "net/hidden": 8,
    "net/layers/0/act": "relu",
    "net/layers/1/act": "tanh",
    "net/sizes": "[4, 1]",
    "run/seed": 7,
    "run/tag": None,
    "fail_at": None,
}


def test_a_fit_stores_what_csvlogger_wrote_its_hparams_and_finished(
    store: str, tmp_path: Path
) -> None:
    ours, theirs = TrackplugLogger(store, name="regression"), CSVLogger(tmp_path / "csv")
    fit(Regression(**HPARAMS), [ours, theirs], tmp_path)

    with trackplug.connect(store) as tracker:
        (run,) = tracker.runs("regression")
        assert run.id == ours.version
        assert run.status == "finished"
        assert run.end is not None
        assert tracker.params(run.id) == FLAT
        reported = csv_points(theirs)
        assert {key for key, _, _ in reported} == {
            "epoch", "train_loss_step", "train_loss_epoch", "val_loss",
        }  # fmt: skip
        assert_same_points(stored_points(tracker, run.id), reported)
    assert ours.tracker is None  # the tracker it opened is closed with the run


def test_a_fit_that_raises_leaves_a_failed_run_with_what_it_logged(
    store: str, tmp_path: Path
) -> None:
    ours, theirs = TrackplugLogger(store, name="diverging"), CSVLogger(tmp_path / "csv")
    with pytest.raises(RuntimeError, match="diverged"):
        fit(Regression(fail_at=5), [ours, theirs], tmp_path)

    with trackplug.connect(store) as tracker:
        (run,) = tracker.runs("diverging")
        assert run.status == "failed"
        assert run.params["fail_at"] == 5
        assert_same_points(stored_points(tracker, run.id), csv_points(theirs))
        assert max(point.step for point in tracker.history(run.id, "train_loss_step")) == 3


def test_each_fit_is_a_run_and_a_given_tracker_is_flushed_not_closed(tmp_path: Path) -> None:
    tracker = trackplug.connect("memory://")
    logger = TrackplugLogger(tracker, name="twice", tags={"team": "vision"})
    fit(Regression(), [logger], tmp_path, epochs=1)
    first = logger.version
    fit(Regression(lr=0.05), [logger], tmp_path, epochs=1)

    runs = tracker.runs("twice")  # the tracker is still open
    assert [run.id for run in runs] == [first, logger.version]
    assert first != logger.version
    assert [run.status for run in runs] == ["finished", "finished"]
    assert [run.params["lr"] for run in runs] == [0.1, 0.05]
    assert [run.tags for run in runs] == [{"team": "vision"}] * 2
    tracker.close()


def test_the_logger_answers_lightning_sensibly(store: str) -> None:
    logger = TrackplugLogger(store, name="answers")
    assert (logger.name, logger.save_dir) == ("answers", None)
    run = logger.experiment  # started on first use, as Lightning's setup does
    assert isinstance(run, trackplug.Run)
    assert logger.version == run.id
    logger.log_metrics({"acc": torch.tensor(0.5), "text": "skipped"}, step=3)
    logger.finalize("success")
    assert logger.version == run.id  # the last run's, for the checkpoint directory
    with trackplug.connect(store) as tracker:
        assert tracker.history(run.id, "acc")[0][1:3] == (0.5, 3)
        assert tracker.latest(run.id) == {"acc": 0.5}


def test_only_global_rank_zero_opens_a_tracker_or_writes(store: str, tmp_path: Path) -> None:
    logger = TrackplugLogger(store, name="ranked")
    saved = rank_zero_only.rank
    rank_zero_only.rank = 1  # what Lightning sets in the processes of ranks > 0
    try:
        logger.log_hyperparams({"lr": 0.1})
        logger.log_metrics({"loss": 1.0}, step=0)
        logger.finalize("success")
        assert logger.version == ""
        assert logger.tracker is None
    finally:
        rank_zero_only.rank = saved
    assert not (tmp_path / "runs.db").exists()  # nothing was even opened


def test_trackplug_capture_captures_what_the_logger_logs(
    trackplug_capture: Any, tmp_path: Path
) -> None:
    server = "mlflow+http://mlflow.internal:5000?experiment=regression"  # never reached
    fit(Regression(), [TrackplugLogger(server, name="captured")], tmp_path, epochs=1)

    (run,) = trackplug_capture.runs("captured")
    assert run.status == "finished"
    assert run.params["lr"] == 0.1
    trackplug_capture.assert_logged(run.id, "train_loss_step", steps=[1, 3, 5, 7])
    assert trackplug_capture.connections == [[server]]
