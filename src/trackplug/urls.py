"""URL rules, in one place: the scheme that picks a backend, and password redaction."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import ValidationError

__all__ = ["REDACTED", "redact_url", "scheme_of", "secrets_of"]

REDACTED = "***"
_SECRET_PARAMS = re.compile(r"pass(word)?|secret|token|key|auth", re.IGNORECASE)


def scheme_of(url: str) -> str:
    """The lower-cased scheme of ``url`` (``"sqlite"``, ``"mlflow+http"``…)."""
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValidationError(
            f"{redact_url(url)!r} is not a tracker URL: expected scheme://…, "
            "e.g. sqlite:///runs.db or memory://"
        )
    return scheme.lower()


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        url = url.replace(parts.netloc, f"{user}:{REDACTED}@{host}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(_SECRET_PARAMS.search(name) for name, _ in pairs):
            query = urlencode(
                [(k, REDACTED if _SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="/:*"
            )
            url = url.replace("?" + parts.query, "?" + query, 1)
    return url


def secrets_of(url: str, min_password: int = 1) -> dict[str, str]:
    """What text quoting ``url`` must not show, each with what to show instead: the URL
    (as :func:`redact_url` writes it) and its password, if at least ``min_password``
    characters long. {} for text that does not parse as a URL (e.g. a broken IPv6 host)."""
    try:
        safe, password = redact_url(url), urlsplit(url).password
    except ValueError:
        return {}
    found = {url: safe} if safe != url else {}
    if password and len(password) >= min_password:
        found[password] = REDACTED
    return found
