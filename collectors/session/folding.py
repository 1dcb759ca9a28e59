"""Folding: the ownerless sockets a busy server leaves behind shown as one row per kind, not a page each.

A web server under load leaves thousands of TIME_WAIT sockets that no process owns, all alike: same state, same
local endpoint, same client host. Read by eye they are one fact ("1,204 TIME_WAIT from 127.0.0.1 on :80"), so the
table shows them as one row with a count, and the connections someone can act on stay on screen.

What folds: a socket no process holds (no owner, inode 0) in a state a socket reaches without an owner (the closing
states, and a half-open connection still in the SYN queue), grouped by protocol, state, the service's endpoint and
the other host. A socket whose local port has a listener is the server's end: it folds by its local endpoint and
the client host (`127.0.0.1:80  127.0.0.1:*`); any other is a client's, and folds by the remote endpoint
(`127.0.0.1:*  10.0.0.5:443`), its local ports being ephemeral and all different. A socket keeps the group it
joined until it goes, even if the listener closes meanwhile. A group becomes one row once it has FOLD_AT sockets,
and goes back to single rows only when it is down to UNFOLD_AT, so a group at the edge does not flip on every
refresh. A group the user opened stays open.

The folder is fed the sockets the filter lets through, so a folded row counts the sockets that match; it turns
socket changes into row changes (added, changed, removed rows) for the table, which sorts and draws them.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain

from netscope.collectors.model import TCP_STATES, Socket, SocketKey
from netscope.collectors.session.row_map import RowMap

FOLDABLE_STATES = frozenset({
    "TIME_WAIT", "FIN_WAIT1", "FIN_WAIT2", "CLOSING", "LAST_ACK", "SYN_RECV", "NEW_SYN_RECV",
})
FOLD_AT = 3
UNFOLD_AT = 1

# protocol, state, local address, local port, remote address, remote port: the client's port 0 (any)
GroupKey = tuple[str, str, str, int, str, int]
_STATE_NUMBER = {name: number for number, name in TCP_STATES.items()}


def group_of(sock: Socket, listening_ports: Container[int]) -> GroupKey | None:
    """The group a socket folds into, or None if it is shown on its own whatever happens. `listening_ports`: the
    local ports something listens on, which tell a server's end from a client's."""
    # inode 0: no process holds it (an orphan, TIME_WAIT, a request in the SYN queue), rather than an owner unseen.
    if sock.pid is not None or sock.inode != 0 or sock.state not in FOLDABLE_STATES:
        return None
    if sock.local_port in listening_ports:
        return (sock.proto, sock.state, sock.local_ip, sock.local_port, sock.remote_ip, 0)
    return (sock.proto, sock.state, sock.local_ip, 0, sock.remote_ip, sock.remote_port)


class FoldedSockets(Socket):
    """One row standing for `count` sockets of one group. The clients' port is 0 (shown as `*`: the members' ports
    differ), and the key cannot be a real socket's: a negative inode."""

    __slots__ = ("count", "group")

    def __init__(self, group: GroupKey, recv_q: int, send_q: int, count: int, first_seen: float) -> None:
        proto, state, local_ip, local_port, remote_ip, remote_port = group
        super().__init__(proto, local_ip, local_port, remote_ip, remote_port, state, recv_q, send_q, 0, uid=-1,
                         first_seen=first_seen)
        self.count = count
        self.group = group
        self.key = (proto, local_ip, local_port, remote_ip, remote_port, -_STATE_NUMBER.get(state, 99))

    def __eq__(self, other: object) -> bool:
        return Socket.__eq__(self, other) is True and self.count == other.count  # type: ignore[attr-defined]

    __hash__ = None

    def __reduce__(self) -> tuple[type[FoldedSockets], tuple[GroupKey, int, int, int, float]]:
        return FoldedSockets, (self.group, self.recv_q, self.send_q, self.count, self.first_seen)

    def __repr__(self) -> str:
        return (f"FoldedSockets(group={self.group!r}, count={self.count}, recv_q={self.recv_q}, "
                f"send_q={self.send_q})")


def socket_count(row: Socket) -> int:
    """How many sockets a row stands for."""
    return row.count if isinstance(row, FoldedSockets) else 1


@dataclass(slots=True)
class RowChanges:
    """What one batch of socket changes did to the rows (new versions in `changed`, the versions they replace in
    `replaced`, in the same order). `removed`: rows whose sockets closed; `hidden`: rows that went into a fold, or
    a fold that opened into its rows (nothing closed)."""

    added: list[Socket] = field(default_factory=list)
    changed: list[Socket] = field(default_factory=list)
    replaced: list[Socket] = field(default_factory=list)
    removed: list[Socket] = field(default_factory=list)
    hidden: list[Socket] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed) + len(self.hidden)


class Folder:
    """Keeps the rows for a set of sockets: each socket its own row, except groups of FOLD_AT or more."""

    def __init__(self, fold_at: int = FOLD_AT, unfold_at: int = UNFOLD_AT) -> None:
        self.fold_at = fold_at
        self.unfold_at = unfold_at
        self.enabled = True
        self.rows = RowMap()  # row key -> row, a socket or a FoldedSockets
        self.listening_ports: Container[int] = ()  # set by the owner of the sockets: see group_of
        self._groups: dict[GroupKey, dict[SocketKey, Socket]] = {}  # foldable sockets by group
        self._group_of: dict[SocketKey, GroupKey] = {}  # the group each of them joined
        self._folds: dict[GroupKey, FoldedSockets] = {}
        self._opened: set[GroupKey] = set()
        self._before: dict[SocketKey, Socket | None] = {}  # this batch: each touched row as it was before it
        self._hidden: set[SocketKey] = set()  # this batch: rows taken away by folding, not by a socket closing
        self._touched: set[SocketKey] = set()  # this batch: the keys of the sockets added and removed
        self.now = 0.0  # the time a fold made now says it formed: set before each batch

    # --- whole sets

    def reset(self, sockets: Iterable[Socket], now: float) -> None:
        """Start again from these sockets (a new filter, folding switched, a group opened)."""
        self._reset(sockets, None, now)

    def reset_over(self, snapshot: Mapping[SocketKey, Socket], now: float) -> None:
        """reset() from every socket of a snapshot's dict, whose rows are then held as differences from it
        (row_map.py): each batch after is given the next snapshot's dict by take_changes."""
        self._reset(snapshot.values(), snapshot, now)

    def reset_in_parts(self, sockets: Iterable[Socket], now: float, part: int) -> Iterator[None]:
        """reset() a `part` of the sockets at a time (see reset_over_in_parts)."""
        return self._reset_steps(sockets, None, now, part)

    def reset_over_in_parts(self, snapshot: Mapping[SocketKey, Socket], now: float,
                            part: int) -> Iterator[None]:
        """reset_over() a `part` of the sockets at a time, yielding between parts (a big first load: see
        first_load.py). Nothing may read or change the folder until the iterator is exhausted."""
        return self._reset_steps(snapshot.values(), snapshot, now, part)

    def _reset(self, sockets: Iterable[Socket], snapshot: Mapping[SocketKey, Socket] | None, now: float) -> None:
        for _ in self._reset_steps(sockets, snapshot, now, 0):
            pass

    def _reset_steps(self, sockets: Iterable[Socket], snapshot: Mapping[SocketKey, Socket] | None, now: float,
                     part: int) -> Iterator[None]:
        """The work of a reset, yielding after about `part` sockets (0: never)."""
        rows = self.rows
        if snapshot is None:
            rows.clear()
        else:
            rows.over(snapshot)  # every socket a row, until folded below
        self._groups.clear()
        self._group_of.clear()
        self._folds.clear()
        self._before.clear()
        self._hidden.clear()
        self._touched.clear()
        self.now = now
        done = 0
        for sock in sockets:
            group = self._group(sock)
            if group is None:
                if snapshot is None:
                    rows[sock.key] = sock
            else:
                self._groups.setdefault(group, {})[sock.key] = sock
                self._group_of[sock.key] = group
            done += 1
            if done == part:
                done = 0
                yield
        for group, members in self._groups.items():
            if len(members) >= self.fold_at:
                fold = self._folds[group] = self._make_fold(group, members.values(), now)
                rows[fold.key] = fold
                if snapshot is not None:
                    for key in members:
                        rows.pop(key)
            elif snapshot is None:
                rows.update(members)
            done += len(members)
            if part and done >= part:  # a SYN flood's hundred thousand sockets are one group
                done = 0
                yield
        rows.settle()

    def emptied(self) -> Folder:
        """A folder with no sockets yet that folds as this one does: its settings, listeners and opened groups."""
        other = Folder(self.fold_at, self.unfold_at)
        other.enabled = self.enabled
        other.listening_ports = self.listening_ports
        other._opened = set(self._opened)
        other.now = self.now
        return other

    def open(self, group: GroupKey) -> None:
        """Show this group's sockets one by one from now on (call `reset` after)."""
        self._opened.add(group)

    def close_all(self) -> None:
        """Fold every group again (call `reset` after)."""
        self._opened.clear()

    def members(self, row: Socket) -> list[Socket]:
        """The sockets a row stands for: the members of a fold, or the socket itself."""
        if isinstance(row, FoldedSockets):
            return list(self._groups.get(row.group, {}).values())
        return [row]

    def row_key_of(self, key: SocketKey) -> SocketKey:
        """The key of the row that shows socket `key` now (its fold's, if folded)."""
        group = self._group_of.get(key)
        fold = self._folds.get(group) if group is not None and key not in self.rows else None
        return key if fold is None else fold.key

    # --- one batch of changes

    def add(self, sock: Socket) -> None:
        self._touched.add(sock.key)
        group = self._group(sock)
        if group is None:
            self._put(sock)
            return
        members = self._groups.setdefault(group, {})
        members[sock.key] = sock
        self._group_of[sock.key] = group
        fold = self._folds.get(group)
        if fold is not None:
            self._put(self._recount(fold, sock, +1))
        elif len(members) >= self.fold_at:
            for member_key in members:
                if member_key != sock.key:
                    self._drop(member_key, hidden=True)
            self._put(self._make_fold(group, members.values(), self.now))
        else:
            self._put(sock)

    def remove(self, sock: Socket) -> None:
        self._touched.add(sock.key)
        group = self._group_of.pop(sock.key, None)
        members = self._groups.get(group) if group is not None else None
        if group is None or members is None or members.pop(sock.key, None) is None:
            self._drop(sock.key)
            return
        fold = self._folds.get(group)
        if fold is None:
            self._drop(sock.key)
        elif not members:
            self._drop(fold.key)
        elif len(members) <= self.unfold_at:
            self._drop(fold.key, hidden=True)
            del self._folds[group]
            for member in members.values():
                self._put(member)
        else:
            self._put(self._recount(fold, sock, -1))
        if not members:
            del self._groups[group]
            self._folds.pop(group, None)

    def take_changes(self, snapshot: Mapping[SocketKey, Socket] | None = None) -> RowChanges:
        """The row changes since the last call (or reset). `snapshot`: the dict of the snapshot whose sockets
        this batch brought, which rows held over the last one's are held over from now on (see reset_over)."""
        changes = RowChanges()
        rows = self.rows
        for key, before in self._before.items():
            after = rows.get(key)
            if before is None and after is not None:
                changes.added.append(after)
            elif before is not None and after is None:
                (changes.hidden if key in self._hidden else changes.removed).append(before)
            elif before is not None and after is not None and after is not before:
                changes.changed.append(after)
                changes.replaced.append(before)
        if snapshot is not None:
            rows.rebase(snapshot, chain(self._touched, self._before))
        self._before.clear()
        self._hidden.clear()
        self._touched.clear()
        return changes

    # --- inside

    def _group(self, sock: Socket) -> GroupKey | None:
        if not self.enabled:
            return None
        group = group_of(sock, self.listening_ports)
        return None if group in self._opened else group

    def _put(self, row: Socket) -> None:
        if row.key not in self._before:
            self._before[row.key] = self.rows.get(row.key)
        self.rows[row.key] = row
        if isinstance(row, FoldedSockets):
            self._folds[row.group] = row

    def _drop(self, key: SocketKey, hidden: bool = False) -> None:
        if key not in self._before:
            self._before[key] = self.rows.get(key)
        self.rows.pop(key, None)
        if hidden:
            self._hidden.add(key)
        else:
            self._hidden.discard(key)

    @staticmethod
    def _make_fold(group: GroupKey, members: Iterable[Socket], now: float) -> FoldedSockets:
        recv_q = send_q = count = 0
        for member in members:
            recv_q += member.recv_q
            send_q += member.send_q
            count += 1
        return FoldedSockets(group, recv_q, send_q, count, now)

    @staticmethod
    def _recount(fold: FoldedSockets, sock: Socket, step: int) -> FoldedSockets:
        return FoldedSockets(fold.group, fold.recv_q + step * sock.recv_q, fold.send_q + step * sock.send_q,
                             fold.count + step, fold.first_seen)
