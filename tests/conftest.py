"""Shared fixtures: real server and client processes on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from support import NOBODY, Controlled, Peer, VethPair, run_as_nobody, start_controlled, start_peer, stop_peer

import netscope


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
def spawn() -> Iterator[Callable[..., Controlled]]:
    """Start peers.py processes whose stdin the test holds (see support.Controlled); all are killed at the end."""
    started: list[Controlled] = []

    def start(*args: str, namespace: str = "") -> Controlled:
        peer = start_controlled(*args, namespace=namespace)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def server_with_clients(spawn_peer: Callable[..., Peer]) -> tuple[Peer, list[Peer]]:
    """A loopback server holding connections from three client processes, one connection each."""
    server = spawn_peer("server", "--name", "ns-test-server")
    clients = [spawn_peer("client", str(server.port), "--name", f"ns-client-{i}") for i in range(3)]
    # A client is ready once connected; the server accepts in a thread of its own, and until it has, the kernel's
    # end of that connection belongs to no process. Wait for its three (bounded: a hung server fails the test).
    deadline = time.monotonic() + 10
    while len(psutil.Process(server.pid).net_connections("tcp")) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    return server, clients


@pytest.fixture(scope="module")
def nobody_python() -> Iterator[tuple[list[str], dict[str, str]]]:
    """A command and environment with which user 65534 can run Python and import netscope."""
    yield from _nobody_python()


def _nobody_python() -> Iterator[tuple[list[str], dict[str, str]]]:
    if os.geteuid() != 0:
        pytest.skip("needs root to start a child as the unprivileged user 65534")
    repo = Path(netscope.__file__).resolve().parent
    # The venv's python may live under a directory nobody cannot enter (e.g. /root/.pyenv), and the editable
    # install's finder with it; so try it first, then a system python, with netscope and psutil on PYTHONPATH.
    shim = tempfile.mkdtemp(prefix="netscope-nobody-")
    try:
        os.chmod(shim, 0o755)
        os.symlink(repo, os.path.join(shim, "netscope"))
        site = str(Path(psutil.__file__).resolve().parent.parent)
        env = {"PYTHONPATH": f"{shim}:{site}", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
        candidates = dict.fromkeys(
            [sys.executable, os.path.realpath(sys.executable), shutil.which("python3", path="/usr/bin:/bin") or ""]
        )
        problems = []
        for exe in filter(None, candidates):
            try:
                result = run_as_nobody(
                    [exe], env, "import netscope.collectors.processes, netscope.collectors.signals"
                )
            except OSError as exc:
                problems.append(f"{exe}: {exc}")
                continue
            if result.returncode == 0:
                yield [exe], env
                return
            problems.append(f"{exe}: {(result.stderr.strip().splitlines() or ['failed'])[-1]}")
        pytest.skip(f"user {NOBODY} cannot run a Python that imports netscope from {repo}: " + "; ".join(problems))
    finally:
        shutil.rmtree(shim, ignore_errors=True)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture
def veth_pair() -> Iterator[VethPair]:
    """Our own test host: a network namespace made for this test, reached over a veth pair (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace and a veth pair")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip` command")
    tag = f"{os.getpid() % 100000}"
    namespace = f"netscope-test-{tag}"
    host, peer = f"nsh{tag}", f"nsp{tag}"
    subnet = f"10.214.{os.getpid() % 250}"
    created = _ip("netns", "add", namespace, check=False)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    try:
        _ip("link", "add", host, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", namespace)
        _ip("addr", "add", f"{subnet}.1/30", "dev", host)
        _ip("link", "set", host, "up")
        _ip("-n", namespace, "addr", "add", f"{subnet}.2/30", "dev", peer)
        _ip("-n", namespace, "link", "set", peer, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield VethPair(namespace, host, peer, f"{subnet}.1", f"{subnet}.2")
    finally:
        _ip("link", "del", host, check=False)
        _ip("netns", "del", namespace, check=False)


# Fixtures that only root can set up: a test that uses one needs root, and is marked so (`pytest -m "not root"`
# runs the rest as a normal user). Tests that need root for another reason carry @pytest.mark.root themselves.
ROOT_FIXTURES = frozenset({"veth_pair", "nobody_python"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if ROOT_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.root)
