"""The bodies of the cases, each ``body(context) -> Result``, run by :mod:`benchmarks.worker`.

A body imports what it measures itself (mlflow only in MLflow bodies), builds its input,
then starts the timer.
"""
