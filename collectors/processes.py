"""Who owns each socket: the /proc/<pid>/fd scan, process names, user names and the details view's data.

Everything here races with processes starting and exiting; a process or fd that vanishes while we look is
normal and is skipped silently, never reported as an error.

Long, and one thing: the incremental fd scan, the process identity cache and the details all answer "which
process is this, still?", with the same /proc reads and the same rules for a recycled PID.
"""

from __future__ import annotations

import os
import pwd
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import psutil

from netscope.collectors.containers import read_cgroup_path, read_container
from netscope.collectors.fd_links import read_many
from netscope.collectors.model import ProcessDetails


@dataclass(slots=True)
class OwnerScan:
    """The result of one pass over /proc/*/fd."""

    # The same dict object as the last scan's when no process's fds changed since: no socket changed owner.
    inode_to_pid: dict[int, int]
    # True if some /proc/<pid>/fd could not be read (not root, or root without CAP_SYS_PTRACE in a container, or
    # a specially protected process): the sockets of those processes have unknown owners.
    permission_denied: bool
    # Every pid seen in /proc during the scan; lets the caller prune its per-pid caches.
    live_pids: set[int] = field(default_factory=set)
    # The pids whose fds could not be read, for a precise message ("owners of 3 processes are unknown").
    denied_pids: list[int] = field(default_factory=list)
    # How many fd links were read (readlink calls) and whether every fd was: for tests and benchmarks.
    links_read: int = 0
    full: bool = True


# Which fds a pass reads: those not seen before or whose cached link is in doubt; also every fd cached as "not a
# table socket"; or every fd.
_CHANGED, _SUSPECT, _ALL = 0, 1, 2


# A listing of /proc/<pid>/fd as (how many fds, their names joined by "/"): one string, not a list of them. A
# process whose fds change every refresh (a busy proxy) was listed anew each time, and its cache kept the new
# listing's names beside the older name objects its dicts are keyed by: 100,000 fds were 6 MB of names twice over.
Listing = tuple[int, str]


def _listing(fds: list[str]) -> Listing:
    return len(fds), "/".join(fds)


@dataclass(slots=True)
class _ProcessFds:
    """What OwnerScanner remembers of one process between scans: each fd's link, sorted by kind."""

    start: bytes  # starttime from /proc/<pid>/stat: another value under the same pid is another process
    ino: int  # inode number of /proc/<pid>/fd: the same one means the same process (see _list_and_read)
    inet: dict[str, int] = field(default_factory=dict)  # fd -> inode of a socket in the table given to scan()
    other: dict[str, int] = field(default_factory=dict)  # fd -> inode of another socket (unix; not in the table)
    files: set[str] = field(default_factory=set)  # fds that are not sockets
    # fds whose link we may not read (a protected process): not retried until a full read, and they keep the
    # process in OwnerScan.denied_pids meanwhile
    denied: set[str] = field(default_factory=set)
    # The last listing of /proc/<pid>/fd when every fd in it was accounted for above: an unchanged listing
    # (the usual case) is recognised by one comparison instead of set operations over every fd.
    listing: Listing | None = None

    def __len__(self) -> int:
        return len(self.inet) + len(self.other) + len(self.files) + len(self.denied)


class OwnerScanner:
    """Map socket inodes to the pid that holds them, by reading the /proc/<pid>/fd/* links.

    A socket shared by several processes (inherited across fork, or passed over a unix socket) is reported for
    the *lowest* pid holding it: pids are visited in ascending order and the first holder wins. That is usually
    the parent (e.g. the master process of a pre-forking server), and it is stable from one scan to the next.

    `scan()` reads every link, every time. `scan(socket_inodes)`, given the inodes of the socket table just read,
    is incremental: it keeps each process's fd -> link map between scans and calls readlink only where the answer
    may have changed; its map holds exactly the given inodes that some readable fd holds. Why that is enough: a
    cached fd number keeps its link unless one of these says otherwise.

    * A new process, or a pid reused by another process: all its fds are read. One stat() of /proc/<pid>/fd per
      process and scan tells: /proc gives a new process's fd directory a new inode number, so an unchanged one
      means the same process; a changed one may also be the same process whose /proc inode was evicted and made
      anew, and the starttime in /proc/<pid>/stat then decides (the usual pid-reuse test). exec() keeps pid,
      inode and starttime but closes the close-on-exec fds: that is fd churn, covered below.
    * An fd number not listed last time: read. One no longer listed: forgotten.
    * An fd cached as a table socket whose inode is no longer in the table: read again. A TCP/UDP socket leaves
      the table (or its inode there becomes 0) once its last fd is closed, so a number reused after close() is
      caught by the inode, without reading the fds that did not change.
    * An fd whose socket was held by two or more fds at the last scan (fork, dup, SCM_RIGHTS): read again every
      scan. Closing one holder does not take the socket out of the table, so the inode cannot tell that one of
      the numbers now holds something else.
    * A table inode that no fd maps to, new since the last scan: some fd cached as a file or as another kind of
      socket may have been reused for it (open a file at fd 5, close it, connect a socket: fd 5 again). Every
      such fd is read again, and the processes that were not listed (next point) are listed: for the inodes
      `still_open` (the caller's check with the kernel) says are still open, if the caller gives one. On a busy
      server a connection often closes between the socket table's read and this scan; listing every process
      for its inode each refresh cost 0.1 s at 100,000 sockets (measured with 5 connections replaced a second).
      If the inode is still unaccounted for at the next scan, everything is read once (a holder we cannot see,
      such as a socket in flight over a unix socket, may have let a cached number go), but not more often than
      every `min_scans_between_full` scans: sockets of unreadable processes (not root, another PID namespace) and
      kernel-held ones stay unaccounted for, and each new one would otherwise cost a full read. An inode
      unmatched after a full read is not chased again.
    * As a backstop for holders that cannot be seen at all, every `full_rescan_every`-th scan reads everything.

    Listing /proc/<pid>/fd costs about 1 us per fd, most of a scan when a few processes hold 100,000 sockets. So
    a process is not listed when the stat() above says it has as many fds as last time (its size is the fd count,
    Linux 6.2+) and none of its cached sockets is in doubt by the rules above. Its numbers are then taken as
    unchanged. That misses only an fd closed and another opened at a different number in between; if the new
    one is a table socket, its inode is unaccounted for, which lists those processes after all (above). If it is
    a socket some other process holds too (passed over a unix socket, say), the map may keep naming that other
    holder instead of the lowest pid until this process's fd count changes or the next full read: still a
    process that holds the socket.

    The result matches a full scan made at the same moment, up to that choice between holders and the races any
    scan has with processes that open and close sockets while it looks (and the two-scan delay above for sockets
    whose holders hide).
    """

    def __init__(
        self, proc_root: str = "/proc", full_rescan_every: int = 60, min_scans_between_full: int = 5
    ) -> None:
        self._proc_root = proc_root.rstrip("/") or "/"
        self.full_rescan_every = full_rescan_every
        self.min_scans_between_full = min_scans_between_full
        self._processes: dict[int, _ProcessFds] = {}  # in ascending pid order
        self._shared: set[int] = set()  # socket inodes held by more than one fd at the last scan
        self._unresolved: set[int] = set()  # table inodes no fd held at the last scan
        self._escalated: set[int] = set()  # ... of which a read-everything pass did not find the holder either
        self._since_full = 0  # scans since the last one that read every link
        self._fd_counts = _stat_counts_fds(self._proc_root)
        # _build_maps' last answer, and whether any process's cached fds changed since: a scan where nothing did
        # (the usual refresh of an idle server) returns the same maps, the same objects, without rebuilding them
        # from every fd of the machine; the collector then knows that no socket's owner changed.
        self._maps: tuple[dict[int, int], dict[int, int], set[int]] | None = None
        self._changed = True
        # prefetch()'s pids, denied pids and link count, for the next scan() to file against its table.
        self._prefetched: tuple[list[int], list[int], int] | None = None

    def remembered_fds(self, pid: int) -> int | None:
        """How many of `pid`'s fds the scanner remembers between scans; None if it does not follow that process."""
        entry = self._processes.get(pid)
        return None if entry is None else len(entry)

    @property
    def first(self) -> bool:
        """Whether no scan has read anything yet: the next one reads every link."""
        return not self._processes and self._prefetched is None

    def prefetch(self) -> None:
        """Read every process's fd links before the socket table is known: a first scan's work, done in a thread
        while the table is dumped (the readlinks let go of the GIL). The next scan() files what was read against
        its table instead of reading it again; a process started meanwhile is read by the scan after."""
        try:
            names = os.listdir(self._proc_root)
        except OSError:
            return
        pids = sorted(int(name) for name in names if name.isdigit())
        denied: list[int] = []
        links_read, _unlisted = self._list_and_read(pids, None, _ALL, denied)
        self._prefetched = (pids, denied, links_read)

    def scan(
        self, socket_inodes: Iterable[int] | None = None,
        still_open: Callable[[set[int]], set[int]] | None = None,
    ) -> OwnerScan:
        """Read who holds each socket. Without `socket_inodes`: every link, and every socket inode in the map
        (unix sockets too). With them (the socket table's inodes, 0 ignored): incremental, see the class doc;
        `still_open` tells, of some of those inodes, which the kernel still has (see the class doc)."""
        table: set[int] | None = None
        mode = _ALL
        if socket_inodes is not None:
            # A set of the table's inodes without 0 (as the collector keeps it) is only read, not copied.
            if isinstance(socket_inodes, set) and 0 not in socket_inodes:
                table = socket_inodes
            else:
                table = set(socket_inodes)
                table.discard(0)
            if self._processes and self._since_full + 1 < self.full_rescan_every and self._prefetched is None:
                mode = _CHANGED
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            pids, denied, links_read = prefetched
            unlisted: list[int] = []
            self._file_against(table)
        else:
            try:
                names = os.listdir(self._proc_root)
            except OSError:
                return OwnerScan({}, permission_denied=False)
            pids = sorted(int(name) for name in names if name.isdigit())
            denied = []
            links_read, unlisted = self._list_and_read(pids, table, mode, denied)
        self._changed = self._changed or links_read > 0 or mode == _ALL
        mapping, others, shared = self._build_maps()
        if table is None:
            self._since_full = 0
            self._shared = shared
            return OwnerScan(others, bool(denied), set(pids), denied, links_read, full=True)
        unresolved = _unresolved(table, mapping, self._unresolved)
        if mode != _ALL and unresolved - self._unresolved:
            links_read += self._note_changes(self._reread(table, _SUSPECT, denied))
            mapping, others, shared = self._build_maps()
            unresolved = _unresolved(table, mapping, self._unresolved)
            new = unresolved - self._unresolved if unlisted else set()
            if new and still_open is not None:
                new = still_open(new)
            if new:
                links_read += self._note_changes(self._relist(unlisted, table, denied))
                mapping, others, shared = self._build_maps()
                unresolved = _unresolved(table, mapping, self._unresolved)
        stubborn = (unresolved & self._unresolved) - self._escalated
        if mode != _ALL and stubborn and self._since_full + 1 >= self.min_scans_between_full:
            links_read += self._note_changes(self._reread(table, _ALL, denied), everything=True)
            mode = _ALL
            mapping, others, shared = self._build_maps()
            unresolved = _unresolved(table, mapping, self._unresolved)
        self._escalated = unresolved.copy() if mode == _ALL else self._escalated & unresolved
        self._unresolved = unresolved
        self._shared = shared
        self._since_full = 0 if mode == _ALL else self._since_full + 1
        return OwnerScan(mapping, bool(denied), set(pids), denied, links_read, full=mode == _ALL)

    def _file_against(self, table: set[int] | None) -> None:
        """Sort prefetched socket links into the table's and the others, as a read with the table would have."""
        if not table:
            return
        for entry in self._processes.values():
            moved = {name: inode for name, inode in entry.other.items() if inode in table}
            if moved:
                entry.inet.update(moved)
                # A new dict of what stays, not the old one with the moved deleted: a dict keeps its size when
                # emptied, and a server's listing moves almost every fd (2 MiB kept for nothing at 50,000
                # connections, measured).
                entry.other = {name: inode for name, inode in entry.other.items() if name not in moved}

    def _note_changes(self, links_read: int, everything: bool = False) -> int:
        """Reading links changes the cached fds (what closed is forgotten too): the maps must be made again."""
        self._changed = self._changed or links_read > 0 or everything
        return links_read

    def _list_and_read(
        self, pids: list[int], table: set[int] | None, mode: int, denied: list[int]
    ) -> tuple[int, list[int]]:
        """Bring every process's cached fds up to date as `mode` asks: list them, forget what closed, read what is
        new or in doubt. Returns the readlink count and the pids whose listing was skipped as unchanged."""
        root = self._proc_root
        cache = self._processes
        shared = self._shared
        counts = self._fd_counts
        seen: dict[int, _ProcessFds] = {}
        unlisted: list[int] = []
        reads = _LinkReads(table, denied)
        for pid in pids:
            path = f"{root}/{pid}/fd"
            try:
                # One stat tells two things. st_ino: /proc makes a new inode for the fd directory of a new
                # process, so the same number means the same process (a different one may still be the same
                # process, its inode evicted and made anew: the starttime below decides). st_size: the number of
                # open fds (Linux 6.2+).
                st = os.stat(path)
            except OSError:
                continue  # exited since the listing
            entry = cache.get(pid)
            if entry is not None and (entry.ino != st.st_ino or mode == _ALL):
                start = _read_start(root, pid)
                if start is None:
                    continue
                if mode == _ALL or start != entry.start:
                    entry = _ProcessFds(start, st.st_ino)  # another process under a reused pid: read it all
                    self._changed = True
                else:
                    entry.ino = st.st_ino
            elif entry is None:
                start = _read_start(root, pid)
                if start is None:
                    continue
                entry = _ProcessFds(start, st.st_ino)
                self._changed = True
            held = len(entry.inet)
            doubts = _doubts(entry, table, shared) if table is not None and len(entry) else set()
            self._changed = self._changed or len(entry.inet) != held  # sockets that joined the table
            if not doubts and counts and table is not None and entry.listing is not None and (
                st.st_size == len(entry)
            ):
                # As many fds as last time and none of its sockets in doubt: take the numbers as unchanged rather
                # than list them (see the class docstring for what that can miss, and how it is caught).
                seen[pid] = entry
                unlisted.append(pid)
                if entry.denied:
                    denied.append(pid)
                continue
            if self._open_listing(pid, entry, doubts, denied, reads):
                seen[pid] = entry
        links_read = reads.finish()
        # Processes not seen this time are gone (or unreadable): forget them. Every pid seen was cached before
        # unless marked changed above, so equal counts mean the same processes.
        self._changed = self._changed or len(seen) != len(cache)
        self._processes = seen
        return links_read, unlisted

    def _open_listing(
        self, pid: int, entry: _ProcessFds, doubts: set[str], denied: list[int], reads: _LinkReads
    ) -> bool:
        """List one process's fds, forget the closed ones, and queue the new ones and `doubts` for reading. False
        if it cannot be read (gone, or denied: then added to `denied`)."""
        try:
            # The fd directory is opened once and the links resolved relative to it, not walked again per fd.
            dir_fd = os.open(f"{self._proc_root}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except PermissionError:
            denied.append(pid)
            return False
        except OSError:
            return False  # exited meanwhile (FileNotFoundError, ProcessLookupError ...)
        try:
            fds = os.listdir(dir_fd)
        except OSError as exc:
            os.close(dir_fd)
            if isinstance(exc, PermissionError):
                denied.append(pid)
            return False
        listing = _listing(fds)
        if len(entry) and listing != entry.listing:
            self._changed = True  # fds closed are forgotten in _changed_fds, even if none is new
        wanted = _changed_fds(entry, fds, listing, doubts) if len(entry) else fds
        reads.add(pid, entry, dir_fd, wanted, listing)
        return True

    def _relist(self, pids: list[int], table: set[int], denied: list[int]) -> int:
        """List the fds of processes whose listing was skipped, after all (see scan)."""
        reads = _LinkReads(table, denied)
        for pid in pids:
            entry = self._processes.get(pid)
            if entry is not None:
                self._open_listing(pid, entry, set(), denied, reads)
        return reads.finish()

    def _reread(self, table: set[int], mode: int, denied: list[int]) -> int:
        """Read again the cached fds `mode` names (_SUSPECT: every one not cached as a table socket; _ALL: all)."""
        root = self._proc_root
        reads = _LinkReads(table, denied)
        for pid, entry in self._processes.items():
            wanted = [*entry.other, *entry.files]
            if mode == _ALL:
                wanted += [*entry.inet, *entry.denied]
            if not wanted:
                continue
            try:
                dir_fd = os.open(f"{root}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue  # exited since the listing: its sockets are going too
            reads.add(pid, entry, dir_fd, wanted, None)
        return reads.finish()

    def _build_maps(self) -> tuple[dict[int, int], dict[int, int], set[int]]:
        """(table inode -> lowest pid holding it, other socket inode -> lowest pid, inodes held by several fds).

        Set and dict operations rather than a loop per fd: this runs over every fd of the machine each scan.
        The same objects as last time if no process's cached fds changed meanwhile.
        """
        if not self._changed and self._maps is not None:
            return self._maps
        self._maps = self._made_maps()
        self._changed = False
        return self._maps

    def _made_maps(self) -> tuple[dict[int, int], dict[int, int], set[int]]:
        mapping: dict[int, int] = {}
        others: dict[int, int] = {}
        shared: set[int] = set()
        held: set[int] = set()
        for pid in reversed(self._processes):  # highest pid first, so the lowest holder writes last and wins
            entry = self._processes[pid]
            inodes = set(entry.inet.values())
            inodes.update(entry.other.values())
            if len(inodes) != len(entry.inet) + len(entry.other):  # one socket at several fds of this process
                counts = Counter([*entry.inet.values(), *entry.other.values()])
                shared.update(inode for inode, count in counts.items() if count > 1)
            shared |= held & inodes
            held |= inodes
            mapping.update(dict.fromkeys(entry.inet.values(), pid))
            others.update(dict.fromkeys(entry.other.values(), pid))
        return mapping, others, shared


def _unresolved(table: set[int], mapping: dict[int, int], before: set[int]) -> set[int]:
    """table - mapping.keys(), knowing that mapping's keys are all in the table: the same inodes as `before` if
    the counts say so, which spares a pass over 100,000 inodes in the usual case."""
    if len(table) - len(mapping) == len(before) and before <= table and before.isdisjoint(mapping):
        return before.copy()
    return table - mapping.keys()


def _changed_fds(entry: _ProcessFds, fds: list[str], listing: Listing, doubts: set[str]) -> set[str]:
    """The listed fds (`listing` is theirs) whose link must be read: new numbers, and `doubts`. Forgets the fds
    that were closed.

    A process whose fds did not change costs one string comparison here, not a loop over its fds.
    """
    if listing == entry.listing:
        return doubts  # the same fd numbers as last time
    listed = set(fds)
    wanted = listed.difference(entry.inet, entry.other, entry.files, entry.denied)  # numbers not seen before
    if len(listed) - len(wanted) < len(entry):  # some fds were closed: forget them
        for cache in (entry.inet, entry.other):
            for name in cache.keys() - listed:
                del cache[name]
        entry.files &= listed
        entry.denied &= listed
    wanted |= doubts & listed
    return wanted


def _doubts(entry: _ProcessFds, table: set[int], shared: set[int]) -> set[str]:
    """The cached fds whose link the table casts doubt on (see OwnerScanner); promotes in place a cached "other"
    socket that has joined the table. A few set operations for a process whose sockets are all still there."""
    inet, other = entry.inet, entry.other
    doubts: set[str] = set()
    if inet and not (table.issuperset(inet.values()) and (not shared or shared.isdisjoint(inet.values()))):
        # A socket left the table (its fd number may hold something else now), or is shared: read those again.
        for name, inode in inet.items():
            if inode not in table or inode in shared:
                doubts.add(name)
    if other and not table.isdisjoint(other.values()):
        # Sockets made after the table was read, or bound before they listened, that are in the table now: the
        # same socket still, unless another fd holds it too, in which case this number may have moved on.
        for name, inode in list(other.items()):
            if inode in table:
                if inode in shared:
                    doubts.add(name)
                else:
                    del other[name]
                    inet[name] = inode
    return doubts


class _LinkReads:
    """The fd links a scan must read, gathered across processes so that fd_links reads them in one go (in
    threads, when there are many), then filed into each process's caches. At most _OPEN_DIRS fd directories are
    held open meanwhile: a machine's processes could outnumber our fd limit."""

    def __init__(self, table: set[int] | None, denied: list[int]) -> None:
        self._table = table
        self._denied = denied
        # pid, its cache, its open fd directory, the names to read, and the listing when this read listed it
        self._pending: list[tuple[int, _ProcessFds, int, Collection[str], Listing | None]] = []
        self._links_read = 0

    def add(
        self, pid: int, entry: _ProcessFds, dir_fd: int, wanted: Collection[str], listing: Listing | None
    ) -> None:
        # The names read are the keys the caches keep. Interned, each fd number's name is one string for every
        # process holding that number: forked workers (nginx, php-fpm) each hold fds 0..N. At 250,000 connections
        # held by 50 processes, 500,000 names of 55 bytes were 26 MB; interned, the 10,000 distinct ones. (Interned
        # strings no longer held are freed: the table does not grow with every name ever seen.)
        wanted = list(map(sys.intern, wanted))
        self._pending.append((pid, entry, dir_fd, wanted, listing))
        if len(self._pending) >= _OPEN_DIRS:
            self._flush()

    def finish(self) -> int:
        """Read what is pending; the number of links read since this object was made."""
        self._flush()
        return self._links_read

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            found = read_many([(dir_fd, wanted) for _pid, _entry, dir_fd, wanted, _ in pending], self._table)
        finally:
            for _pid, _entry, dir_fd, _wanted, _listed in pending:
                os.close(dir_fd)
        for (pid, entry, _dir_fd, wanted, listing), finds in zip(pending, found, strict=True):
            in_table, other, files, denied = finds
            self._links_read += len(wanted)
            if len(entry):  # forget what the numbers read again held before
                for name in wanted:
                    entry.inet.pop(name, None)
                    entry.other.pop(name, None)
                    entry.files.discard(name)
                    entry.denied.discard(name)
            entry.inet.update(in_table)
            entry.other.update(other)
            entry.files.update(files)
            entry.denied.update(denied)
            if listing is not None:
                entry.listing = listing if len(entry) == listing[0] else None
            if entry.denied and pid not in self._denied:
                self._denied.append(pid)


_OPEN_DIRS = 256


def _stat_counts_fds(root: str) -> bool:
    """Whether stat() of /proc/<pid>/fd gives the number of open fds as its size (Linux 6.2+; 0 before)."""
    try:
        return os.stat(f"{root}/self/fd").st_size > 0  # we hold stdin, stdout, stderr ... at least
    except OSError:
        return False


def _read_start(root: str, pid: int) -> bytes | None:
    """The starttime field of <root>/<pid>/stat as bytes, None if the process is gone (see _process_identity)."""
    try:
        fd = os.open(f"{root}/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    rest = data.rpartition(b")")[2].split(None, 20)
    return rest[19] if len(rest) >= 20 else None


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    name: str
    start_time: float  # time.time() seconds, as psutil's create_time(); identifies the process across PID reuse
    container: str = ""  # its container or service (collectors/containers.py), read once per process


def _process_identity(pid: int) -> str | None:
    """The starttime (clock ticks since boot) and command name of /proc/<pid>/stat, as text; None if it is gone.

    It is the cheapest reliable identity check, one small read: the starttime changes when a pid is recycled, and
    the command name when the process execs another program (which keeps the pid and the starttime).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces and ")": split after the last ")".
    head, _, tail = data.rpartition(b")")
    rest = tail.split()
    if len(rest) < 20:
        return None
    comm = head.partition(b"(")[2].decode("utf-8", "replace")
    return f"{rest[19].decode('ascii', 'replace')} {comm}"  # field 22 of stat; `rest` starts at field 3


class ProcessInfoCache:
    """Process name and start time per pid, cached but re-validated on each `get` so a recycled PID is noticed.

    Validation reads /proc/<pid>/stat (~10 µs); psutil is only asked on a miss. When one process owns many sockets,
    call `get_many` with the snapshot's pids rather than `get` per socket.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[str, ProcessInfo]] = {}  # pid -> (identity: starttime and name, info)

    def get(self, pid: int) -> ProcessInfo | None:
        """Name and start time of `pid`, or None if no such process exists (anymore)."""
        for _attempt in range(2):
            ticks = _process_identity(pid)
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
                    info = ProcessInfo(pid, proc.name(), proc.create_time(), read_container(pid))
            except psutil.Error:
                return None
            # If the pid was recycled between our stat read and psutil's, `info` may describe another process than
            # `ticks` does: only cache a consistent pair, else look once more.
            if _process_identity(pid) == ticks:
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
            cmdline: list[str] = _optional(proc.cmdline, [])
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
        container=read_container(pid),
        cgroup=read_cgroup_path(pid),
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
