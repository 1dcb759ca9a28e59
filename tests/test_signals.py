"""Killing a connection's owner: real children, real signals, and every refusal.

Tests aimed at processes that must never be signalled (init, pytest itself, kernel threads) send signal 0, which
delivers nothing, so a bug in the refusal logic cannot take the machine or the test run down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from support import run_as_nobody

from netscope.collectors.signals import KillResult, refusal_reason, send_signal

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(SLEEPER)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def start_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def still_running(proc: subprocess.Popen[bytes], for_seconds: float = 0.2) -> bool:
    try:
        proc.wait(timeout=for_seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def test_terminates_the_right_process(child: subprocess.Popen[bytes]) -> None:
    result = send_signal(child.pid, start_time(child.pid))
    assert result == KillResult(True, f"Sent SIGTERM to {child.pid} ({psutil.Process(child.pid).name()})")
    assert child.wait(timeout=10) == -signal.SIGTERM


def test_other_signal(child: subprocess.Popen[bytes]) -> None:
    result = send_signal(child.pid, start_time(child.pid), signal.SIGKILL)
    assert result.ok and result.message.startswith(f"Sent SIGKILL to {child.pid} (")
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_wrong_start_time_is_refused(child: subprocess.Popen[bytes]) -> None:
    result = send_signal(child.pid, start_time(child.pid) - 3600)
    assert not result.ok
    assert f"PID {child.pid} now belongs to a different process" in result.message
    assert "nothing was sent" in result.message
    assert still_running(child)


def test_start_time_within_tolerance_is_accepted(child: subprocess.Popen[bytes]) -> None:
    result = send_signal(child.pid, start_time(child.pid) + 0.004)
    assert result.ok, result.message
    assert child.wait(timeout=10) == -signal.SIGTERM


def test_exited_process(child: subprocess.Popen[bytes]) -> None:
    started = start_time(child.pid)
    child.kill()
    child.wait(timeout=10)
    result = send_signal(child.pid, started)
    assert not result.ok
    assert result.message == f"process {child.pid} has already exited; nothing was sent"


def test_zombie_is_reported_as_exited(child: subprocess.Popen[bytes]) -> None:
    started = start_time(child.pid)
    os.kill(child.pid, signal.SIGKILL)  # not reaped: we are the parent and have not waited yet
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "child did not die"
        time.sleep(0.01)
    result = send_signal(child.pid, started)
    assert not result.ok and "already exited" in result.message


def test_pid_1_is_refused() -> None:
    assert refusal_reason(1) == "PID 1 is init; killing it would take the machine down"
    result = send_signal(1, start_time(1), sig=0)
    assert result == KillResult(False, "PID 1 is init; killing it would take the machine down")


def test_own_pid_is_refused() -> None:
    me = os.getpid()
    assert refusal_reason(me) == f"PID {me} is netscope itself"
    result = send_signal(me, start_time(me), sig=0)
    assert not result.ok and "netscope itself" in result.message


def test_own_process_group_leader_is_refused() -> None:
    leader = os.getpgrp()
    if leader == os.getpid():
        pytest.skip("this test process leads its own process group")
    reason = refusal_reason(leader)
    assert reason is not None and "process group" in reason


def test_non_pids_are_refused() -> None:
    for pid in (0, -1, -os.getpgrp()):
        reason = refusal_reason(pid)
        assert reason is not None and "not a process id" in reason
        assert not send_signal(pid, 0.0, sig=0).ok


def kernel_threads() -> list[int]:
    """Pids with the PF_KTHREAD flag, read independently of the code under test."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[6]) & 0x00200000:
            found.append(int(name))
    return found


def test_kernel_threads_are_refused() -> None:
    threads = kernel_threads()
    if not threads:
        pytest.skip("no kernel threads are visible in this PID namespace")
    for pid in threads[:5]:
        reason = refusal_reason(pid)
        assert reason is not None and "kernel thread" in reason, pid
    result = send_signal(threads[-1], 0.0, sig=0)
    assert not result.ok and "kernel thread" in result.message


def test_ordinary_child_is_not_refused(child: subprocess.Popen[bytes]) -> None:
    assert refusal_reason(child.pid) is None


# --- Permission denied: an unprivileged user trying to signal root's process ---


# `nobody_python` comes from conftest.py.


def test_permission_denied_names_the_owner(
    child: subprocess.Popen[bytes], nobody_python: tuple[list[str], dict[str, str]]
) -> None:
    command, env = nobody_python
    code = textwrap.dedent(
        f"""
        import json
        from netscope.collectors.signals import send_signal
        result = send_signal({child.pid}, {start_time(child.pid)!r})
        print(json.dumps({{"ok": result.ok, "message": result.message}}))
        """
    )
    result = run_as_nobody(command, env, code)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ok"] is False
    assert f"process {child.pid}" in out["message"]
    assert "belongs to user root" in out["message"]
    assert "sudo" in out["message"]
    assert still_running(child)


def test_unprivileged_user_can_signal_its_own_process(nobody_python: tuple[list[str], dict[str, str]]) -> None:
    command, env = nobody_python
    code = textwrap.dedent(
        """
        import json, subprocess, sys
        import psutil
        from netscope.collectors.signals import send_signal
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            result = send_signal(child.pid, psutil.Process(child.pid).create_time())
            code = child.wait(timeout=10)
        finally:
            child.kill()
            child.wait(timeout=10)
        print(json.dumps({"ok": result.ok, "message": result.message, "code": code}))
        """
    )
    result = run_as_nobody(command, env, code)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ok"] is True, out["message"]
    assert out["code"] == -signal.SIGTERM


def test_invalid_signal_number_is_reported_not_raised(child: subprocess.Popen[bytes]) -> None:
    result = send_signal(child.pid, start_time(child.pid), 999)
    assert not result.ok and result.message.startswith(f"could not send signal 999 to {child.pid}")
    assert still_running(child)
