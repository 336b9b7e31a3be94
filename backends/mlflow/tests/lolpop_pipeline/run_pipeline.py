"""Run lolpop's own pipelines on iris, configured by a lolpop YAML (one process per run).

    python run_pipeline.py CONFIG.yaml

From a ``ClassificationRunner`` built from the YAML: ``OfflineTrain.split_data`` and
``train_model`` (lolpop's ``LocalHyperparameterTuner`` over a small scikit-learn trainer, a
lolpop extension in ``extension/``), then ``OfflinePredict.get_predictions`` on the test split,
then ``runner.stop()``. The splits are fixed (a ``SPLIT`` column) and the tree is seeded, so
two runs log the same values.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_iris

EXTENSION_ROOT = Path(__file__).parent / "extension"
SPLITS = ("train", "train", "train", "valid", "test")  # by row number, modulo 5


def iris() -> pd.DataFrame:
    """Iris with its species names as labels and a fixed split per row."""
    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "species"})
    frame["species"] = [str(bunch.target_names[i]) for i in bunch.target]
    frame["SPLIT"] = [SPLITS[i % len(SPLITS)] for i in range(len(frame))]
    return frame


def main(config: str) -> None:
    sys.path.append(str(EXTENSION_ROOT))  # before lolpop is imported: extend_path reads it
    from lolpop.runner import ClassificationRunner

    runner = ClassificationRunner(conf=config)
    data = iris()
    splits = runner.train.split_data(data)
    model, model_version = runner.train.train_model(splits)
    test = data[data["SPLIT"] == "test"].reset_index(drop=True)
    runner.predict.get_predictions(model, model_version, test)
    runner.stop()


if __name__ == "__main__":
    main(sys.argv[1])
