"""A kill must never reach a process that took a recycled PID: the PID reuse is made for real (ns_last_pid).

Each test records a socket's owner the way the table does (a real collector reading a real peer), lets that owner
exit, starts an unrelated `sleep` on the very same PID, and then tries every way a stale row can be acted on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from support import Controlled, Peer, spawn_on_pid, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.app.screens.details import DetailsScreen
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import Socket
from netscope.collectors.signals import check_owner, owner_details, send_signal

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="making a PID be reused needs root (ns_last_pid)"),
]
SIZE = (160, 45)
SLEEP = ["sleep", "60"]


@pytest.fixture
def impostors() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def listener_of(peer: Peer | Controlled) -> Socket:
    snapshot = ConnectionCollector().collect()
    return next(s for s in snapshot.sockets.values() if s.local_port == peer.port and s.state == "LISTEN")


def victim_and_app(spawn_peer: Callable[..., Peer], flash_seconds: float = 3.0) -> tuple[Peer, NetscopeApp]:
    """A server to kill, and an app whose table shows just its listener."""
    victim = spawn_peer("server", "--name", "ns-victim")
    app = NetscopeApp(interval=0.2, filter_text=f"lport:{victim.port} listen", flash_seconds=flash_seconds)
    return victim, app


def end(peer: Peer) -> None:
    peer.process.kill()
    peer.process.wait(timeout=10)


def alive(proc: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.2)
    return proc.poll() is None


def test_the_recorded_identity_refuses_a_recycled_pid(
    spawn_peer: Callable[..., Peer], impostors: list[subprocess.Popen[bytes]]
) -> None:
    victim = spawn_peer("server", "--name", "ns-victim")
    row = listener_of(victim)
    assert row.pid == victim.pid and row.pid_start > 0 and row.inode
    assert check_owner(row.pid, row.pid_start, row.inode).refusal == ""
    end(victim)
    impostor = spawn_on_pid(victim.pid, SLEEP)
    impostors.append(impostor)
    check = check_owner(row.pid, row.pid_start, row.inode)
    assert "now belongs to a different process (sleep" in check.refusal
    for sig in (signal.SIGTERM, signal.SIGKILL):
        result = send_signal(row.pid, row.pid_start, sig, row.inode)
        assert not result.ok and "different process (sleep" in result.message
    assert alive(impostor)
    # The details screen's look-up says the owner is gone rather than describing the sleep as the owner.
    details = owner_details(row)
    assert "PID" in details.error and "now belongs to another process (sleep" in details.error


def test_the_same_process_without_the_socket_is_not_signalled(spawn: Callable[..., Controlled]) -> None:
    # A server that closes its listener but keeps running: the row's socket is no longer its.
    server = spawn("server-closes-listener")
    row = listener_of(server)
    assert server.send("close") == "closed"
    check = check_owner(row.pid, row.pid_start, row.inode)  # type: ignore[arg-type]
    assert "no longer holds that socket" in check.refusal
    result = send_signal(row.pid, row.pid_start, signal.SIGTERM, row.inode)  # type: ignore[arg-type]
    assert not result.ok and "no longer holds that socket" in result.message
    assert server.process.poll() is None


async def test_kill_on_a_paused_table_refuses_the_process_that_took_the_pid(
    spawn_peer: Callable[..., Peer], impostors: list[subprocess.Popen[bytes]]
) -> None:
    victim, app = victim_and_app(spawn_peer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("space")  # paused: the row stays as it was read
        end(victim)
        impostors.append(impostor := spawn_on_pid(victim.pid, SLEEP))
        for key in ("k", "K"):
            await pilot.press(key)
            await wait_for(pilot, lambda: any("different process (sleep" in m for m in app.notices.messages))
            assert not isinstance(app.screen, ConfirmKillScreen)
        await pilot.press("enter")  # details: never today's process described as the owner
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        info = str(app.screen.query_one("#details-info").render())
        assert "has exited" in info and "now belongs to another process (sleep" in info
    assert alive(impostor)


async def test_kill_on_a_closed_lingering_row_is_refused(
    spawn_peer: Callable[..., Peer], impostors: list[subprocess.Popen[bytes]]
) -> None:
    victim, app = victim_and_app(spawn_peer, flash_seconds=60)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        row = app.table.rows[0]
        end(victim)
        await wait_for(pilot, lambda: app.table.is_closed(row))  # it lingers, struck through
        impostors.append(impostor := spawn_on_pid(victim.pid, SLEEP))
        await pilot.press("K")
        await wait_for(pilot, lambda: any("has closed" in m for m in app.notices.messages))
        assert not isinstance(app.screen, ConfirmKillScreen)
    assert alive(impostor)


async def test_a_pid_recycled_while_the_dialog_is_open_is_not_signalled(
    spawn_peer: Callable[..., Peer], impostors: list[subprocess.Popen[bytes]]
) -> None:
    victim, app = victim_and_app(spawn_peer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKillScreen))
        body = str(app.screen.query_one("#confirm-body").render())
        assert "ns-victim" in body and "1 held by this process now" in body
        end(victim)
        impostors.append(impostor := spawn_on_pid(victim.pid, SLEEP))
        await pilot.press("y")
        await wait_for(pilot, lambda: any("different process (sleep" in m for m in app.notices.messages))
        await asyncio.sleep(0.2)
    assert alive(impostor)
