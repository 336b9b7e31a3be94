"""trackplug measured against MLflow, side by side: ``python -m benchmarks [--quick]``.

Every case runs in a fresh interpreter and a fresh temporary directory; rounds are
interleaved (round 1 of every case, then round 2, ...); each figure is the median of the
rounds with min and max beside it, and every ratio comes from medians of the same run.
After each case the data is read back and counted: a wrong count fails the run.
See docs/performance.md for the method and the figures.
"""
