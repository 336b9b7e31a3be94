"""The Keras callback with the real Keras 3 on its torch backend (``KERAS_BACKEND``, set by this
folder's conftest before Keras is first imported): a small dense model, a few CPU epochs. The
store must hold exactly what Keras's ``History`` recorded (and, with ``log_batches``, what it
reported for each batch), the optimizer's config and the fit's parameters as params, and the
run's status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import trackplug

np = pytest.importorskip("numpy", reason="numpy is not installed")
pytest.importorskip("torch", reason="torch (Keras's backend in these tests) is not installed")
keras = pytest.importorskip("keras", reason="keras is not installed")

from fw_points import Point, assert_same_points, stored_points  # noqa: E402

from trackplug.integrations.keras import TrackplugCallback  # noqa: E402

EPOCHS, BATCHES = 3, 3  # 48 training samples of 64 (validation_split=0.25), batches of 16


@pytest.fixture(autouse=True)
def _torch_backend() -> None:
    if keras.backend.backend() != "torch":
        pytest.skip(f"Keras was imported with the {keras.backend.backend()} backend first")


def mlp() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)],
        name="mlp",
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return model


def fit(model: Any, callbacks: list[Any]) -> Any:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    return model.fit(
        x, y, epochs=EPOCHS, batch_size=16, validation_split=0.25, verbose=0, callbacks=callbacks
    )


def history_points(history: Any) -> list[Point]:
    return [
        (key, epoch, float(value))
        for key, values in history.history.items()
        for epoch, value in enumerate(values)
    ]


class BatchRecorder(keras.callbacks.Callback):  # type: ignore[misc]
    """What Keras reports after each training batch, numbered across epochs."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[Point] = []

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        step = len({s for _, s, _ in self.points})
        self.points += [(f"batch/{k}", step, float(v)) for k, v in (logs or {}).items()]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_fit_stores_its_history_optimizer_fit_params_and_finished(store: str) -> None:
    callback = TrackplugCallback(store, name="mlp", tags={"backend": "torch"})
    model = mlp()
    history = fit(model, [callback])

    with trackplug.connect(store) as tracker:
        (run,) = tracker.runs("mlp")
        assert (run.id, run.status, run.tags) == (
            callback.last_run_id,
            "finished",
            {"backend": "torch"},
        )
        assert set(run.metrics) == {"loss", "mae", "val_loss", "val_mae"}
        assert_same_points(stored_points(tracker, run.id), history_points(history))
        params = tracker.params(run.id)
    assert params["optimizer/name"] == model.optimizer.name  # adam, adam_1… in one process
    assert params["optimizer/name"].startswith("adam")
    assert params["optimizer/learning_rate"] == pytest.approx(0.01)
    assert params["optimizer/beta_1"] == 0.9
    assert (params["fit/epochs"], params["fit/steps"]) == (EPOCHS, BATCHES)
    assert (params["model/name"], params["model/parameters"]) == ("mlp", 4 * 8 + 8 + 8 + 1)


def test_log_batches_adds_every_batchs_logs_numbered_across_epochs(store: str) -> None:
    recorder = BatchRecorder()
    callback = TrackplugCallback(store, name="mlp", log_batches=True)
    history = fit(mlp(), [recorder, callback])

    assert len(recorder.points) == 2 * EPOCHS * BATCHES  # loss and mae, each batch
    with trackplug.connect(store) as tracker:
        (run,) = tracker.runs("mlp")
        assert_same_points(
            stored_points(tracker, run.id), history_points(history) + recorder.points
        )


class Failing(keras.callbacks.Callback):  # type: ignore[misc]
    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.model.optimizer.iterations.numpy() == 5:
            raise RuntimeError("the loss diverged")


def test_a_fit_that_raised_is_failed_when_the_next_one_starts(store: str) -> None:
    callback = TrackplugCallback(store, name="mlp")
    with pytest.raises(RuntimeError, match="diverged"):
        fit(mlp(), [callback, Failing()])
    crashed, tracker = callback.last_run_id, callback.run.tracker  # still open: it raised
    assert [run.status for run in tracker.runs("mlp")] == ["running"]
    assert [p.step for p in tracker.history(crashed, "loss")] == [0]  # one epoch ended

    fit(mlp(), [callback])
    with trackplug.connect(store) as tracker:
        runs = tracker.runs("mlp")
    assert [(run.id, run.status) for run in runs] == [
        (crashed, "failed"),
        (callback.last_run_id, "finished"),
    ]


def test_a_given_tracker_is_flushed_not_closed() -> None:
    with trackplug.connect("memory://") as tracker:
        callback = TrackplugCallback(tracker, name="mlp")
        fit(mlp(), [callback])
        fit(mlp(), [callback])
        assert [run.status for run in tracker.runs("mlp")] == ["finished", "finished"]


def test_trackplug_capture_captures_what_the_callback_logs(trackplug_capture: Any) -> None:
    server = "mlflow+http://mlflow.internal:5000?experiment=mlp"  # never reached
    fit(mlp(), [TrackplugCallback(server, name="captured")])

    (run,) = trackplug_capture.runs("captured")
    assert run.status == "finished"
    trackplug_capture.assert_logged(run.id, "val_loss", steps=range(EPOCHS))
    assert trackplug_capture.connections == [[server]]
