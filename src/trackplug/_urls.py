"""URL rules, in one place: the scheme that picks a backend, and password redaction.

Redaction reaches past messages: :func:`redact_chain` scrubs a password out of every
exception reachable from one (causes, contexts, arguments, attributes), so an uncaught
error prints no password even when a driver's own exception quotes the URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ._errors import ValidationError

__all__ = [
    "MIN_BARE_SECRET",
    "REDACTED",
    "password_of",
    "redact_chain",
    "redact_url",
    "scheme_of",
    "scrub",
    "scrub_chain",
    "scrubbing",
    "secrets_of",
    "timeout_of",
]

REDACTED = "***"
#: A password shorter than this is scrubbed where a URL shows it (``:pw@``), not wherever
#: its letters occur (they would match anywhere).
MIN_BARE_SECRET = 4
_SECRET_PARAMS = re.compile(r"pass(word)?|secret|token|key|auth", re.IGNORECASE)
E = TypeVar("E", bound=BaseException)


def scheme_of(url: str) -> str:
    """The lower-cased scheme of ``url`` (``"sqlite"``, ``"mlflow+http"``…); a
    :class:`~trackplug.ValidationError` for anything that is not a well-formed URL."""
    if not isinstance(url, str):
        raise ValidationError(f"a tracker URL is a string, not a {type(url).__name__}")
    if not url.isascii() and not _utf8(url):
        raise ValidationError(
            f"{redact_url(url).encode('utf-8', 'backslashreplace').decode()!r} holds a lone "
            "surrogate (text decoded wrongly?), which no store takes in a URL: remove it"
        )
    if "\x00" in url or "%00" in url:
        # C drivers end the text there: 'postgresql://h:1/d%00b' reached database "d" on
        # the default port, and MLflow retried an engine for minutes
        raise ValidationError(
            f"{redact_url(url).replace(chr(0), '%00')!r} holds a NUL character (\\x00 or "
            "%00), which no store takes in a URL: remove it"
        )
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValidationError(
            f"{redact_url(url)!r} is not a tracker URL: expected scheme://…, "
            "e.g. sqlite:///runs.db or memory://"
        )
    try:
        _ = urlsplit(url).port  # parses the host and the port, which are checked lazily
    except ValueError as exc:
        # urlsplit's reason may quote a piece of a password that cut the host part short
        why = "its host part does not parse" if password_of(url) is not None else str(exc)
        raise ValidationError(
            f"{redact_url(url)!r} is not a valid URL: {why} (percent-encode any of @ : / ? # "
            "in a user name or password, e.g. with urllib.parse.quote(password, safe=''))"
        ) from None
    return scheme.lower()


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def timeout_of(url: str, given: Sequence[str], default: float) -> float:
    """The seconds of a backend's ``?timeout=`` parameter, given as ``given`` (its values in
    ``url``; ``default`` when there are none): one positive, finite number, else a
    :class:`~trackplug.ValidationError`."""
    if not given:
        return default
    try:
        timeout = float(given[0]) if len(given) == 1 else math.nan
    except ValueError:
        timeout = math.nan
    if not 0 < timeout < math.inf:
        raise ValidationError(
            f"{redact_url(url)!r}: timeout={', '.join(given)!r} is invalid: give one positive "
            f"number of seconds (default {default:g})"
        )
    return timeout


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values replaced by ``***``;
    never raises, even for text that does not parse as a URL (or is no text)."""
    if not isinstance(url, str):
        return f"<a {type(url).__name__}, not a URL>"
    password = password_of(url)
    if password is not None:
        head, sep, rest = url.partition("://")
        url = head + sep + rest.replace(f":{password}@", f":{REDACTED}@", 1)
    base, mark, query = url.partition("?")
    query, hash_, fragment = query.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_SECRET_PARAMS.search(name) for name, _ in pairs):
        query = urlencode(
            [(k, REDACTED if _SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="/:*"
        )
        url = base + mark + query + hash_ + fragment
    return url


def password_of(url: str) -> str | None:
    """The password of ``url`` as written (maybe percent-encoded), or None: what follows
    the user name's ``:`` up to the URL's last ``@``. That is more than ``urlsplit``'s
    password when a path or query holds an ``@`` (hidden with it, harmlessly), and it
    keeps hidden a password that holds ``@ / ? #`` unencoded, which cuts the host part
    short or in the wrong place."""
    user, colon, tail = url.partition("://")[2].partition(":")
    if not colon or re.search(r"[/?#@]", user) or "@" not in tail:
        return None
    return tail.rpartition("@")[0]


def _passwords(url: str) -> list[str]:
    """:func:`password_of`, and ``urlsplit``'s reading when it differs (what a driver
    sees, and may quote)."""
    found = password_of(url)
    if found is None:
        return []
    host_part = re.split(r"[/?#]", url.partition("://")[2].partition(":")[2], maxsplit=1)[0]
    strict, at, _ = host_part.rpartition("@")
    return list(dict.fromkeys((found, strict) if at else (found,)))


def secrets_of(url: str, min_password: int = 1) -> dict[str, str]:
    """What text quoting ``url`` must not show, each with what to show instead, longest
    first: the URL (as :func:`redact_url` writes it), its password where a URL shows it
    (``:password@``, as given and percent-decoded), and the bare password (and each run of
    letters and digits in it) if at least ``min_password`` characters long."""
    safe = redact_url(url)
    found = {url: safe} if safe != url else {}
    for raw in _passwords(url):
        # Parsers cut a password holding @ : / ? # \ in different places (SQLAlchemy at its
        # first @, urlsplit at its last), and a driver may quote what it took for a host or
        # path percent-encoded (%3A, +) or in a repr (\\): its runs of letters and digits
        # are the same in every form, so each of those is a secret too.
        whole = (raw, unquote(raw), repr(raw)[1:-1], quote(raw, safe=""))
        pieces = re.split(r"[^A-Za-z0-9_]+", raw)
        for password in dict.fromkeys((*whole, *pieces)):
            if password:
                found[f":{password}@"] = f":{REDACTED}@"
            if len(password) >= min_password:
                found[password] = REDACTED
    return dict(sorted(found.items(), key=lambda item: -len(item[0])))


def scrub(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with every secret of ``secrets`` (from :func:`secrets_of`) replaced."""
    for secret, shown in secrets.items():
        if secret in text:
            text = text.replace(secret, shown)
    return text


def redact_chain(error: E, *urls: str) -> E:
    """Scrub the passwords of ``urls`` out of ``error`` and every exception reachable from
    it (``__cause__``, ``__context__``, arguments, attributes, notes, groups), in place, so
    that the whole printed traceback is free of them; returns ``error``. The exceptions
    keep their types: a caller can still catch a driver's own error by its class."""
    secrets: dict[str, str] = {}
    for url in urls:
        secrets.update(secrets_of(url, MIN_BARE_SECRET))
    if secrets:
        scrub_chain(error, dict(sorted(secrets.items(), key=lambda item: -len(item[0]))))
    return error


class scrubbing:  # lower case: used as a function: ``with scrubbing(url): ...``
    """Whatever the block raises leaves it scrubbed of the passwords of ``urls``
    (:func:`redact_chain`): around every call into a backend's code. A class, not a
    generator: it wraps every hook call, and the no-error path costs no more than a call."""

    __slots__ = ("_urls",)

    def __init__(self, *urls: str) -> None:
        self._urls = urls

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if exc is not None:
            redact_chain(exc, *self._urls)


def scrub_chain(error: E, secrets: Mapping[str, str]) -> E:
    """:func:`redact_chain` for secrets already found (longest first); returns ``error``."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        todo.extend(_scrub_one(exc, secrets))
    return error


def _scrub_one(exc: BaseException, secrets: Mapping[str, str]) -> list[BaseException]:
    """Scrub one exception's own text; returns the exceptions it leads to."""
    linked = [e for e in (exc.__cause__, exc.__context__) if e is not None]
    exc.args = tuple(_scrub_value(arg, secrets, linked) for arg in exc.args)
    for name, value in list(vars(exc).items()):
        _set(exc, name, _scrub_value(value, secrets, linked))
    for name in ("strerror", "filename", "filename2", "msg", "reason"):  # slots of builtins
        value = getattr(exc, name, None)
        if isinstance(value, str) and name not in vars(exc):
            _set(exc, name, scrub(value, secrets))
    linked.extend(getattr(exc, "exceptions", ()))  # an ExceptionGroup's members
    if any(secret in _text(exc) for secret in secrets):
        _scrub_str(exc, secrets)
    return [e for e in linked if isinstance(e, BaseException)]


def _scrub_value(
    value: object, secrets: Mapping[str, str], linked: list[BaseException], depth: int = 0
) -> object:
    """``value`` with its secrets scrubbed: a string or bytes (a driver's raw message), or
    those inside lists, tuples, sets and dicts (a copy, nested a few levels); exceptions
    found are added to ``linked``."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if type(value) is bytes:
        for secret, shown in secrets.items():
            value = value.replace(secret.encode(), shown.encode())
        return value
    if isinstance(value, BaseException):
        linked.append(value)
        return value
    if depth >= 4 or type(value) not in (list, tuple, set, frozenset, dict):
        return value  # a subclass may not rebuild from items: left as it is

    def again(item: object) -> object:
        return _scrub_value(item, secrets, linked, depth + 1)

    if isinstance(value, dict):
        return {again(k): again(v) for k, v in value.items()}
    assert isinstance(value, list | tuple | set | frozenset)
    return type(value)(again(v) for v in value)


def _set(exc: BaseException, name: str, value: object) -> None:
    with suppress(AttributeError, TypeError):  # read-only: _scrub_str covers what it shows
        setattr(exc, name, value)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return ""


def _scrub_str(exc: BaseException, secrets: Mapping[str, str]) -> None:
    """The last resort, for an exception whose text comes from state we cannot reach:
    make it an instance of a subclass of its own type (same name) whose ``str`` scrubs."""
    cls = type(exc)

    def __str__(self: BaseException) -> str:
        return scrub(cls.__str__(self), secrets)

    namespace = {"__str__": __str__, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    with suppress(TypeError):  # a built-in type: its text is its arguments, scrubbed above
        exc.__class__ = type(cls.__name__, (cls,), namespace)
