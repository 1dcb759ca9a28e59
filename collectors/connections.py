"""The connection collector: polls the kernel's socket tables on an interval and yields diffs."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket, SocketKey
from netscope.collectors.processes import OwnerScanner, ProcessInfoCache, user_name
from netscope.collectors.procnet import read_all_sockets

NOT_ROOT_WARNING = (
    "Not running as root: the owners (PID/Program) of other users' sockets show as '-'. "
    "Run netscope as root (sudo netscope) to see every owner."
)


def owners_warning(denied_pids: list[int]) -> str:
    """What to tell the user when some processes' sockets could not be attributed."""
    if os.geteuid() != 0:
        return NOT_ROOT_WARNING
    shown = ", ".join(str(pid) for pid in denied_pids[:5]) + (" ..." if len(denied_pids) > 5 else "")
    return (
        f"Even as root, the open files of {len(denied_pids)} process(es) could not be read (PID {shown}: "
        "protected, or netscope lacks CAP_SYS_PTRACE in a container); their sockets show '-' as owner."
    )


def missing_owner_reason(sock: Socket) -> str:
    """Why a socket shows no PID/Program, in words a user can act on."""
    if sock.inode == 0:
        return "no process owns it: the kernel holds it until the connection finishes closing"
    if os.geteuid() != 0:
        return "its owner is another user's process; run netscope as root (sudo netscope) to see it"
    return "its owner is outside netscope's view (another PID namespace, or a process whose files are protected)"


@dataclass(slots=True)
class CollectionFailure:
    """A refresh that could not be made; the last good data stays on screen."""

    message: str


class SnapshotSource(Protocol):
    """Anything the connections screen can take refreshes from: the live collector, or a recording."""

    interval: float

    def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]: ...

    async def aclose(self) -> None: ...


class ConnectionCollector:
    """Reads every TCP/UDP socket and its owner; `stream()` polls without blocking the event loop."""

    def __init__(self, interval: float = 1.0, proc_root: str = "/proc") -> None:
        self.interval = interval
        self.proc_root = proc_root
        self._owners = OwnerScanner()
        self._processes = ProcessInfoCache()
        self._previous: Snapshot | None = None

    def collect(self) -> Snapshot:
        """One full snapshot. Blocking: run it in a thread."""
        started = time.perf_counter()
        taken_at = time.time()
        sockets, warnings = read_all_sockets(self.proc_root)
        owners = self._owners.scan()
        # One validity check per process, not per socket: a proxy holds thousands of sockets.
        infos = self._processes.get_many(set(owners.inode_to_pid.values()))
        by_key: dict[SocketKey, Socket] = {}
        for sock in sockets:
            # TIME_WAIT and other orphaned sockets have inode 0: the kernel owns them, not any user or process.
            if sock.inode:
                sock.user = user_name(sock.uid)
                pid = owners.inode_to_pid.get(sock.inode)
                info = infos.get(pid) if pid is not None else None
                if info is not None:  # None: the process exited since the fd scan
                    sock.pid = info.pid
                    sock.program = info.name
            sock.first_seen = taken_at
            key = sock.key
            # Two sockets with one identity (a race between reads of /proc/net files): keep the one with an
            # owner, so a row never loses its PID.
            if key in by_key and by_key[key].pid is not None:
                continue
            by_key[key] = sock
        self._processes.prune(owners.live_pids)
        snapshot = Snapshot(
            taken_at=taken_at,
            sockets=by_key,
            owners_incomplete=owners.permission_denied,
            warnings=warnings + ([owners_warning(owners.denied_pids)] if owners.permission_denied else []),
        )
        snapshot.collect_seconds = time.perf_counter() - started
        return snapshot

    def next_diff(self) -> SnapshotDiff:
        snapshot = self.collect()
        first = self._previous is None
        if first:
            for sock in snapshot.sockets.values():
                sock.seen_since_start = True
        diff = diff_snapshots(self._previous, snapshot)
        self._previous = snapshot
        return diff

    async def aclose(self) -> None:
        """Nothing to release: collection runs in threads of this process."""

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        """A diff per interval, collected in a worker thread. A failed refresh is reported, not raised."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                yield await asyncio.to_thread(self.next_diff)
            except Exception as error:
                yield CollectionFailure(f"Reading sockets failed: {error.__class__.__name__}: {error}")
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
