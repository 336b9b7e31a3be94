"""Passwords never leave: redaction of URLs."""

from __future__ import annotations

import pytest

from trackplug import ValidationError, redact_url
from trackplug.urls import scheme_of, secrets_of


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///runs.db", "sqlite:///runs.db"),
        ("memory://", "memory://"),
        ("postgresql://ann:s3cret@db:5432/m", "postgresql://ann:***@db:5432/m"),
        ("postgresql://ann@db/m", "postgresql://ann@db/m"),
        ("mlflow+https://h/?experiment=x&token=t0k", "mlflow+https://h/?experiment=x&token=***"),
        ("postgresql://a:p%40ss@h/db?password=x", "postgresql://a:***@h/db?password=***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scheme_of() -> None:
    assert scheme_of("MLflow+HTTP://h") == "mlflow+http"
    with pytest.raises(ValidationError, match="not a tracker URL"):
        scheme_of("runs.db")


def test_secrets_of_a_url_are_the_url_and_its_password() -> None:
    url = "postgresql://ann:s3cret@db/m"
    assert secrets_of(url) == {url: "postgresql://ann:***@db/m", "s3cret": "***"}
    assert secrets_of("postgresql://ann:pw@db/m", min_password=4) == {
        "postgresql://ann:pw@db/m": "postgresql://ann:***@db/m"
    }
    assert secrets_of("sqlite:///runs.db") == {}
    assert secrets_of("postgresql://ann:s3cret@[db/m") == {}  # a broken host: not a URL
