"""Testing code that logs metrics: capture every metric it logs, whatever URL it uses.

With pytest, ask for the ``trackplug_capture`` fixture (a ``pytest11`` plugin of this
distribution; tests that do not ask for it see no change)::

    def test_training_logs_a_good_f1(trackplug_capture):
        train()                                  # calls trackplug.connect("mlflow+http://…")
        trackplug_capture.assert_latest("sgd-1", "valid_f1", at_least=0.8)
        assert trackplug_capture.history("sgd-1", "loss")[-1].step == 9

Without pytest, :func:`capture` does the same in a ``with`` block. The guide is
docs/guide/testing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._capture import CAPTURE_URL, Capture, capture

__all__ = ["CAPTURE_URL", "Capture", "capture"]


def __getattr__(name: str) -> Any:
    """The capture is loaded on first use: pytest imports this package's plugin at every
    start, in every project where trackplug is installed."""
    if name in __all__:
        from . import _capture

        return getattr(_capture, name)
    raise AttributeError(f"module 'trackplug.testing' has no attribute {name!r}")
