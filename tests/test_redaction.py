"""No password in any exception chain: :func:`trackplug._urls.redact_chain` scrubs every
exception reachable from an error, in place, and keeps every type catchable."""

from __future__ import annotations

import traceback
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from leaky_plugin import Quoting, Target

from trackplug import BackendError
from trackplug._urls import redact_chain

SECRET = "hunter2-secret"
URL = f"postgresql://ann:{SECRET}@db.example:5432/metrics"


def printed(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def raise_chain() -> BackendError:
    """A driver error quoting the URL, caused by another, wrapped by trackplug."""
    try:
        try:
            raise ConnectionRefusedError(111, f"refused by {URL}")
        except OSError as inner:
            raise RuntimeError(f"request to {URL}/health failed", inner) from inner
    except RuntimeError as outer:
        error = BackendError(f"store at {URL} failed")
        error.__cause__ = outer
        return error


def test_every_exception_of_the_chain_is_scrubbed_and_keeps_its_type() -> None:
    error = raise_chain()
    assert SECRET in printed(error)
    assert redact_chain(error, URL) is error
    text = printed(error)
    assert SECRET not in text
    assert "postgresql://ann:***@db.example:5432/metrics" in text
    assert isinstance(error.__cause__, RuntimeError)
    assert isinstance(error.__cause__.__cause__, ConnectionRefusedError)


def test_an_exception_whose_text_is_computed_is_scrubbed_and_still_catchable() -> None:
    error = Quoting(Target(URL))
    redact_chain(error, URL)
    assert SECRET not in printed(error)
    assert isinstance(error, Quoting)
    assert type(error).__name__ == "Quoting"
    with pytest.raises(Quoting):
        raise error


def test_os_errors_attributes_and_groups_and_notes_are_scrubbed() -> None:
    os_error = FileNotFoundError(2, "No such file", f"/tmp/{SECRET}")
    value_error = ValueError(f"bad {URL}")
    value_error.add_note(f"while opening {URL}")
    group = ExceptionGroup("two", [os_error, value_error])
    redact_chain(group, URL)
    assert SECRET not in printed(group)
    assert os_error.filename == "/tmp/***"


def test_a_short_password_is_scrubbed_where_a_url_shows_it() -> None:
    url = "mlflow+http://user:pw@127.0.0.1:1"
    error = ConnectionError("API request to http://user:pw@127.0.0.1:1/health failed")
    redact_chain(error, url)
    assert ":pw@" not in printed(error)
    assert "http://user:***@127.0.0.1:1/health" in str(error)


def test_a_cycle_in_the_chain_ends() -> None:
    first, second = ValueError(URL), KeyError(URL)
    first.__context__, second.__context__ = second, first
    redact_chain(first, URL)
    assert SECRET not in str(first) + str(second)


BOILERPLATE = (
    "The above exception was the direct cause of the following exception:\n"
    "RuntimeError: failed ValueError: while connecting: Quoting: cannot reach "
    "postgresql://ann:***@db.example/metrics/x"
)
# Passwords as people write them: any printable characters, percent-encoded in the URL.
passwords = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=4, max_size=30
)


@given(password=passwords, where=st.sampled_from(["arg", "attr", "note", "cause", "text"]))
def test_any_password_is_scrubbed_wherever_an_exception_keeps_it(password: str, where: str) -> None:
    assume(password not in BOILERPLATE)  # text of the traceback's own, not the error's
    url = f"postgresql://ann:{quote(password, safe='')}@db.example/metrics"
    shown = {"arg": url, "attr": password, "note": f"{url}/x", "cause": url, "text": password}
    inner = ValueError(f"while connecting: {shown['cause']}")
    error: Exception = RuntimeError(shown["arg"] if where == "arg" else "failed")
    if where == "attr":
        error.detail = shown["attr"]  # type: ignore[attr-defined]
    if where == "note":
        error.add_note(shown["note"])
    if where == "text":
        error = Quoting(password)
    error.__cause__ = inner
    redact_chain(error, url)
    printed_text = printed(error)
    assert password not in printed_text
    assert quote(password, safe="") not in printed_text
    assert password not in repr(vars(error))
