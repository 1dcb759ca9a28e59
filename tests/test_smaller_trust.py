"""The smaller trust failures: words that say what went wrong, keys that never do nothing silently."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fixed_data import FixedSource
from support import Peer, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.recording import RecordingTee
from netscope.collectors.session.filters import FilterError, parse_filter
from netscope.collectors.signals import refusal_reason, send_signal

NETSCOPE = [sys.executable, "-m", "netscope"]


@pytest.mark.parametrize(("text", "part"), [(":-1", "'-1'"), (":80-", "'80-'"), ("rport:-5", "'-5'")])
def test_a_negative_port_or_half_a_range_is_named(text: str, part: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert f"{part} in '{text}' is not a port or a range of ports" in str(caught.value)
    assert "''" not in str(caught.value)


@pytest.mark.parametrize("pid", [2**31, 2**63, 2**22 + 1, -(2**31), 0])
def test_impossible_pids_are_refused_not_raised(pid: int) -> None:
    result = send_signal(pid, 0.0, signal.SIGTERM)
    assert not result.ok and "is not a process id" in result.message
    assert refusal_reason(pid) == f"{pid} is not a process id; nothing was sent"


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="a new PID namespace needs root")
def test_once_in_a_pid_namespace_says_why_owners_are_unknown(spawn_peer: Callable[..., Peer]) -> None:
    server = spawn_peer("server", "--name", "ns-outside")
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", *NETSCOPE, "--once", "-tn", "--filter",
         f"lport:{server.port} listen"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and f":{server.port}" in result.stdout
    assert "1 socket(s) have an owner that netscope cannot see" in result.stderr
    assert "another PID namespace" in result.stderr


async def test_space_and_r_answer_in_every_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = NetscopeApp(source=RecordingTee(FixedSource()))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.table.row_count > 0)
        for view in "23456":
            await pilot.press(view, "space")
            await wait_for(pilot, lambda: any("Space pauses the connection" in m for m in app.notices.messages))
            assert not app.session.paused
        await pilot.press("R")  # from view 6: recording starts, and says where
        await wait_for(pilot, lambda: any(m.startswith("Recording every refresh") for m in app.notices.messages))
        await pilot.press("R")
        await wait_for(pilot, lambda: any(m.startswith("Recording stopped") for m in app.notices.messages))
    assert list(tmp_path.glob("netscope-*.nsrec"))
