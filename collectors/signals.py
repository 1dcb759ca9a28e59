"""Sending a signal to the owner of a connection, with the checks that make it safe from a live, refreshing view.

The PID shown on screen may be seconds old (or minutes, on a paused table or a row that lingers after it closed):
the process may have exited and its PID been given to another one. So a signal names the process as it was
recorded with the socket: PID, the start time the collector read when it saw that PID own the socket, and the
socket's inode. Nothing is sent unless the PID's start time still matches and, where its fds are readable, it
still holds that socket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from dataclasses import dataclass

import psutil

from netscope.collectors.limits import PID_MAX_LIMIT
from netscope.collectors.model import ProcessDetails, Socket
from netscope.collectors.processes import format_start_time, process_details, user_name

# Flag of /proc/<pid>/stat field 9 marking a kernel thread (include/linux/sched.h).
_PF_KTHREAD = 0x00200000
# Start times are whole clock ticks (10 ms at the usual 100 Hz) read twice through float arithmetic.
_START_TIME_TOLERANCE = 0.01


def same_start(a: float, b: float) -> bool:
    """Whether two start times read for one PID name the same process."""
    return abs(a - b) <= _START_TIME_TOLERANCE


@dataclass(frozen=True, slots=True)
class OwnerCheck:
    """What a fresh look at a socket's recorded owner found, for the kill dialog and the signal itself."""

    refusal: str = ""  # why nothing may be sent to it; "" if it is still the process that held the socket
    name: str = ""
    socket_count: int | None = None  # sockets it holds now; None when its fds cannot be read
    holds_socket: bool | None = None  # whether it still holds the recorded socket; None: not readable or no inode


def owner_details(sock: Socket) -> ProcessDetails:
    """The details of the process recorded as `sock`'s owner, or an error saying it is gone: a PID that now names
    another process (started after the one recorded with the socket) is never described as the owner."""
    assert sock.pid is not None
    details = process_details(sock.pid)
    if not details.error and sock.pid_start and not same_start(details.start_time, sock.pid_start):
        return dataclasses.replace(details, error=(
            f"The process that held this socket has exited: PID {sock.pid} now belongs to another process "
            f"({details.name}, started {format_start_time(details.start_time)}), not shown here."
        ))
    return details


def look_before_kill(sock: Socket) -> tuple[ProcessDetails, OwnerCheck]:
    """The owner's details and a fresh identity check, in one call for one worker thread."""
    assert sock.pid is not None
    return owner_details(sock), check_owner(sock.pid, sock.pid_start, sock.inode)


def socket_inodes(pid: int) -> set[int] | None:
    """The inodes of the sockets `pid` has open now, from its /proc fd links; None if they cannot be read."""
    found: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            with contextlib.suppress(ValueError):
                found.add(int(target[8:-1]))
    return found


def check_owner(pid: int, start_time: float, inode: int = 0) -> OwnerCheck:
    """Whether `pid` is still the process that started at `start_time` (as recorded with the socket) and still
    holds socket `inode` (0: do not check). Never raises; blocking (/proc reads): run it in a thread."""
    reason = refusal_reason(pid)
    if reason is not None:
        return OwnerCheck(reason)
    if start_time <= 0:
        return OwnerCheck(f"this row does not record when process {pid} started, so netscope cannot be sure the "
                          f"PID still names it; nothing was sent")
    try:
        proc = psutil.Process(pid)
        name = proc.name()
        started = proc.create_time()
        zombie = proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return OwnerCheck(f"process {pid} has exited since this row was read; nothing was sent")
    except psutil.AccessDenied:
        return OwnerCheck(f"cannot read process {pid} to check it is the right one; nothing was sent")
    except (psutil.Error, OSError, ValueError, OverflowError) as exc:
        return OwnerCheck(f"cannot check process {pid}: {exc}; nothing was sent")
    if not same_start(started, start_time):
        return OwnerCheck(
            f"the socket's owner has exited and PID {pid} now belongs to a different process ({name}, started "
            f"{format_start_time(started)}); nothing was sent",
            name,
        )
    if zombie:
        return OwnerCheck(f"process {pid} ({name}) has exited (a zombie waiting for its parent to collect it); "
                          "nothing was sent", name)
    inodes = socket_inodes(pid)
    holds = None if inodes is None or not inode else inode in inodes
    if holds is False:
        return OwnerCheck(
            f"process {pid} ({name}) no longer holds that socket (it closed or passed it on since the row was "
            "read); nothing was sent. Select one of its current rows to signal it",
            name, len(inodes or ()), False,
        )
    return OwnerCheck("", name, None if inodes is None else len(inodes), holds)


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
    if pid <= 0 or pid > PID_MAX_LIMIT:
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


def send_signal(pid: int, expected_start_time: float, sig: int = signal.SIGTERM, inode: int = 0) -> KillResult:
    """Send `sig` to `pid` if it is still the process that started at `expected_start_time` and (when `inode` is
    given and its fds are readable) still holds that socket. Never raises.

    `expected_start_time` must be the one recorded with the socket (`Socket.pid_start`), not one read when the
    user pressed the key: that would only prove the PID names *some* process. The process is pinned with a pidfd
    before it is checked, so it cannot exit and have its PID reused between the check and the signal (on kernels
    without pidfd, a plain kill() follows the check).
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
        if not same_start(started, expected_start_time):
            return KillResult(
                False,
                f"PID {pid} now belongs to a different process ({name}, started {format_start_time(started)}); "
                "nothing was sent",
            )
        if inode:
            inodes = socket_inodes(pid)
            if inodes is not None and inode not in inodes:
                return KillResult(False, f"process {pid} ({name}) no longer holds that socket; nothing was sent")
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
    except (OSError, OverflowError):
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
