"""Closing one connection (SOCK_DESTROY) between two real processes: what each end sees, who survives, and who
may do it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from support import run_as_nobody

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import Socket
from netscope.collectors.sock_destroy import (
    ALREADY_GONE,
    NEEDS_ROOT,
    destroy_capability,
    destroy_socket,
)

# Accepts one connection, prints its port first and "accepted" then, and reports how the blocked read ended.
# On "::" it listens on both IPv6 and IPv4.
SERVER = textwrap.dedent(
    """
    import errno, socket, sys, time
    host = sys.argv[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, 0), family=family, dualstack_ipv6=host == "::")
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    print("accepted", flush=True)
    try:
        print("eof" if conn.recv(1) == b"" else "data", flush=True)
    except OSError as exc:
        print(errno.errorcode[exc.errno], flush=True)
    time.sleep(120)
    """
)
# Connects, prints its own port, and reports how its blocked read ended.
CLIENT = textwrap.dedent(
    """
    import errno, socket, sys, time
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    print(sock.getsockname()[1], flush=True)
    try:
        print("eof" if sock.recv(1) == b"" else "data", flush=True)
    except OSError as exc:
        print(errno.errorcode[exc.errno], flush=True)
    time.sleep(120)
    """
)


class Child:
    def __init__(self, code: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def line(self, timeout: float = 10.0) -> str:
        """The next line it prints (failing, with its stderr, if none comes in time)."""
        assert self.process.stdout is not None
        result: list[str] = []
        deadline = time.monotonic() + timeout
        os.set_blocking(self.process.stdout.fileno(), False)
        while time.monotonic() < deadline:
            text = self.process.stdout.readline()
            if text:
                result.append(text)
                if text.endswith("\n"):
                    return "".join(result).strip()
            time.sleep(0.02)
        raise AssertionError(f"no line from the child within {timeout} s")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def children() -> Iterator[Callable[..., Child]]:
    started: list[Child] = []

    def start(code: str, *args: str) -> Child:
        child = Child(code, *args)
        started.append(child)
        return child

    yield start
    for child in started:
        child.stop()


def connected(start: Callable[..., Child], host: str, listen_on: str = "") -> tuple[Child, Child, int, int]:
    """A server process and a client process connected to it over `host`; the server listens on `listen_on`."""
    server = start(SERVER, listen_on or host)
    port = int(server.line())
    client = start(CLIENT, host, str(port))
    client_port = int(client.line())
    assert server.line() == "accepted"
    return server, client, port, client_port


def server_end(port: int, client_port: int) -> Socket | None:
    snapshot = ConnectionCollector().collect()
    found = [
        s for s in snapshot.sockets.values()
        if s.local_port == port and s.remote_port == client_port and s.is_tcp
    ]
    assert len(found) <= 1
    return found[0] if found else None


def listener_alive(port: int) -> bool:
    sockets = ConnectionCollector().collect().sockets.values()
    return any(s.local_port == port and s.state == "LISTEN" for s in sockets)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_closing_one_connection(children: Callable[..., Child], host: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("closing a connection needs root")
    if host == "::ffff:127.0.0.1":  # a dual-stack listener taking IPv4: a tcp6 socket with v4-mapped addresses
        server, client, port, client_port = connected(children, "127.0.0.1", listen_on="::")
    else:
        server, client, port, client_port = connected(children, host)
    target = server_end(port, client_port)
    assert target is not None and target.state == "ESTABLISHED" and target.pid == server.process.pid
    assert target.proto == ("tcp" if host == "127.0.0.1" else "tcp6") and target.local_ip == host

    result = destroy_socket(target)
    assert result.ok, result.message
    local = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    remote = f"[{host}]:{client_port}" if ":" in host else f"{host}:{client_port}"
    assert result.message == (
        f"Closed {target.proto} {local} -> {remote}; {target.program} (PID {server.process.pid}) keeps running."
    )
    # The kernel aborts the socket: its owner's read fails with ECONNABORTED, the peer is sent a RST.
    assert server.line() == "ECONNABORTED"
    assert client.line() == "ECONNRESET"
    assert server.process.poll() is None and client.process.poll() is None
    assert server_end(port, client_port) is None
    assert listener_alive(port)

    # Again: nothing there any more. The kernel's lookup would fall back to the listener: it must be left alone.
    assert destroy_socket(target) == replace(result, ok=False, message=ALREADY_GONE)
    assert listener_alive(port)


def test_refusals(children: Callable[..., Child]) -> None:
    server, _client, port, _client_port = connected(children, "127.0.0.1")
    listener = [
        s for s in ConnectionCollector().collect().sockets.values() if s.local_port == port and s.state == "LISTEN"
    ]
    refused = destroy_socket(listener[0])
    assert not refused.ok and "listening socket" in refused.message and str(port) in refused.message
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.connect(("127.0.0.1", port))
        ours = [
            s for s in ConnectionCollector().collect().sockets.values()
            if s.proto == "udp" and s.local_port == udp.getsockname()[1]
        ]
        refused = destroy_socket(ours[0])
        assert not refused.ok and "UDP" in refused.message
    assert listener_alive(port) and server.process.poll() is None


def test_capability_as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    assert destroy_capability() == ""


NOBODY_TRIES = textwrap.dedent(
    """
    import json
    from netscope.collectors.model import Socket
    from netscope.collectors.sock_destroy import destroy_capability, destroy_socket
    target = Socket(*json.loads(FIELDS))
    result = destroy_socket(target)
    print(json.dumps({"capability": destroy_capability(), "ok": result.ok, "message": result.message}))
    """
)


def test_without_cap_net_admin(
    children: Callable[..., Child], nobody_python: tuple[list[str], dict[str, str]]
) -> None:
    server, client, port, client_port = connected(children, "127.0.0.1")
    target = server_end(port, client_port)
    assert target is not None
    fields = [target.proto, target.local_ip, target.local_port, target.remote_ip, target.remote_port,
              target.state, 0, 0, target.inode, target.uid]
    command, env = nobody_python
    result = run_as_nobody(command, env, NOBODY_TRIES.replace("FIELDS", repr(json.dumps(fields))))
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    assert said == {"capability": NEEDS_ROOT, "ok": False, "message": NEEDS_ROOT}
    assert "CAP_NET_ADMIN" in NEEDS_ROOT
    still = server_end(port, client_port)
    assert still is not None and still.state == "ESTABLISHED"  # untouched
    assert server.process.poll() is None and client.process.poll() is None


def test_closing_a_time_wait_entry() -> None:
    if os.geteuid() != 0:
        pytest.skip("closing a connection needs root")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server = listener.accept()[0]
        port, client_port = listener.getsockname()[1], client.getsockname()[1]
        client.close()  # the side that closes first ends in TIME_WAIT, held by the kernel alone
        server.close()
        deadline = time.monotonic() + 5
        while (waiting := server_end(client_port, port)) is None or waiting.state != "TIME_WAIT":
            assert time.monotonic() < deadline, "no TIME_WAIT"
            time.sleep(0.02)
        assert waiting.inode == 0 and waiting.pid is None
        result = destroy_socket(waiting)
        assert result.ok and result.message == (
            f"Closed tcp 127.0.0.1:{client_port} -> 127.0.0.1:{port}; no process held it."
        )
        assert server_end(client_port, port) is None
        assert listener_alive(port)
