"""Shared fixtures: real server and client processes on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support import Peer, start_peer, stop_peer


@pytest.fixture
def spawn_peer() -> Iterator[Callable[..., Peer]]:
    """Start real peer processes (see peers.py); all are killed when the test ends."""
    started: list[Peer] = []

    def spawn(*args: str) -> Peer:
        peer = start_peer(*args)
        started.append(peer)
        return peer

    yield spawn
    for peer in started:
        stop_peer(peer)


@pytest.fixture
def server_with_clients(spawn_peer: Callable[..., Peer]) -> tuple[Peer, list[Peer]]:
    """A loopback server holding connections from three client processes, one connection each."""
    server = spawn_peer("server", "--name", "ns-test-server")
    clients = [spawn_peer("client", str(server.port), "--name", f"ns-client-{i}") for i in range(3)]
    return server, clients
