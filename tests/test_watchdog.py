"""The watchdog (``trackplug.plugin.Watchdog``, used by the SQL and MLflow backends) cuts an
operation that outlives its deadline, and only then."""

from __future__ import annotations

import functools
import socket
import threading
import time

import pytest

from trackplug.plugin import Watchdog, cut_socket


def test_a_read_that_waits_past_the_deadline_returns_when_the_socket_is_cut() -> None:
    watchdog = Watchdog(0.2)
    ours, peer = socket.socketpair()  # the peer never answers, like a frozen server
    try:
        started = time.monotonic()
        with watchdog.watch(functools.partial(cut_socket, ours.fileno())) as watch:
            assert ours.recv(1) == b""  # would block forever without the watchdog
            assert watch.fired
        assert 0.15 < time.monotonic() - started < 5
    finally:
        watchdog.stop()
        ours.close()
        peer.close()


def test_an_operation_within_its_deadline_is_left_alone() -> None:
    watchdog = Watchdog(5.0)
    ours, peer = socket.socketpair()
    try:
        for _ in range(100):
            with watchdog.watch(functools.partial(cut_socket, ours.fileno())) as watch:
                peer.sendall(b"x")
                assert ours.recv(1) == b"x"
            assert not watch.fired
        peer.sendall(b"y")
        assert ours.recv(1) == b"y"  # the socket still works
    finally:
        watchdog.stop()
        ours.close()
        peer.close()


def test_each_operation_past_its_deadline_is_cut_alone() -> None:
    watchdog = Watchdog(0.2)
    cut: list[str] = []
    try:
        with watchdog.watch(lambda: cut.append("slow")) as slow:
            with watchdog.watch(lambda: cut.append("quick")) as quick:
                assert not quick.fired
            time.sleep(0.5)
            assert slow.fired  # asked within the block: it forgets it on leaving
        assert cut == ["slow"]
    finally:
        watchdog.stop()


def test_watching_never_wakes_the_watchdog_and_a_deadline_is_still_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The thread sleeps at most ``timeout`` at a time, so a new deadline (``timeout`` from
    now) is never missed and no watch has to wake it: a thread switch per read cost more
    than a small PostgreSQL read."""
    watchdog = Watchdog(0.3)
    cut: list[str] = []
    with watchdog.watch(lambda: cut.append("first")):
        pass  # the thread is started (which notifies, through threading.Event)
    notified: list[int] = []
    notify = threading.Condition.notify

    def counted(self: threading.Condition, n: int = 1) -> None:
        if self is watchdog._cond:  # the suite's other threads notify conditions of their own
            notified.append(n)
        notify(self, n)

    monkeypatch.setattr(threading.Condition, "notify", counted)
    try:
        for _ in range(50):
            with watchdog.watch(lambda: cut.append("quick")):
                pass
        time.sleep(0.5)  # the thread went to sleep with nothing to watch
        started = time.monotonic()
        with watchdog.watch(lambda: cut.append("slow")) as slow:
            while not slow.fired and time.monotonic() - started < 5:
                time.sleep(0.01)
            assert slow.fired
        assert 0.25 < time.monotonic() - started < 1.5
        assert cut == ["slow"]
        assert notified == []
    finally:
        watchdog.stop()
