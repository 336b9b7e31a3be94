"""Reads across resources: ``best`` (ordering, ties, NaN, limits), ``resources`` and the
isolation of one resource from another."""

from __future__ import annotations

import math
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackplug import ValidationError

from . import strategies as tps
from .base import ContractBase
from .reference import exact_best

__all__ = ["BestTests", "ResourceTests"]

#: Resource ids that share prefixes, case, separators, or a long prefix up to the longest
#: id allowed (250 characters): a store that matches ids loosely (``LIKE 'a%'``,
#: case-folding, path joining) or keeps them in a shorter column mixes them up.
LOOKALIKE_IDS = (
    "a", "a1", "A", "a/b", "a b", "a_b", "a%", "a.b", "é", "e", "ab", "b",
    "x" * 64, "x" * 65, "x" * 249 + "y", "x" * 250,
)  # fmt: skip


class BestTests(ContractBase):
    """``best(key, order, limit)``: latest values, best first, ties by id, NaN not ranked."""

    def test_best_orders_by_latest_value(self) -> None:
        with self.pair() as pair:
            # (resource, [(step, value)]): the latest value ranks, not the best one logged.
            runs = {
                "r1": [(0, 0.9), (1, 0.2)],
                "r2": [(0, 0.5)],
                "r3": [(5, 0.5)],  # ties r2: by id
                "r0": [(0, 0.5), (1, math.nan)],  # latest NaN: not ranked
                "r4": [(0, -math.inf)],
                "r5": [(0, math.inf)],
                "r6": [(0, -0.0)],
            }
            for rid, points in runs.items():
                for step, value in points:
                    pair.log(rid, "f1", value, step, 1)
            pair.log("other", "loss", 0.1)  # no f1: not ranked
            for order in ("max", "min"):
                for limit in (1, 2, 3, 7, 100):
                    pair.check_best("f1", order, limit)
            if not pair.caps.limited:
                self._check_literal(pair.tracker.best("f1", "max", 100))

    @staticmethod
    def _check_literal(ranking: list[tuple[str, float]]) -> None:
        ids = [rid for rid, _ in ranking]
        assert "r0" not in ids, "a resource whose latest value is NaN is not ranked"
        assert "other" not in ids, "a resource without the key is not ranked"
        assert ids.index("r2") < ids.index("r3"), "ties are broken by resource id"
        assert ids.index("r3") < ids.index("r1"), "ranked by the latest value, not the best"

    def test_best_matches_the_model(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(
                latest=st.dictionaries(
                    st.sampled_from(LOOKALIKE_IDS), st.lists(tps.values(), min_size=1, max_size=3)
                ),
                order=st.sampled_from(["max", "min"]),
                limit=st.integers(min_value=1, max_value=14),
            )
            def check(
                latest: dict[str, list[float]], order: Literal["max", "min"], limit: int
            ) -> None:
                key = pair.fresh("k")  # a new key per example: earlier examples are not ranked
                for rid, values in latest.items():
                    for step, value in enumerate(values):
                        pair.log(rid, key, value, step, 1)
                got = exact_best(pair.tracker.best(key, order, limit))
                assert len(got) <= limit, f"best(limit={limit}) returned {len(got)}"
                pair.check_best(key, order, limit)

            check()

    @pytest.mark.parametrize("args", [("m", "best", 1), ("m", "max", 0), ("bad..key", "max", 1)])
    def test_best_refuses_bad_arguments(self, args: tuple[str, str, int]) -> None:
        with self.pair() as pair, pytest.raises(ValidationError):
            pair.tracker.best(*args)  # type: ignore[arg-type]

    def test_best_of_nothing(self) -> None:
        with self.pair() as pair:
            assert pair.tracker.best("f1", "max", 5) == []
            pair.log("r", "loss", 1.0)
            assert pair.tracker.best("f1", "min", 5) == [], "no resource has f1"


class ResourceTests(ContractBase):
    """Each resource holds exactly its own metrics; ``resources()`` lists those with any."""

    def test_lookalike_resources_are_isolated(self) -> None:
        with self.pair() as pair:
            for i, rid in enumerate(LOOKALIKE_IDS):
                pair.log(rid, "m", float(i), 0, 1)
                pair.log(rid, f"own_{i}", -float(i), 2, 3)
                pair.log_metrics(rid, {"p": i / 2}, "p", ts=2)
            pair.check(LOOKALIKE_IDS, ["m", "p"])
            assert pair.tracker.resources() == sorted(LOOKALIKE_IDS)

    def test_resources_match_the_model(self) -> None:
        with self.pair() as pair:

            @self.examples
            @given(ids=st.lists(tps.resource_ids(), max_size=5), key=tps.keys())
            def check(ids: list[str], key: str) -> None:
                for i, rid in enumerate(ids):
                    pair.log(rid, key, float(i), i, 1)
                pair.check(ids, [key])

            check()

    def test_resource_forms(self) -> None:
        class Model:
            id = "model-1"

        with self.pair() as pair:
            pair.tracker.log_metric("model-1", "a", 1.0, timestamp=1)
            pair.tracker.log_metric(Model(), "b", 2.0, timestamp=1)
            pair.tracker.log_metric(("model-1", object()), "c", 3.0, timestamp=1)
            assert pair.tracker.resources() == ["model-1"], "id, object and tuple: one resource"
            assert pair.tracker.latest(Model()) == {"a": 1.0, "b": 2.0, "c": 3.0}

    @pytest.mark.parametrize("rid", ["", "x" * 251, "tab\tid", None, True, 1.5], ids=repr)
    def test_invalid_resources_write_nothing(self, rid: object) -> None:
        with self.pair() as pair:
            with pytest.raises(ValidationError):
                pair.tracker.log_metric(rid, "m", 1.0)
            assert pair.tracker.resources() == []
