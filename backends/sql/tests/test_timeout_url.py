"""``?timeout=`` in a PostgreSQL URL: trackplug's own bound, taken out of what libpq sees,
and the default of libpq's own bounds unless the URL sets them."""

from __future__ import annotations

import pytest

import trackplug
from trackplug import ValidationError

pytest.importorskip("psycopg")
from trackplug_sql.postgresql import DEFAULT_TIMEOUT, bounded_url, engine_url


def test_the_default_bounds_every_wait() -> None:
    url, timeout = bounded_url("postgresql://u@h/db")
    assert timeout == DEFAULT_TIMEOUT == 30.0
    assert dict(url.query) == {"connect_timeout": "30", "tcp_user_timeout": "30000"}
    assert url.drivername == "postgresql+psycopg"


def test_timeout_in_the_url_is_trackplugs_and_libpqs_own_settings_win() -> None:
    url, timeout = bounded_url("postgresql://u@h/db?timeout=2.5&connect_timeout=7&sslmode=require")
    assert timeout == 2.5
    assert dict(url.query) == {
        "connect_timeout": "7",
        "tcp_user_timeout": "2500",
        "sslmode": "require",
    }


def test_postgres_is_postgresql_as_libpq_accepts_it() -> None:
    for scheme in ("postgres", "postgres+psycopg", "POSTGRES"):
        url, _ = bounded_url(f"{scheme}://u@h/db")
        assert url.drivername == "postgresql+psycopg"
    with pytest.raises(ValidationError, match="through psycopg 3"):
        engine_url("postgres+asyncpg://u@h/db")


def test_a_postgres_url_opens_the_postgresql_store(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://")
    alias = "postgres" + pg_url[len("postgresql") :]
    with trackplug.connect(pg_url) as t:
        t.log_metric("model", "loss", -0.0, step=2**63 - 1)
    with trackplug.connect(alias) as t:
        (point,) = t.history("model", "loss")
    assert (point.step, str(point.value)) == (2**63 - 1, "-0.0")
