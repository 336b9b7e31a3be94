"""trackplug inside ML frameworks. Each module imports its framework when it is imported
itself, never from ``import trackplug``:

- :mod:`trackplug.integrations.lolpop`: lolpop metrics-tracker components (needs lolpop);
- :mod:`trackplug.integrations.lightning`: ``TrackplugLogger``, a Lightning logger (needs
  lightning);
- :mod:`trackplug.integrations.transformers`: ``TrackplugCallback``, a ``Trainer`` callback,
  also ``report_to="trackplug"`` (needs transformers);
- :mod:`trackplug.integrations.keras`: ``TrackplugCallback``, a Keras 3 callback (needs keras);
- :mod:`trackplug.integrations.lolpop_calls`: lolpop's calling conventions on a trackplug
  tracker, without lolpop (what those components and ``trackplug_mlflow``'s drop-in share).

What the framework adapters share (targets, hyperparameters as params, statuses) is in
``_session``. The guide: docs/guide/integrations.md.
"""
