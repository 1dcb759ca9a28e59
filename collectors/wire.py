"""The diffs a collector worker process sends to the UI process: only what changed, never a whole snapshot."""

from __future__ import annotations

import pickle
import struct
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from operator import attrgetter
from typing import BinaryIO, TypeVar

from netscope.collectors.model import (
    FirstScreen,
    LiveTimer,
    SharedFields,
    Snapshot,
    SnapshotDiff,
    Socket,
    SocketKey,
)
from netscope.collectors.pace import PaceState
from netscope.collectors.row_order import first_rows
from netscope.collectors.tcpinfo import TcpInfo

HEADER = struct.Struct("!I")

# A socket crosses the pipe as a plain tuple of its constructor's arguments: pickling 100,000 slotted dataclasses
# took 0.53 s and unpickling 0.47 s; tuples take 0.09 s, and 0.21 s to unpickle and rebuild (a first frame at
# 50,000 connections reaches the screen 0.7 s sooner). The tuple holds a socket's protocol, addresses and state,
# then its shared fields (model.SharedFields: its owner, when it was first seen, a backlog) as the one tuple
# the socket holds, the very same object for every socket that has them equal: a process's sockets read at one
# time. Pickle sends an object it has sent before as a reference to it, and the UI unpickles it once and its
# Sockets share it as the worker's do; a number it sends and makes anew every time, and a pid and two floats per
# socket were most of what a frame carried. At 100,000 sockets (measured, the same frame): 5.8 -> 2.8 MB on the
# pipe, and 146 -> 137 MiB resident in the UI.
# The numbers go apart, packed in arrays (SocketRows): unpickled in the tuple, each was a new number object a
# socket (the ports 6 MiB at 100,000 sockets, where a frame's ports are a few thousand numbers, made once a frame
# each as sockets_of reads them). The queues and the inode went too once the Socket shrank to 80 bytes: a first
# frame of 100,000 sockets 3.9 -> 3.6 MB, encoded in 98 -> 86 ms and decoded into Sockets in 98 -> 87 ms
# (measured, one process, medians of 7); the UI's resident memory after decoding it did not move (+37 MiB).
# (Tried and not kept: one flat list instead of a tuple per socket, 3 MiB more.)
SocketRow = tuple[str, str, str, str, SharedFields]
_own = attrgetter("proto", "local_ip", "remote_ip", "state")


def _packed(numbers: list[int]) -> array[int]:
    """Ports as 2 bytes each; a unix socket's stand-in "ports" are inodes, which may take more."""
    for typecode in "HI":
        try:
            return array(typecode, numbers)
        except OverflowError:
            continue
    return array("Q", numbers)


@dataclass(slots=True)
class SocketRows:
    """Sockets on the pipe (socket_rows()): a row per socket (texts and shared fields), its numbers packed."""

    rows: list[SocketRow]
    local_ports: array[int]
    remote_ports: array[int]
    recv_qs: array[int]
    send_qs: array[int]
    inodes: array[int]

    def __len__(self) -> int:  # and so its truth: whether a frame added or changed any socket
        return len(self.rows)


def socket_rows(sockets: list[Socket]) -> SocketRows:
    """Each socket as (proto, local address, remote address, state, its shared fields), its numbers packed apart:
    equal shared fields are one object. Equal, not identical: a pid_start of 0 and one of 0.0 share a tuple, and
    both come back as the first."""
    shared_ones: dict[SharedFields, SharedFields] = {}
    shared = shared_ones.setdefault
    rows: list[SocketRow] = []
    append = rows.append
    for sock in sockets:
        fields = sock.shared
        append((*_own(sock), shared(fields, fields)))
    return SocketRows(rows, _packed([sock.local_port for sock in sockets]),
                      _packed([sock.remote_port for sock in sockets]), _packed([sock.recv_q for sock in sockets]),
                      _packed([sock.send_q for sock in sockets]), _packed([sock.inode for sock in sockets]))


def sockets_of(sent: SocketRows) -> list[Socket]:
    """The Sockets of a frame's rows (socket_rows()), emptying its rows as it goes: each row's tuple is freed once
    its Socket is made, so that a first frame never holds both. Equal ports are one number object."""
    made: list[Socket] = []
    append = made.append
    ports: dict[int, int] = {}
    port = ports.setdefault  # the first number object of each port value is the one every socket keeps
    local_ports = list(map(port, sent.local_ports, sent.local_ports))
    remote_ports = list(map(port, sent.remote_ports, sent.remote_ports))
    rows = sent.rows
    numbers = zip(rows, local_ports, remote_ports, sent.recv_qs, sent.send_qs, sent.inodes, strict=True)
    for index, (row, local_port, remote_port, recv_q, send_q, inode) in enumerate(numbers):
        append(Socket(row[0], row[1], local_port, row[2], remote_port, row[3], recv_q, send_q, inode,
                      shared=row[4]))
        rows[index] = ()  # type: ignore[assignment]  # the empty tuple is shared: nothing allocated
    return made


@dataclass(slots=True)
class WireDiff:
    taken_at: float
    first: bool
    added: SocketRows  # socket_rows(); sockets_of() makes them Sockets again
    changed: SocketRows
    removed: list[SocketKey]  # the receiver still has the sockets themselves
    owners_incomplete: bool = False
    warnings: list[str] = field(default_factory=list)
    collect_seconds: float = 0.0
    error: str = ""  # set instead of the rest when a refresh failed
    # Snapshot.tcp_info, as a change: the entries that are new or differ from the previous frame's (all of them
    # in a first frame), and the keys of sockets still there that no longer have one (tcp_info switched off, a
    # connection gone to TIME_WAIT). A removed socket's entry goes with it, unlisted.
    tcp_info: dict[SocketKey, TcpInfo] = field(default_factory=dict)
    tcp_info_gone: list[SocketKey] = field(default_factory=list)
    # Snapshot.timers, as a change in the same way (deadlines, so an idle connection's timer is sent once).
    timers: dict[SocketKey, LiveTimer] = field(default_factory=dict)
    timers_gone: list[SocketKey] = field(default_factory=list)
    # The worker's pace after this frame (collectors/pace.py); None from a worker that does not pace itself.
    pace: PaceState | None = None


def failed_frame(error: str) -> WireDiff:
    """The frame a refresh that failed sends instead of its changes."""
    return WireDiff(time.time(), False, socket_rows([]), socket_rows([]), [], error=error)


@dataclass(slots=True)
class WireFirstScreen:
    """A FirstScreen on the pipe: its rows as socket_rows()."""

    taken_at: float
    rows: SocketRows
    counts: dict[str, int]

    def rebuilt(self) -> FirstScreen:
        return FirstScreen(self.taken_at, sockets_of(self.rows), self.counts)


def first_screen_frame(snapshot: Snapshot, rows: int) -> WireFirstScreen:
    """The first `rows` rows of `snapshot` in the default order, and its counts (a few ms at 100,000 sockets)."""
    # Counter counts in C: 180 -> 130 ms at 500,000 sockets in no order (most of what is left is reading each one)
    counts = dict(Counter(map(attrgetter("counter_name"), snapshot.sockets.values())))
    return WireFirstScreen(snapshot.taken_at, socket_rows(first_rows(snapshot.sockets.values(), rows)), counts)


V = TypeVar("V")


def _changes(current: dict[SocketKey, V], previous: dict[SocketKey, V] | None, first: bool,
             sockets: dict[SocketKey, Socket]) -> tuple[dict[SocketKey, V], list[SocketKey]]:
    """What of a per-socket dict to send: the entries new or different since `previous`, and the keys of sockets
    still there that no longer have one (a removed socket's entry goes with it, unlisted)."""
    if first or not previous:
        return current, []
    get = previous.get
    # `is` first: the netlink reader hands out the same TcpInfo for an unchanged connection.
    changed = {key: value for key, value in current.items() if (old := get(key)) is not value and old != value}
    return changed, [key for key in previous if key not in current and key in sockets]


def to_wire(diff: SnapshotDiff, previous_tcp_info: dict[SocketKey, TcpInfo] | None = None,
            previous_timers: dict[SocketKey, LiveTimer] | None = None) -> WireDiff:
    """The frame for `diff`. `previous_tcp_info` and `previous_timers` are those of the snapshot the last frame
    was made from (None or ignored for a first frame): only what changed since is sent, so that 10,000 idle
    connections cost nothing per frame."""
    snapshot = diff.snapshot
    tcp_info, gone = _changes(snapshot.tcp_info, previous_tcp_info, diff.first, snapshot.sockets)
    timers, timers_gone = _changes(snapshot.timers, previous_timers, diff.first, snapshot.sockets)
    return WireDiff(
        taken_at=snapshot.taken_at,
        first=diff.first,
        added=socket_rows(diff.added),
        changed=socket_rows(diff.changed),
        removed=[sock.key for sock in diff.removed],
        owners_incomplete=snapshot.owners_incomplete,
        warnings=snapshot.warnings,
        collect_seconds=snapshot.collect_seconds,
        tcp_info=tcp_info,
        tcp_info_gone=gone,
        timers=timers,
        timers_gone=timers_gone,
    )


class DiffAssembler:
    """Rebuilds full SnapshotDiffs on the receiving side from WireDiffs, keeping the current sockets."""

    def __init__(self) -> None:
        self.sockets: dict[SocketKey, Socket] = {}
        self.tcp_info: dict[SocketKey, TcpInfo] = {}
        self.timers: dict[SocketKey, LiveTimer] = {}

    def apply(self, wire: WireDiff) -> SnapshotDiff:
        if wire.first:
            self.sockets = {}
            self.tcp_info = {}
            self.timers = {}
        # A new dict per refresh that changes a socket: a Snapshot the UI still holds must not change under it.
        # Copying 100,000 keys costs a few ms; re-sending them would cost far more. A refresh that changes none
        # shares the last one's dict: on an idle server at 500,000 sockets, one such copy a refresh gave each
        # later garbage collection 500,000 references to walk.
        unchanged = not (wire.first or wire.added or wire.changed or wire.removed)
        sockets = self.sockets if unchanged else dict(self.sockets)
        added, sent_changed = sockets_of(wire.added), sockets_of(wire.changed)
        removed = [sockets.pop(key) for key in wire.removed if key in sockets]
        changed_before = [sockets[sock.key] for sock in sent_changed if sock.key in sockets]
        changed = [sock for sock in sent_changed if sock.key in sockets]
        for sock in added:
            sockets[sock.key] = sock
        for sock in changed:
            sockets[sock.key] = sock
        self.sockets = sockets
        self.tcp_info = tcp_info = _updated(self.tcp_info, wire.tcp_info, wire.tcp_info_gone, removed)
        self.timers = timers = _updated(self.timers, wire.timers, wire.timers_gone, removed)
        snapshot = Snapshot(
            taken_at=wire.taken_at,
            sockets=sockets,
            owners_incomplete=wire.owners_incomplete,
            warnings=wire.warnings,
            collect_seconds=wire.collect_seconds,
            tcp_info=tcp_info,
            timers=timers,
        )
        return SnapshotDiff(
            snapshot,
            added=added,
            changed=changed,
            removed=removed,
            first=wire.first,
            changed_before=changed_before,
        )


def _updated(held: dict[SocketKey, V], sent: dict[SocketKey, V], gone: list[SocketKey],
             removed: list[Socket]) -> dict[SocketKey, V]:
    """A per-socket dict after a frame: a new one if anything changed (a Snapshot the UI still holds must not
    change under it), else the same."""
    if not (sent or gone or (removed and held)):
        return held
    updated = dict(held)
    for key in gone:
        updated.pop(key, None)
    for sock in removed:
        updated.pop(sock.key, None)
    updated.update(sent)
    return updated


def write_frame(stream: BinaryIO, wire: WireDiff | WireFirstScreen) -> None:
    data = pickle.dumps(wire, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def decode_frame(data: bytes) -> WireDiff | WireFirstScreen:
    # Only ever read from netscope's own worker process, started by this process with its own code: trusted.
    wire = pickle.loads(data)
    if not isinstance(wire, WireDiff | WireFirstScreen):
        raise ValueError(f"the collector worker sent a {type(wire).__name__}, not a WireDiff")
    return wire
