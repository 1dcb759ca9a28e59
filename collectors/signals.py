"""Sending a signal to the owner of a connection, with the checks that make it safe from a live, refreshing view.

The PID shown on screen may be seconds old: the process may have exited and its PID been given to another one.
So every signal names the process by PID *and* start time, and nothing is sent unless both still match.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

import psutil

from netscope.collectors.processes import format_start_time, user_name

# Flag of /proc/<pid>/stat field 9 marking a kernel thread (include/linux/sched.h).
_PF_KTHREAD = 0x00200000
# Start times are whole clock ticks (10 ms at the usual 100 Hz) read twice through float arithmetic.
_START_TIME_TOLERANCE = 0.01


@dataclass(slots=True)
class KillResult:
    ok: bool
    message: str


def _stat_fields(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat from field 3 (state) on, or None if the process does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces and ")": split after the last ")".
    return data.rpartition(b")")[2].split()


def _is_kernel_thread(pid: int) -> bool:
    if pid == 2:
        return _comm(pid) == "kthreadd"  # in a PID namespace, pid 2 may be an ordinary process
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 7:
        return False
    try:
        flags = int(fields[6])  # field 9 of stat
    except ValueError:
        return False
    return bool(flags & _PF_KTHREAD)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def refusal_reason(pid: int) -> str | None:
    """Why netscope will not signal `pid`, in plain words; None if it may (permissions aside)."""
    if pid <= 0:
        # kill(0) and kill(-n) signal whole process groups: never what "kill this connection's owner" means.
        return f"{pid} is not a process id; nothing was sent"
    if pid == 1:
        return "PID 1 is init; killing it would take the machine down"
    if pid == os.getpid():
        return f"PID {pid} is netscope itself"
    if pid == os.getpgrp():
        return f"PID {pid} leads netscope's own process group; signalling it could end netscope too"
    if _is_kernel_thread(pid):
        name = _comm(pid)
        label = f"PID {pid} ({name})" if name else f"PID {pid}"
        return f"{label} is a kernel thread; it cannot be killed with a signal"
    return None


def send_signal(pid: int, expected_start_time: float, sig: int = signal.SIGTERM) -> KillResult:
    """Send `sig` to `pid` if it is still the process that started at `expected_start_time`. Never raises.

    The process is pinned with a pidfd before its start time is checked, so it cannot exit and have its PID
    reused between the check and the signal (on kernels without pidfd, a plain kill() follows the check).
    """
    sig_name = _signal_name(sig)
    reason = refusal_reason(pid)
    if reason is not None:
        return KillResult(False, reason)
    pidfd = _pidfd_open(pid)
    try:
        try:
            proc = psutil.Process(pid)
            name = proc.name()
            started = proc.create_time()
            status = proc.status()
        except psutil.NoSuchProcess:
            return KillResult(False, f"process {pid} has already exited; nothing was sent")
        except psutil.AccessDenied:
            return KillResult(False, f"cannot read process {pid} to check it is the right one; nothing was sent")
        except psutil.Error as exc:
            return KillResult(False, f"cannot check process {pid}: {exc}; nothing was sent")
        if abs(started - expected_start_time) > _START_TIME_TOLERANCE:
            return KillResult(
                False,
                f"PID {pid} now belongs to a different process ({name}, started {format_start_time(started)}); "
                "nothing was sent",
            )
        if status == psutil.STATUS_ZOMBIE:
            msg = f"process {pid} ({name}) has already exited (a zombie waiting for its parent); nothing was sent"
            return KillResult(False, msg)
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return KillResult(False, f"process {pid} ({name}) has already exited; nothing was sent")
        except PermissionError:
            owner = _owner_name(proc)
            return KillResult(
                False,
                f"permission denied: process {pid} ({name}) belongs to user {owner}; "
                f"run netscope as {owner} or with sudo to signal it",
            )
        except (OSError, OverflowError, ValueError) as exc:  # e.g. EINVAL for a signal number that does not exist
            return KillResult(False, f"could not send {sig_name} to {pid} ({name}): {_reason(exc)}")
        return KillResult(True, f"Sent {sig_name} to {pid} ({name})")
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd_open(pid: int) -> int | None:
    """A pidfd for `pid`, or None if the kernel or Python has none (then the caller falls back to kill())."""
    if not hasattr(os, "pidfd_open") or not hasattr(signal, "pidfd_send_signal"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        # ESRCH: already gone, and the psutil check that follows says so in words. ENOSYS, or EPERM from a seccomp
        # filter: no pidfd here, use kill().
        return None


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _owner_name(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return user_name(proc.uids().real)
    return "another user"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
