"""A small scikit-learn trainer, added to lolpop the way lolpop adds any extension.

lolpop finds a component by class name in ``lolpop.component``, then ``lolpop.extension``:
this file sits at ``<dir>/lolpop/extension/<extension>/component/<type>/<file>.py`` with
``<dir>`` on ``sys.path``, where lolpop's ``extend_path`` picks it up at import. (Its
hyperparameter tuner loads the trainer with no plugin modules, so an extension is the one way
a trainer of one's own reaches it.)
"""

from __future__ import annotations

from typing import Any

from lolpop.component.model_trainer.base_model_trainer import BaseModelTrainer
from sklearn.tree import DecisionTreeClassifier


class SklearnModelTrainer(BaseModelTrainer):  # type: ignore[misc]
    """A decision tree (seeded: two runs on the same splits give the same metrics)."""

    def __init__(
        self, problem_type: str | None = None, params: Any = None, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, problem_type=problem_type, params=params or {}, **kwargs)
        self.model = DecisionTreeClassifier(random_state=0, **dict(self.params))

    def fit(self, data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.model.fit(data["X_train"], data["y_train"])
        return self.model

    def predict(self, data: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        predictions: dict[str, Any] = {}
        for split in ("train", "valid", "test"):
            features = data.get(f"X_{split}")
            if features is not None:
                predictions[split] = self.model.predict(self._features(features))
                predictions[f"{split}_proba"] = self.model.predict_proba(self._features(features))
        return predictions

    def predict_df(self, df: Any, *args: Any, **kwargs: Any) -> Any:
        return self.model.predict(self._features(df))

    def predict_proba_df(self, df: Any, to_list: bool = False, *args: Any, **kwargs: Any) -> Any:
        probabilities = self.model.predict_proba(self._features(df))
        return probabilities.tolist() if to_list else probabilities

    def _features(self, df: Any) -> Any:
        """The columns the tree was fitted on, in that order (prediction data has more)."""
        return df[list(self.model.feature_names_in_)]
