"""Lifecycle and declarations: capabilities, large batches, persistence across reopen, and
URLs without passwords."""

from __future__ import annotations

import math

import pytest

from trackplug import Capabilities, MetricPoint, Tracker

from .base import ContractBase, Pair, open_tracker
from .reference import exact_history

__all__ = ["CapabilityTests", "PersistenceTests", "UrlTests"]

_PASSWORD = "s3cret-Pa55word"


def fill(pair: Pair) -> list[str]:
    """Log a little of everything through ``pair``; returns the resources written."""
    for step, value in enumerate([math.nan, math.inf, -math.inf, -0.0, 0.5, 5e-324]):
        pair.log("run-1", "val.loss", value, step - 2, 10 + step)
    pair.log("run-1", "val.loss", 0.5, 3, 13)  # an exact duplicate
    pair.log("run-1", "edge", 1.0, 2**63 - 1, 2**63 - 1)
    pair.log("run-1", "edge", 1.0, -(2**63), 0)
    pair.do(lambda t: t.log_metrics("run-2", {"valid": {"f1": 0.75}, "n": 4}, "f1", timestamp=1))
    pair.do(lambda t: t.copy_metrics("run-1", "run-3"))
    pair.do(lambda t: t.log_metrics("run-4", {"loss": math.nan, "f1": -0.0}, "f1", timestamp=1))
    lookalikes = ["RUN-1", "é", "e\u0301", "a%20b", "a b", "😀" * 249 + "1", "😀" * 249 + "2"]
    for i, rid in enumerate(lookalikes):  # kept apart on disk too (file names, collations)
        pair.log(rid, "val.loss", float(i), i, 1)
    pair.log("run-2", "last", 42.0, 1, 1)  # the last batch before close: still buffered
    return ["run-1", "run-2", "run-3", "run-4", *lookalikes]


class CapabilityTests(ContractBase):
    """What the backend declares is a :class:`~trackplug.Capabilities`, and batches of any
    size arrive whole."""

    def test_capabilities_are_declared(self) -> None:
        with self.pair() as pair:
            assert isinstance(pair.caps, Capabilities), "the capabilities hook"
            assert pair.caps.min_step <= 0 <= pair.caps.max_step, "step 0 is the default step"
            assert pair.caps.max_batch_size is None or pair.caps.max_batch_size >= 1

    def test_a_large_batch_arrives_whole(self) -> None:
        with self.pair() as pair:
            points = [MetricPoint(f"k{i % 7}", i / 3, i, i % 5) for i in range(5000)]
            pair.log_points("big", points)
            pair.do(lambda t: t.flush())
            pair.check_resource("big")


class PersistenceTests(ContractBase):
    """A persistent backend keeps everything across ``close()`` and reopening."""

    @pytest.mark.trackplug_persistent
    def test_reopen_keeps_everything(self) -> None:
        backend = self.new_backend()
        pair = Pair(open_tracker(backend))
        try:
            if not pair.caps.persistent:
                pytest.skip("the backend declares Capabilities(persistent=False)")
            written = fill(pair)
            pair.tracker.close()  # drains the buffer, flushes and closes the backend
            pair.tracker = open_tracker(self.reopen(backend))
            assert pair.tracker.capabilities == pair.caps, "capabilities changed on reopen"
            pair.check(written, ["val.loss", "f1", "last"])
            assert pair.tracker.get_metric("run-2", "last") == 42.0, "the last batch was lost"
        finally:
            pair.close()

    @pytest.mark.trackplug_persistent
    def test_reopened_store_takes_more_writes(self) -> None:
        backend = self.new_backend()
        tracker = open_tracker(backend)
        try:
            if not tracker.capabilities.persistent:
                pytest.skip("the backend declares Capabilities(persistent=False)")
            tracker.log_metric("r", "m", 1.0, step=1, timestamp=1)
            tracker.close()
            tracker = open_tracker(self.reopen(backend))
            tracker.log_metric("r", "m", 1.0, step=1, timestamp=1)  # a replay: collapses
            tracker.log_metric("r", "m", 2.0, step=2, timestamp=2)
            copies = 2 if tracker.capabilities.duplicates == "keep" else 1
            want = [MetricPoint("m", 1.0, 1, 1)] * copies + [MetricPoint("m", 2.0, 2, 2)]
            assert exact_history(tracker.history("r", "m")) == exact_history(want)
        finally:
            tracker.close()


class UrlTests(ContractBase):
    """``url`` says where the data lives, never with a password."""

    def test_url_is_a_string(self) -> None:
        with self.pair() as pair:
            assert isinstance(pair.tracker.url, str)
            assert pair.tracker.url, "url is empty"

    def test_password_never_shows(self) -> None:
        backend = self.make_backend_with_password(_PASSWORD)
        if backend is None:
            pytest.skip("make_backend_with_password() returns None: URLs carry no password")
        tracker = Tracker(backend, flush_interval=3600.0)
        try:
            shown = {
                "tracker.url": tracker.url,
                "repr(tracker)": repr(tracker),
                "backend.url": str(getattr(backend, "url", "")),
                "repr(backend)": repr(backend),
                "str(backend)": str(backend),
            }
            leaks = [name for name, text in shown.items() if _PASSWORD in text]
            assert not leaks, f"the password shows in {', '.join(leaks)}"
        finally:
            tracker.close()
