"""The exceptions trackplug raises; one small tree, each type specific.

::

    TrackplugError
     ├── ValidationError (ValueError)      bad input, rejected before anything is written
     │    ├── InvalidTypeError (TypeError) a value of the wrong type (bool, None, str, array…)
     │    └── ParamConflictError           a write-once param logged again with another value
     ├── BackendError                      a backend failed; the original is ``__cause__``
     │    ├── UnsupportedValueError        a value the backend declared it cannot keep
     │    └── UnsupportedOperationError    a backend without params and tags was asked for them
     ├── UnknownBackendError (LookupError) no installed plugin serves a URL's scheme
     ├── PluginError                       a plugin is broken (duplicate scheme, bad hook)
     └── ClosedError (RuntimeError)        a tracker was used after ``close()``

    TrackplugWarning (UserWarning)
     ├── BackendWarning                    a backend failed; its write was dropped or spooled
     ├── PluginWarning                     a plugin could not be loaded and was skipped
     └── CloseWarning                      a tracker left open could not be flushed

Messages name the key, value, backend or URL at fault, never a password.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendWarning",
    "CloseWarning",
    "ClosedError",
    "InvalidTypeError",
    "ParamConflictError",
    "PluginError",
    "PluginWarning",
    "TrackplugError",
    "TrackplugWarning",
    "UnknownBackendError",
    "UnsupportedOperationError",
    "UnsupportedValueError",
    "ValidationError",
]


class TrackplugError(Exception):
    """Base of every error trackplug raises on purpose."""


class ValidationError(TrackplugError, ValueError):
    """An argument breaks a rule of the contract; nothing was written."""


class InvalidTypeError(ValidationError, TypeError):
    """A value has a type metrics cannot have (bool, None, str, an array…)."""


class ParamConflictError(ValidationError):
    """A param already holds another value: params are write-once (MLflow's rule)."""


class BackendError(TrackplugError):
    """A backend could not do what was asked; its own exception is ``__cause__``."""


class UnsupportedValueError(BackendError, ValidationError):
    """A backend declared (``Capabilities``) that it cannot keep this value."""


class UnsupportedOperationError(BackendError):
    """A backend does not implement an optional group of hooks (params and tags) that the
    call needs; nothing was written anywhere."""


class UnknownBackendError(TrackplugError, LookupError):
    """No installed plugin serves the scheme of a URL."""


class PluginError(TrackplugError):
    """A plugin broke the plugin contract (duplicate scheme, misspelled hook…)."""


class ClosedError(TrackplugError, RuntimeError):
    """The tracker was closed; open a new one with ``trackplug.connect()``."""


class TrackplugWarning(UserWarning):
    """Base of every warning trackplug gives: something failed, and was dealt with."""


class BackendWarning(TrackplugWarning):
    """A backend failed; its write was dropped (``warn``) or kept in the outbox (``spool``)."""


class PluginWarning(TrackplugWarning):
    """A plugin could not be loaded and was skipped."""


class CloseWarning(TrackplugWarning):
    """A tracker left open (at interpreter exit, or when garbage-collected) could not be
    flushed and closed: points it had not written yet may be lost. The other open trackers
    are closed all the same."""


# Shown as they are imported: ``trackplug.ValidationError``, in tracebacks and warnings too.
for _public in (
    TrackplugError,
    ValidationError,
    InvalidTypeError,
    ParamConflictError,
    BackendError,
    UnsupportedValueError,
    UnsupportedOperationError,
    UnknownBackendError,
    PluginError,
    ClosedError,
    TrackplugWarning,
    BackendWarning,
    PluginWarning,
    CloseWarning,
):
    _public.__module__ = "trackplug"
