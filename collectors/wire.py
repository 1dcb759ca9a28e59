"""The diffs a collector worker process sends to the UI process: only what changed, never a whole snapshot."""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from netscope.collectors.model import Snapshot, SnapshotDiff, Socket, SocketKey

HEADER = struct.Struct("!I")


@dataclass(slots=True)
class WireDiff:
    taken_at: float
    first: bool
    added: list[Socket]
    changed: list[Socket]
    removed: list[SocketKey]  # the receiver still has the sockets themselves
    owners_incomplete: bool = False
    warnings: list[str] = field(default_factory=list)
    collect_seconds: float = 0.0
    error: str = ""  # set instead of the rest when a refresh failed


def to_wire(diff: SnapshotDiff) -> WireDiff:
    snapshot = diff.snapshot
    return WireDiff(
        taken_at=snapshot.taken_at,
        first=diff.first,
        added=diff.added,
        changed=diff.changed,
        removed=[sock.key for sock in diff.removed],
        owners_incomplete=snapshot.owners_incomplete,
        warnings=snapshot.warnings,
        collect_seconds=snapshot.collect_seconds,
    )


class DiffAssembler:
    """Rebuilds full SnapshotDiffs on the receiving side from WireDiffs, keeping the current sockets."""

    def __init__(self) -> None:
        self.sockets: dict[SocketKey, Socket] = {}

    def apply(self, wire: WireDiff) -> SnapshotDiff:
        if wire.first:
            self.sockets = {}
        # A new dict per refresh: a Snapshot the UI still holds must not change under it. Copying 100,000 keys
        # costs a few ms; re-sending them would cost far more.
        sockets = dict(self.sockets)
        removed = [sockets.pop(key) for key in wire.removed if key in sockets]
        changed_before = [sockets[sock.key] for sock in wire.changed if sock.key in sockets]
        changed = [sock for sock in wire.changed if sock.key in sockets]
        for sock in wire.added:
            sockets[sock.key] = sock
        for sock in changed:
            sockets[sock.key] = sock
        self.sockets = sockets
        snapshot = Snapshot(
            taken_at=wire.taken_at,
            sockets=sockets,
            owners_incomplete=wire.owners_incomplete,
            warnings=wire.warnings,
            collect_seconds=wire.collect_seconds,
        )
        return SnapshotDiff(
            snapshot,
            added=wire.added,
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
