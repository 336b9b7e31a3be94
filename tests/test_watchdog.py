"""The watchdog (``trackplug.plugin.Watchdog``, used by the SQL and MLflow backends) cuts an
operation that outlives its deadline, and only then."""

from __future__ import annotations

import functools
import socket
import time

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
