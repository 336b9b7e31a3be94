"""trackplug inside ML frameworks. Each module imports its framework when it is imported
itself, never from ``import trackplug``:

- :mod:`trackplug.integrations.lolpop`: lolpop metrics-tracker components (needs lolpop);
- :mod:`trackplug.integrations.lolpop_calls`: lolpop's calling conventions on a trackplug
  tracker, without lolpop (what those components and ``trackplug_mlflow``'s drop-in share).
"""
