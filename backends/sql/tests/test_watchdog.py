"""The watchdog cuts a socket whose operation outlives its deadline, and only then."""

from __future__ import annotations

import socket
import time

from trackplug_sql.watchdog import Watchdog


def test_a_read_that_waits_past_the_deadline_returns_when_the_socket_is_cut() -> None:
    watchdog = Watchdog(0.2)
    ours, peer = socket.socketpair()  # the peer never answers, like a frozen server
    try:
        started = time.monotonic()
        with watchdog.watch(ours.fileno()) as watch:
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
            with watchdog.watch(ours.fileno()) as watch:
                peer.sendall(b"x")
                assert ours.recv(1) == b"x"
            assert not watch.fired
        peer.sendall(b"y")
        assert ours.recv(1) == b"y"  # the socket still works
    finally:
        watchdog.stop()
        ours.close()
        peer.close()
