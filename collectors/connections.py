"""The connection collector: polls the kernel's socket tables on an interval and yields diffs.

Sockets come from netlink sock_diag (`netscope.collectors.sockdiag`, what `ss` uses) when the kernel offers it,
else from /proc/net/{tcp,tcp6,udp,udp6} (`netscope.collectors.procnet`): both give the same rows, netlink about
twice as fast. Owners come from an incremental scan of /proc/*/fd that only reads the links that may have changed
(`OwnerScanner.scan(socket_inodes)`).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from netscope.collectors import speedups
from netscope.collectors.diff import diff_changes, diff_snapshots
from netscope.collectors.gc_pause import freeze_first_read, gc_paused
from netscope.collectors.model import (
    LiveTimer,
    Owner,
    SharedFields,
    Snapshot,
    SnapshotDiff,
    Socket,
    SocketKey,
    mark_seen_since_start,
    shared_with_owner,
)
from netscope.collectors.netlink import NETLINK_SOCK_DIAG, NetlinkError, NetlinkSocket
from netscope.collectors.owners import owners_warning
from netscope.collectors.processes import OwnerScan, OwnerScanner, ProcessInfoCache, user_name
from netscope.collectors.procnet import read_all_sockets
from netscope.collectors.sockdiag import SockDiagReader, SockDiagUnavailable
from netscope.collectors.sockdiag_query import EVERYTHING, KernelQuery
from netscope.collectors.socket_lookup import still_open
from netscope.collectors.sources import SourceDefaults
from netscope.collectors.unix_sockets import as_sockets, read_unix_sockets

# Where sockets are read from: "auto" is netlink when it works, else /proc/net.
READERS = ("auto", "netlink", "proc")
# A netlink dump that fails this many refreshes in a row (each then read from /proc) is given up for good.
NETLINK_FAILURES_BEFORE_GIVING_UP = 3
NO_OWNER: Owner = (None, "", "", 0.0)

def missing_owner_reason(sock: Socket) -> str:
    """Why a socket shows no PID/Program, in words a user can act on."""
    if sock.inode == 0:
        return "no process owns it: the kernel holds it until the connection finishes closing"
    if os.geteuid() != 0:
        return "its owner is another user's process; run netscope as root (sudo netscope) to see it"
    return "its owner is outside netscope's view (another PID namespace, or a process whose files are protected)"


def _fill_first_seen_and_user(sockets: list[Socket], taken_at: float) -> None:
    users: dict[int, str] = {}
    made: dict[SharedFields, SharedFields] = {}
    for sock in sockets:
        shared = sock.shared
        user = shared[1]
        if sock.inode:  # TIME_WAIT and other orphaned sockets: the kernel's, not any user's
            uid = shared[0]
            user = users.get(uid)  # type: ignore[assignment]
            if user is None:
                user = users[uid] = user_name(uid)
        wanted = (shared[0], user, *shared[2:4], taken_at, *shared[5:])
        sock.shared = made.setdefault(wanted, wanted)


def _attach_owners_python(
    sockets: list[Socket], pid_of: dict[int, int], owner_of: dict[int, Owner], fresh: set[int] | None
) -> dict[SocketKey, Socket] | None:
    """Give each socket the owner of its inode (NO_OWNER: none): in place where `fresh` is None or holds its id(),
    else a copy put in its place in `sockets`. The sockets by key, or None if two share one."""
    made: dict[SharedFields, SharedFields] = {}
    for index, sock in enumerate(sockets):
        owner = _owner_at(sock.inode, pid_of, owner_of)
        if (sock.pid != owner[0] or sock.program != owner[1] or sock.container != owner[2]
                or sock.pid_start != owner[3]):
            if fresh is None or id(sock) in fresh:
                sock.shared = shared_with_owner(sock.shared, owner, made)
            else:
                sockets[index] = _with_owner(sock, owner)
    by_key = {sock.key: sock for sock in sockets}
    return by_key if len(by_key) == len(sockets) else None


def _owner_at(inode: int, pid_of: dict[int, int], owner_of: dict[int, Owner]) -> Owner:
    """The owner of the socket at `inode`: none for inode 0 (TIME_WAIT and other orphans, which the kernel holds)
    or for a process that exited since the fd scan."""
    pid = pid_of.get(inode)
    return owner_of.get(pid, NO_OWNER) if pid is not None else NO_OWNER


def _with_owner(sock: Socket, owner: Owner) -> Socket:
    return sock.with_shared(shared_with_owner(sock.shared, owner, {}))


def attach_owners(
    sockets: list[Socket], pid_of: dict[int, int], owner_of: dict[int, Owner], fresh: set[int] | None
) -> dict[SocketKey, Socket] | None:
    """_attach_owners_python, compiled where it can be (collectors/speedups.py): it runs over every socket of
    the machine every refresh."""
    if speedups.attach_owners is None:
        return _attach_owners_python(sockets, pid_of, owner_of, fresh)
    by_key: dict[SocketKey, Socket] | None = speedups.attach_owners(
        sockets, pid_of, owner_of, NO_OWNER, fresh, _with_owner
    )
    return by_key


_Changes = tuple[dict[SocketKey, Socket], Mapping[SocketKey, Socket], list[Socket], list[Socket]]


@dataclass(slots=True)
class _LastOwners:
    """What the last snapshot's owners came from, and its sockets by key (see _only_changes)."""

    pid_of: dict[int, int]
    owner_of: dict[int, Owner]
    by_key: dict[SocketKey, Socket]


def _changed_owners(before: dict[int, int], after: dict[int, int]) -> set[int]:
    """The inodes the fd scan maps to another pid, or no longer or newly: two dicts compared in C (items views)."""
    return {inode for inode, _pid in before.items() ^ after.items()}


def _held_at(
    by_key: dict[SocketKey, Socket], moved: Collection[int], fresh: list[Socket], gone: list[Socket]
) -> list[Socket]:
    """The sockets of `by_key` at the inodes in `moved` that are neither new in this read nor gone from it (those
    had their owners given, or left). Found by one pass over every socket, only when there are any: an index by
    inode kept for this (5 MB at 100,000 sockets, in a worker that holds every socket) would mostly be asked of
    sockets that just came or went, which need no lookup."""
    if not moved:
        return []
    wanted = set(moved).difference([sock.inode for sock in fresh], [sock.inode for sock in gone])
    wanted.discard(0)  # TIME_WAIT and other orphans: many sockets, no owner to move
    return [sock for sock in by_key.values() if sock.inode in wanted] if wanted else []


T = TypeVar("T")


class _InThread(threading.Thread, Generic[T]):
    """Some owner-scan work, started at once in a thread of its own; result() waits for it."""

    def __init__(self, work: Callable[[], T]) -> None:
        super().__init__(name="netscope-owners", daemon=True)
        self._work = work
        self._result: T | None = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._result = self._work()
        except BaseException as exc:  # handed to the caller, not lost in the thread
            self._error = exc

    def result(self) -> T | None:
        self.join()
        if self._error is not None:
            raise self._error
        return self._result


def _table_inodes(sockets: list[Socket]) -> set[int]:
    """The inodes of the table just read (0 left out), for the fd scan. Made anew each refresh rather than kept
    and changed by what each read brought: 7 ms at 50,000 connections, where kept it was 4 MiB of the worker's
    resident memory between refreshes (both measured)."""
    inodes = {sock.inode for sock in sockets}
    inodes.discard(0)
    return inodes


def _without_duplicates(sockets: list[Socket]) -> dict[SocketKey, Socket]:
    """By key, for a list where some sockets share one (a race between reads of /proc/net files, or within a
    netlink dump of a changing table): keep the one with an owner, so a row never loses its PID."""
    by_key: dict[SocketKey, Socket] = {}
    for sock in sockets:
        key = sock.key
        if key in by_key and by_key[key].pid is not None:
            continue
        by_key[key] = sock
    return by_key


def _fallback_warning(exc: OSError) -> str:
    return (
        f"Sockets are read from /proc/net, because the kernel's netlink socket interface (sock_diag) cannot be "
        f"used: {exc}. The table is the same, only slower to refresh with many connections."
    )


@dataclass(slots=True)
class CollectionFailure:
    """A refresh that could not be made; the last good data stays on screen."""

    message: str


class ConnectionCollector(SourceDefaults):
    """Reads every TCP/UDP socket and its owner; `stream()` polls without blocking the event loop."""

    def __init__(
        self,
        interval: float = 1.0,
        proc_root: str = "/proc",
        reader: str = "auto",
        incremental_owners: bool = True,
        tcp_info: bool = False,
        unix: bool = False,
        query: KernelQuery = EVERYTHING,
        owners: bool = True,
        update_in_place: bool = False,
    ) -> None:
        """`unix`: read unix sockets instead of TCP/UDP (unix_sockets.as_sockets: the Connections view's
        protocol choice), with owners from the same incremental scan. `reader`: "netlink" (sock_diag, raising
        SockDiagUnavailable if the kernel does not offer it), "proc" (/proc/net), or "auto": netlink if it works
        now, else /proc/net with a warning saying so. A `proc_root` other than /proc asks for that /proc's files,
        so "auto" reads them. `incremental_owners=False` reads every /proc/*/fd link each refresh, as netscope did
        before (for comparison in benchmarks).

        `query` (sockdiag_query.kernel_query; also settable later) asks the netlink reader's dumps for fewer
        sockets: a filter's, which the caller still applies (the /proc reader reads every socket).

        `owners=False` leaves every socket without an owner and spares reading /proc/*/fd: for a count.

        `update_in_place`: a refresh made from what changed (_only_changes) updates the last snapshot's dict of
        sockets in place rather than a copy of it, so that the last snapshot is no longer as it was. For a caller
        that lets go of each snapshot once the next diff is made (the worker, which sends them as diffs): a copy of
        100,000 keys each refresh was 2.5 ms, and 5 MB of pages to fault in where freed blocks are returned
        (heap.py).

        `tcp_info` (also settable later, between refreshes) fills `Snapshot.tcp_info` from the netlink reader;
        /proc/net has no such thing, so with the /proc reader it stays empty: "-" on screen, never a wrong number.
        Measured with 20,000 loopback sockets: ~3 us more per connection when idle (its TcpInfo is reused), ~5 us
        when every one moved, on top of ~2.4 us per socket without; off, the dump is as fast as before."""
        if reader not in READERS:
            raise ValueError(f"unknown reader {reader!r}; expected one of {', '.join(READERS)}")
        self.interval = interval
        self.tcp_info = tcp_info
        self.query = query
        self.owners = owners
        self.unix = unix
        self.proc_root = proc_root
        self.reader = reader
        self.incremental_owners = incremental_owners
        self.update_in_place = update_in_place
        self._owners = OwnerScanner()
        self._processes = ProcessInfoCache()
        self._previous: Snapshot | None = None
        self._has_read = False
        # What the last collect() gave each socket from, for the next one to tell whether any owner can have
        # changed; and what changed in the last collect() when it could be told cheaply (see _only_changes).
        self._last_owners: _LastOwners | None = None
        # (the dict they are relative to, the sockets before under the keys that changed, changed, gone)
        self._changes: _Changes | None = None
        # Whether the last collect() made its snapshot from what changed (_only_changes) rather than every socket.
        self.built_from_changes = False
        self._netlink: SockDiagReader | None = None
        self._lookup: NetlinkSocket | None = None  # for _still_open's questions, apart from the dumps' socket
        self._netlink_failures = 0
        self._fallback_warning = ""  # set when "auto" had to settle for /proc: told with every snapshot
        if not unix and (reader == "netlink" or (reader == "auto" and proc_root.rstrip("/") == "/proc")):
            self._start_netlink()

    def set_tcp_info(self, enabled: bool) -> None:
        """Fill Snapshot.tcp_info from the next refresh on (or stop); read once per refresh by the collecting
        thread, so it may be called from any thread."""
        self.tcp_info = enabled

    @property
    def source(self) -> str:
        """Where sockets are read from now: "netlink" or "proc"."""
        return "netlink" if self._netlink is not None else "proc"

    def _start_netlink(self) -> None:
        """Decide once, at start, whether sock_diag works here (a dump that asks for no sockets)."""
        try:
            reader = SockDiagReader()
            try:
                reader.probe()
            except BaseException:
                reader.close()
                raise
        except (SockDiagUnavailable, NetlinkError) as exc:
            if self.reader == "netlink":
                raise
            self._fallback_warning = _fallback_warning(exc)
            return
        self._netlink = reader

    def _read_sockets(self, taken_at: float, tcp_info: bool) -> tuple[list[Socket], list[str], bool]:
        """(sockets, warnings, whether first_seen and user are filled in already)."""
        if self.unix:
            table = read_unix_sockets(owners=False)
            return as_sockets(table.sockets, taken_at), table.warnings, True
        if self._netlink is not None:
            try:
                sockets = self._netlink.read(
                    first_seen=taken_at, user_name=user_name, tcp_info=tcp_info, dumps=self.query.dumps,
                    reuse=self.incremental_owners,  # a one-shot read has no next read to reuse its sockets
                )
            except NetlinkError as exc:  # SockDiagUnavailable is an OSError, not a NetlinkError: below
                if self.reader == "netlink":
                    raise
                self._netlink_failures += 1
                if self._netlink_failures < NETLINK_FAILURES_BEFORE_GIVING_UP:
                    # Maybe a passing problem (out of memory for the dump, a timeout): this refresh from /proc.
                    sockets, warnings = read_all_sockets(self.proc_root)
                    return sockets, [
                        f"Reading sockets over netlink failed ({exc}); this refresh read /proc/net instead.",
                        *warnings,
                    ], False
                self._give_up_netlink(exc)
            except SockDiagUnavailable as exc:
                if self.reader == "netlink":
                    raise
                self._give_up_netlink(exc)
            else:
                self._netlink_failures = 0
                return sockets, [], True
        sockets, warnings = read_all_sockets(self.proc_root)
        if self._fallback_warning:
            warnings = [self._fallback_warning, *warnings]
        return sockets, warnings, False

    def _give_up_netlink(self, exc: OSError) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None
        self._fallback_warning = _fallback_warning(exc)

    def close(self) -> None:
        """Close the netlink sockets, if open (the collector still works: it reopens them on demand)."""
        if self._netlink is not None:
            self._netlink.close()
        if self._lookup is not None:
            self._lookup.close()

    def collect(self) -> Snapshot:
        """One full snapshot. Blocking: run it in a thread."""
        started = time.perf_counter()
        taken_at = time.time()
        # 100,000 sockets are 200,000 new objects: without this the cyclic GC would walk the whole heap (this
        # snapshot's and the previous one's) several times per refresh, for nothing, as nothing here is cyclic.
        want_tcp_info = self.tcp_info  # once: it may be switched from another thread meanwhile
        with gc_paused():
            # Reading every fd link needs no socket table: a one-shot read, or a first one, does it in a thread
            # while the table is dumped (its readlinks and listings let go of the GIL).
            scanning: _InThread[OwnerScan | None] | None = None
            if self.owners and not self.incremental_owners:
                scanning = _InThread(self._owners.scan)
            elif self.owners and self._owners.first and not self.unix:
                scanning = _InThread(self._owners.prefetch)
            try:
                sockets, warnings, filled = self._read_sockets(taken_at, want_tcp_info)
            except BaseException:
                if scanning is not None:
                    scanning.join()  # never leave it changing the scanner under the next refresh
                raise
            # Only from a read that asked for them: after a failed netlink read, /proc gave this refresh's sockets.
            reader = self._netlink
            tcp_info = reader.last_tcp_info if want_tcp_info and reader is not None and filled else {}
            timers = {
                key: LiveTimer(kind, round(taken_at + expires / 1000, 1), retransmits)
                for key, (kind, retransmits, expires) in reader.last_timers.items()
            } if want_tcp_info and reader is not None and filled else {}
            scanned = scanning.result() if scanning is not None else None
            if scanned is not None:
                owners = scanned
            elif not self.owners:
                owners = OwnerScan({}, permission_denied=False)
            else:
                owners = self._owners.scan(
                    _table_inodes(sockets),
                    functools.partial(self._still_open, sockets, reader),
                )
            if not filled:
                _fill_first_seen_and_user(sockets, taken_at)
            # One validity check per process, not per socket: a proxy holds thousands of sockets.
            infos = self._processes.get_many(set(owners.inode_to_pid.values()))
            owner_of: dict[int, Owner] = {
                pid: (info.pid, info.name, info.container, info.start_time) for pid, info in infos.items()
            }
            reusing = filled and reader is not None and not self.unix and self.incremental_owners
            reused = reader if reusing else None
            by_key = self._only_changes(sockets, owners.inode_to_pid, owner_of, reused)
            if by_key is None:
                self._changes = None
                # Sockets the netlink reader reused from the last snapshot are shared with it: one whose owner
                # changed is copied, never changed in place, or the diff could not see the change.
                # A read that reused none (a first one) shares none: every socket is changed in place, and no set
                # of 500,000 ids is made to say so (0.1 s there).
                fresh = reused.fresh_ids if reused is not None and len(reused.fresh) < len(sockets) else None
                by_key = attach_owners(sockets, owners.inode_to_pid, owner_of, fresh)
                if by_key is None:
                    by_key = _without_duplicates(sockets)
            # Only after a netlink read with no two sockets on one key: the next read's changes are relative to it.
            if reused is None or len(by_key) != len(sockets):
                self._last_owners = None
            elif self._changes is None:  # made the slow way: index it anew
                self._last_owners = _LastOwners(owners.inode_to_pid, owner_of, by_key)
            self.built_from_changes = self._changes is not None
            self._processes.prune(owners.live_pids)
            if not self._has_read:  # only a first read: each freeze keeps what is alive for good
                self._has_read = True
                freeze_first_read(len(by_key))
        snapshot = Snapshot(
            taken_at=taken_at,
            sockets=by_key,
            owners_incomplete=owners.permission_denied,
            warnings=warnings + ([owners_warning(owners.denied_pids)] if owners.permission_denied else []),
            tcp_info=tcp_info,
            timers=timers,
        )
        snapshot.collect_seconds = time.perf_counter() - started
        return snapshot

    def _still_open(self, sockets: list[Socket], reader: SockDiagReader | None, inodes: set[int]) -> set[int]:
        """Of these inodes of the table just read, those the kernel still has (the fd scan asks before it lists
        every process for a socket no fd holds: on a busy server that is mostly a connection closed since)."""
        if reader is None or self.unix:
            return inodes
        # They are mostly sockets new in this read; look in all of them only for the others.
        of_inode = {sock.inode: sock for sock in reader.fresh if sock.inode in inodes}
        if len(of_inode) < len(inodes):
            of_inode = {sock.inode: sock for sock in sockets if sock.inode in inodes}
        if self._lookup is None or self._lookup.closed:
            self._lookup = NetlinkSocket(NETLINK_SOCK_DIAG)
        return (inodes - of_inode.keys()) | still_open(self._lookup, of_inode.values())

    def _only_changes(
        self, sockets: list[Socket], pid_of: dict[int, int], owner_of: dict[int, Owner],
        reader: SockDiagReader | None,
    ) -> dict[SocketKey, Socket] | None:
        """The snapshot's sockets by key from the last one's and what changed, or None when that cannot be told
        (then every socket is looked at). Even on a busy server few of 100,000 sockets change in a second: this
        spares giving each its owner and keying it every refresh.

        It can be told when the reader reused the last read's unchanged sockets, every process that owned sockets
        and still does is as it was (name, container, start), and no two sockets share a key. Then every socket
        the reader reused is in the last snapshot as it should be now (itself, or the copy made when it got its
        owner) unless the fd scan now maps its inode to another process; the new ones need their owners, and the
        ones that went leave. Sets self._changes to what diff_changes needs."""
        last = self._last_owners
        if reader is None or last is None:
            return None
        if any(owner_of.get(pid, owner) != owner for pid, owner in last.owner_of.items()):
            return None  # a process was renamed (exec) or replaced under its pid: all its sockets change

        # Sockets whose owner may differ from the last snapshot's: those at inodes the fd scan now maps otherwise
        # (none when its map is the very same object: no process's fds changed).
        moved = () if pid_of is last.pid_of else _changed_owners(last.pid_of, pid_of)
        fresh, gone = reader.fresh, reader.gone
        # In place, what each changed key held is kept, to undo it or to diff against; a copy keeps each key's
        # stored hash: no key tuple is hashed again.
        in_place = self.update_in_place
        by_key = last.by_key if in_place else dict(last.by_key)
        before: dict[SocketKey, Socket | None] = {}
        keep = before.setdefault
        for sock in gone:
            if in_place:
                keep(sock.key, by_key.get(sock.key))
            by_key.pop(sock.key, None)
        made: dict[SharedFields, SharedFields] = {}
        for sock in fresh:
            sock.shared = shared_with_owner(sock.shared, _owner_at(sock.inode, pid_of, owner_of), made)
            if in_place:
                keep(sock.key, by_key.get(sock.key))
            by_key[sock.key] = sock
        if len(by_key) != len(sockets):
            # Two sockets share a key (or one went whose key another holds): the slow way sorts it out. Nothing
            # here can add an entry that should not be there, so a count that matches means a right map.
            if in_place:  # the slow way diffs against the last snapshot: as it was
                for changed_key, was_there in before.items():
                    if was_there is None:
                        by_key.pop(changed_key, None)
                    else:
                        by_key[changed_key] = was_there
            self._last_owners = None
            return None
        changed = list(fresh)
        for held in _held_at(by_key, moved, fresh, gone):
            owner = _owner_at(held.inode, pid_of, owner_of)
            if (held.pid, held.program, held.container, held.pid_start) != owner:
                # Never changed in place: the last snapshot may hold this very object.
                keep(held.key, held)
                by_key[held.key] = copy = _with_owner(held, owner)
                changed.append(copy)
        self._last_owners = _LastOwners(pid_of, owner_of, by_key)
        was = {key: sock for key, sock in before.items() if sock is not None} if in_place else last.by_key
        self._changes = (last.by_key, was, changed, gone)
        return by_key

    def next_diff(self) -> SnapshotDiff:
        snapshot = self.collect()
        first = self._previous is None
        if first:
            mark_seen_since_start(snapshot.sockets.values())
        if self._previous is not None and self._changes is not None and self._changes[0] is self._previous.sockets:
            diff = diff_changes(self._changes[1], snapshot, self._changes[2], self._changes[3])
        else:
            diff = diff_snapshots(self._previous, snapshot)
        self._previous = snapshot
        # Not kept: it holds the last snapshot's dict of sockets (5 MB at 100,000 sockets) until the next read.
        self._changes = None
        return diff

    async def aclose(self) -> None:
        """Collection runs in threads of this process: only the netlink socket to close."""
        self.close()

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        """A diff per interval, collected in a worker thread. A failed refresh is reported, not raised."""
        import asyncio  # here: the worker and the printed outputs never stream, and asyncio is 25 ms to load

        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                yield await asyncio.to_thread(self.next_diff)
            except Exception as error:
                yield CollectionFailure(f"Reading sockets failed: {error.__class__.__name__}: {error}")
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
