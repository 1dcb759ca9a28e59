"""Helpers shared by the tests: real peer processes and waiting on a running app."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from textual.pilot import Pilot

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.recording import RecordingTee

if TYPE_CHECKING:
    from netscope.app.netscope_app import NetscopeApp

PEERS = Path(__file__).with_name("peers.py")


@dataclass
class Peer:
    process: subprocess.Popen[str]
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid


def start_peer(*args: str) -> Peer:
    process = subprocess.Popen(
        [sys.executable, str(PEERS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line:
        process.kill()
        raise RuntimeError(f"peer {args} did not start: {process.stderr.read() if process.stderr else ''}")
    return Peer(process, int(line) if line.isdigit() else 0)


def stop_peer(peer: Peer) -> None:
    if peer.process.poll() is None:
        peer.process.kill()
    peer.process.wait(timeout=10)
    for stream in (peer.process.stdout, peer.process.stderr):
        if stream is not None:
            stream.close()


async def type_filter(pilot: Pilot[None], text: str) -> None:
    """Type a filter at the `/` prompt of the view shown and press Enter."""
    await pilot.press("slash")
    await pilot.press(*text)
    await pilot.press("enter")


async def record_a_while(pilot: Pilot[None], app: NetscopeApp) -> None:
    """R, then R again once two views frames are written and two socket frames after them (a replay's time is its
    socket frames': what the views recorded must come before the last of them)."""
    await pilot.press("R")
    tee = app.source
    assert isinstance(tee, RecordingTee)
    await wait_for(pilot, lambda: tee.writer is not None and tee.writer.view_frames >= 2)
    writer = tee.writer
    assert writer is not None
    frames = writer.frames
    await wait_for(pilot, lambda: writer.frames >= frames + 2)
    await pilot.press("R")


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds; fail with the condition's source if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            try:
                source = inspect.getsource(condition).strip()
            except (OSError, TypeError):
                source = repr(condition)
            raise AssertionError(f"not true within {timeout} s: {source}")
        await pilot.pause(0.05)


@dataclass
class VethPair:
    """A veth pair between this namespace and a private test namespace, with an IPv4 address on each end."""

    namespace: str
    host_interface: str
    peer_interface: str
    host_address: str
    peer_address: str


NOBODY = 65534  # the unprivileged user the "not root" tests run as


def run_as_nobody(command: list[str], env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` with `command` (a Python) as user and group 65534, with no supplementary groups."""
    return subprocess.run(
        [*command, "-c", code],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],  # drop root's supplementary groups too
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Controlled:
    """A peers.py process whose stdin the test holds (bound-client obeys "close K" / "reset K" lines on it)."""

    process: subprocess.Popen[str]
    first_line: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.first_line)

    def send(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_controlled(*args: str, namespace: str = "") -> Controlled:
    """Start a peers.py process with its stdin held, in network namespace `namespace` if given."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    process = subprocess.Popen(
        [*prefix, sys.executable, str(PEERS), *args, "--lifetime", "120"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    peer = Controlled(process, process.stdout.readline().strip())
    if not peer.first_line:
        error = process.stderr.read() if process.stderr else ""
        peer.stop()
        raise RuntimeError(f"peer {args} did not start: {error}")
    return peer


async def next_matching(
    stream: AsyncIterator[SnapshotDiff | CollectionFailure],
    condition: Callable[[SnapshotDiff | CollectionFailure], bool],
    timeout: float = 10.0,
) -> SnapshotDiff | CollectionFailure:
    """The first update of a collector's stream that meets `condition`; fails after `timeout` seconds."""
    async def scan() -> SnapshotDiff | CollectionFailure:
        async for update in stream:
            if condition(update):
                return update
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(scan(), timeout)


NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def spawn_on_pid(pid: int, command: list[str], attempts: int = 200) -> subprocess.Popen[bytes]:
    """Start `command` as process `pid` (which must be free): the PID reuse a kill must survive, made on purpose.

    Writing PID - 1 to ns_last_pid (root) makes the kernel hand out `pid` next; another process or thread on the
    machine may take it first, so this tries again until the child gets it or `attempts` run out."""
    for _ in range(attempts):
        NS_LAST_PID.write_text(str(pid - 1))
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if child.pid == pid:
            return child
        child.kill()
        child.wait()
    raise AssertionError(f"could not start a process on PID {pid} after {attempts} attempts")


def debian_tool(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` first where it is missing (CI runs as root on a clean
    machine); skips the test where that cannot be done."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"needs Debian's {package} package (apt-get install {package}, as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True,
                   timeout=900, env=env, capture_output=True)
    found = shutil.which(command)
    assert found, f"apt-get installed {package}, but there is no {command} command"
    return found
