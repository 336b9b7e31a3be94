"""``?timeout=`` in a PostgreSQL URL: trackplug's own bound, taken out of what libpq sees,
and the default of libpq's own bounds unless the URL sets them."""

from __future__ import annotations

import pytest

pytest.importorskip("psycopg")
from trackplug_sql.postgresql import DEFAULT_TIMEOUT, bounded_url


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
