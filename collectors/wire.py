"""The diffs a collector worker process sends to the UI process: only what changed, never a whole snapshot."""

from __future__ import annotations

import dataclasses
import pickle
import struct
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, BinaryIO

from netscope.collectors.model import Snapshot, SnapshotDiff, Socket, SocketKey
from netscope.collectors.pace import PaceState
from netscope.collectors.tcpinfo import TcpInfo

HEADER = struct.Struct("!I")

# A socket crosses the pipe as a plain tuple of its constructor's arguments: pickling 100,000 slotted dataclasses
# took 0.53 s and unpickling 0.47 s; tuples take 0.09 s, and 0.21 s to unpickle and rebuild (a first frame at
# 50,000 connections reaches the screen 0.7 s sooner).
SocketRow = tuple[Any, ...]
_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(Socket) if f.init)
_row = attrgetter(*_ROW_FIELDS)


def socket_rows(sockets: list[Socket]) -> list[SocketRow]:
    return [_row(sock) for sock in sockets]


def sockets_of(rows: list[SocketRow]) -> list[Socket]:
    return [Socket(*row) for row in rows]


@dataclass(slots=True)
class WireDiff:
    taken_at: float
    first: bool
    added: list[SocketRow]  # socket_rows(); sockets_of() makes them Sockets again
    changed: list[SocketRow]
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
    # The worker's pace after this frame (collectors/pace.py); None from a worker that does not pace itself.
    pace: PaceState | None = None


def to_wire(diff: SnapshotDiff, previous_tcp_info: dict[SocketKey, TcpInfo] | None = None) -> WireDiff:
    """The frame for `diff`. `previous_tcp_info` is the tcp_info of the snapshot the last frame was made from
    (None or ignored for a first frame): only what changed since is sent, so that 10,000 idle connections cost
    nothing per frame."""
    snapshot = diff.snapshot
    current = snapshot.tcp_info
    if diff.first or not previous_tcp_info:
        tcp_info, gone = current, []
    else:
        get = previous_tcp_info.get
        # `is` first: the netlink reader hands out the same TcpInfo for an unchanged connection.
        tcp_info = {key: info for key, info in current.items() if (old := get(key)) is not info and old != info}
        sockets = snapshot.sockets
        gone = [key for key in previous_tcp_info if key not in current and key in sockets]
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
    )


class DiffAssembler:
    """Rebuilds full SnapshotDiffs on the receiving side from WireDiffs, keeping the current sockets."""

    def __init__(self) -> None:
        self.sockets: dict[SocketKey, Socket] = {}
        self.tcp_info: dict[SocketKey, TcpInfo] = {}

    def apply(self, wire: WireDiff) -> SnapshotDiff:
        if wire.first:
            self.sockets = {}
            self.tcp_info = {}
        # A new dict per refresh: a Snapshot the UI still holds must not change under it. Copying 100,000 keys
        # costs a few ms; re-sending them would cost far more.
        sockets = dict(self.sockets)
        added, sent_changed = sockets_of(wire.added), sockets_of(wire.changed)
        removed = [sockets.pop(key) for key in wire.removed if key in sockets]
        changed_before = [sockets[sock.key] for sock in sent_changed if sock.key in sockets]
        changed = [sock for sock in sent_changed if sock.key in sockets]
        for sock in added:
            sockets[sock.key] = sock
        for sock in changed:
            sockets[sock.key] = sock
        self.sockets = sockets
        tcp_info = self.tcp_info
        if wire.tcp_info or wire.tcp_info_gone or (removed and tcp_info):
            tcp_info = dict(tcp_info)  # new, like `sockets`; unchanged, the same dict may be shared
            for key in wire.tcp_info_gone:
                tcp_info.pop(key, None)
            for sock in removed:
                tcp_info.pop(sock.key, None)
            tcp_info.update(wire.tcp_info)
            self.tcp_info = tcp_info
        snapshot = Snapshot(
            taken_at=wire.taken_at,
            sockets=sockets,
            owners_incomplete=wire.owners_incomplete,
            warnings=wire.warnings,
            collect_seconds=wire.collect_seconds,
            tcp_info=tcp_info,
        )
        return SnapshotDiff(
            snapshot,
            added=added,
            changed=changed,
            removed=removed,
            first=wire.first,
            changed_before=changed_before,
        )


def write_frame(stream: BinaryIO, wire: WireDiff) -> None:
    data = pickle.dumps(wire, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def decode_frame(data: bytes) -> WireDiff:
    # Only ever read from netscope's own worker process, started by this process with its own code: trusted.
    wire = pickle.loads(data)
    if not isinstance(wire, WireDiff):
        raise ValueError(f"the collector worker sent a {type(wire).__name__}, not a WireDiff")
    return wire
