"""Passwords never leave: redaction of URLs."""

from __future__ import annotations

import pytest

from trackplug import ValidationError, redact_url
from trackplug._urls import scheme_of, secrets_of


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
    assert secrets_of(url) == {
        url: "postgresql://ann:***@db/m",
        ":s3cret@": ":***@",
        "s3cret": "***",
    }
    # A short password is hidden where a URL shows it, not wherever its letters occur.
    assert secrets_of("postgresql://ann:pw@db/m", min_password=4) == {
        "postgresql://ann:pw@db/m": "postgresql://ann:***@db/m",
        ":pw@": ":***@",
    }
    assert secrets_of("sqlite:///runs.db") == {}
    # A broken host does not parse, yet its password is still found.
    assert secrets_of("postgresql://ann:s3cret@[db/m")["s3cret"] == "***"


def test_secrets_of_a_percent_encoded_password_include_its_decoded_form() -> None:
    found = secrets_of("postgresql://ann:p%40ss%3Aword@db/m", min_password=4)
    assert found["p@ss:word"] == "***"
    assert found[":p@ss:word@"] == ":***@"


@pytest.mark.parametrize(
    "url",
    ["postgresql://a:pw@[::1/db", "postgresql://a:pw@h:port/db", "mlflow+http://u:pw@[bad"],
)
def test_redact_url_never_raises_and_still_hides_the_password(url: str) -> None:
    assert "pw" not in redact_url(url)
    with pytest.raises(ValidationError, match="not a valid URL") as error:
        scheme_of(url)
    assert "pw" not in str(error.value)


@pytest.mark.parametrize("url", [None, 5, b"sqlite://"])
def test_scheme_of_a_non_string_is_a_validation_error(url: object) -> None:
    with pytest.raises(ValidationError, match="is a string"):
        scheme_of(url)  # type: ignore[arg-type]
