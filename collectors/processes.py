"""Who owns each socket: the /proc/<pid>/fd scan, process names, user names and the details view's data.

Everything here races with processes starting and exiting; a process or fd that vanishes while we look is
normal and is skipped silently, never reported as an error.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import psutil

from netscope.collectors.model import ProcessDetails

# What readlink(/proc/<pid>/fd/<n>) returns for a socket: "socket:[12345]".
_SOCKET_PREFIX = "socket:["
_SOCKET_PREFIX_LEN = len(_SOCKET_PREFIX)


@dataclass(slots=True)
class OwnerScan:
    """The result of one pass over /proc/*/fd."""

    inode_to_pid: dict[int, int]
    # True if some /proc/<pid>/fd could not be read (not root, or root without CAP_SYS_PTRACE in a container, or
    # a specially protected process): the sockets of those processes have unknown owners.
    permission_denied: bool
    # Every pid seen in /proc during the scan; lets the caller prune its per-pid caches.
    live_pids: set[int] = field(default_factory=set)
    # The pids whose fds could not be read, for a precise message ("owners of 3 processes are unknown").
    denied_pids: list[int] = field(default_factory=list)


class OwnerScanner:
    """Map socket inodes to the pid that holds them, by reading every /proc/<pid>/fd/* link.

    A socket shared by several processes (inherited across fork, or passed over a unix socket) is reported for
    the *lowest* pid holding it: pids are visited in ascending order and the first holder wins. That is usually
    the parent (e.g. the master process of a pre-forking server), and it is stable from one scan to the next.
    """

    def __init__(self, proc_root: str = "/proc") -> None:
        self._proc_root = proc_root.rstrip("/") or "/"

    def scan(self) -> OwnerScan:
        root = self._proc_root
        inode_to_pid: dict[int, int] = {}
        denied: list[int] = []
        try:
            names = os.listdir(root)
        except OSError:
            return OwnerScan({}, permission_denied=False)
        pids = sorted(int(name) for name in names if name.isdigit())
        prefix, prefix_len = _SOCKET_PREFIX, _SOCKET_PREFIX_LEN
        readlink = os.readlink
        for pid in pids:
            # Opening the fd directory once and resolving links relative to it avoids walking
            # /proc/<pid>/fd again for every single fd.
            try:
                dir_fd = os.open(f"{root}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
            except PermissionError:
                denied.append(pid)
                continue
            except OSError:
                # Exited meanwhile (FileNotFoundError, ProcessLookupError, NotADirectoryError ...): skip it.
                continue
            try:
                try:
                    fds = os.listdir(dir_fd)
                except PermissionError:
                    denied.append(pid)
                    continue
                except OSError:
                    continue
                pid_denied = False
                for fd in fds:
                    try:
                        link = readlink(fd, dir_fd=dir_fd)
                    except PermissionError:
                        pid_denied = True
                        continue
                    except OSError:
                        continue  # the fd was closed since listdir
                    if link.startswith(prefix):
                        try:
                            inode = int(link[prefix_len:-1])
                        except ValueError:
                            continue
                        if inode not in inode_to_pid:  # lowest pid wins (see class docstring)
                            inode_to_pid[inode] = pid
                if pid_denied:
                    denied.append(pid)
            finally:
                os.close(dir_fd)
        return OwnerScan(inode_to_pid, permission_denied=bool(denied), live_pids=set(pids), denied_pids=denied)


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    name: str
    start_time: float  # time.time() seconds, as psutil's create_time(); identifies the process across PID reuse


def _start_ticks(pid: int) -> str | None:
    """The starttime field of /proc/<pid>/stat (clock ticks since boot), as text; None if the process is gone.

    It is the cheapest reliable identity check: one small read, and it changes when a pid is recycled.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces and ")": split after the last ")".
    rest = data.rpartition(b")")[2].split()
    if len(rest) < 20:
        return None
    return rest[19].decode("ascii", "replace")  # field 22 of stat; `rest` starts at field 3


class ProcessInfoCache:
    """Process name and start time per pid, cached but re-validated on each `get` so a recycled PID is noticed.

    Validation reads /proc/<pid>/stat (~10 µs); psutil is only asked on a miss. When one process owns many sockets,
    call `get_many` with the snapshot's pids rather than `get` per socket.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[str, ProcessInfo]] = {}  # pid -> (starttime ticks, info)

    def get(self, pid: int) -> ProcessInfo | None:
        """Name and start time of `pid`, or None if no such process exists (anymore)."""
        for _attempt in range(2):
            ticks = _start_ticks(pid)
            if ticks is None:
                self._entries.pop(pid, None)
                return None
            cached = self._entries.get(pid)
            if cached is not None and cached[0] == ticks:
                return cached[1]
            self._entries.pop(pid, None)
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    info = ProcessInfo(pid, proc.name(), proc.create_time())
            except psutil.Error:
                return None
            # If the pid was recycled between our stat read and psutil's, `info` may describe another process than
            # `ticks` does: only cache a consistent pair, else look once more.
            if _start_ticks(pid) == ticks:
                self._entries[pid] = (ticks, info)
                return info
        return None

    def get_many(self, pids: Iterable[int]) -> dict[int, ProcessInfo]:
        """`get` for each distinct pid, validated once each: for a snapshot where one pid owns many sockets."""
        found: dict[int, ProcessInfo] = {}
        for pid in set(pids):
            info = self.get(pid)
            if info is not None:
                found[pid] = info
        return found

    def prune(self, live_pids: set[int]) -> None:
        """Forget processes that are no longer alive."""
        for pid in [pid for pid in self._entries if pid not in live_pids]:
            del self._entries[pid]

    def __len__(self) -> int:
        return len(self._entries)


_USER_NAMES: dict[int, str] = {}


def user_name(uid: int) -> str:
    """The login name of `uid`, or the number as text if no user has it (e.g. a container's uid)."""
    name = _USER_NAMES.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            name = str(uid)
        _USER_NAMES[uid] = name
    return name


def _vanished(pid: int, message: str) -> ProcessDetails:
    return ProcessDetails(
        pid=pid,
        name="",
        user="",
        cmdline=[],
        exe="",
        cwd="",
        start_time=0.0,
        status="",
        parent_pid=0,
        error=message,
    )


def process_details(pid: int) -> ProcessDetails:
    """Everything the details view shows about `pid`; never raises.

    Fields only the owner (or root) may read, such as exe and cwd, are "" when unreadable. If the process is
    gone, or cannot be read at all, the result has `error` set in plain words.
    """
    if pid <= 0:  # psutil would report pid 0 (the idle task) as merely "gone"
        return _vanished(pid, f"{pid} is not a valid process id")
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return _vanished(pid, f"process {pid} has exited")
    except psutil.AccessDenied:
        return _vanished(pid, f"cannot read process {pid}: permission denied (run netscope as root to see it)")
    except (ValueError, OverflowError):
        return _vanished(pid, f"{pid} is not a valid process id")
    try:
        with proc.oneshot():
            name = proc.name()
            start_time = proc.create_time()
            status = proc.status()
            parent_pid = proc.ppid()
            user = user_name(proc.uids().effective)
            cmdline = _optional(proc.cmdline, [])
            exe = _optional(proc.exe, "")
            cwd = _optional(proc.cwd, "")
    except psutil.NoSuchProcess:  # includes ZombieProcess for the fields a zombie no longer has
        return _vanished(pid, f"process {pid} has exited")
    except psutil.AccessDenied:
        return _vanished(pid, f"cannot read process {pid}: permission denied (run netscope as root to see it)")
    except (psutil.Error, OSError) as exc:  # anything else /proc may throw at us: report it, don't crash the view
        return _vanished(pid, f"cannot read process {pid}: {exc}")
    error = ""
    if status == psutil.STATUS_ZOMBIE:
        # Exited but not yet reaped by its parent: it holds no sockets anymore, only an entry in the table.
        error = f"process {pid} has exited (a zombie waiting for its parent to collect it)"
    return ProcessDetails(
        pid=pid,
        name=name,
        user=user,
        cmdline=cmdline,
        exe=exe,
        cwd=cwd,
        start_time=start_time,
        status=status,
        parent_pid=parent_pid,
        error=error,
    )


_T = TypeVar("_T")


def _optional(getter: Callable[[], _T], default: _T) -> _T:
    """Call a psutil getter whose value only the owner (or root) may read; `default` when it cannot be read."""
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return default


def format_start_time(start_time: float) -> str:
    """A start time in the local time zone, for messages: "14:03:12" today, "2024-05-01 14:03" otherwise."""
    local = time.localtime(start_time)
    if time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M", local)
