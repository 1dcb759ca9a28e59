"""Diffing one snapshot against the last, and carrying each socket's first-seen time across."""

from __future__ import annotations

from netscope.collectors.model import Snapshot, SnapshotDiff, Socket, SocketKey


def diff_snapshots(previous: Snapshot | None, current: Snapshot) -> SnapshotDiff:
    """Compare two snapshots by socket identity.

    A socket present in both keeps its `first_seen` from `previous` (so its age keeps counting); it is *changed*
    when anything the table shows (state, queues, owner) differs.
    """
    if previous is None:
        return SnapshotDiff(current, added=list(current.sockets.values()), changed=[], removed=[], first=True)
    old: dict[SocketKey, Socket] = previous.sockets
    added: list[Socket] = []
    changed: list[Socket] = []
    changed_before: list[Socket] = []
    for key, sock in current.sockets.items():
        before = old.get(key)
        if before is None:
            added.append(sock)
            continue
        if before is sock:
            continue  # reused by the reader: reported exactly as before, first-seen time and all
        sock.first_seen = before.first_seen
        sock.seen_since_start = before.seen_since_start
        if not sock.same_content(before):
            changed.append(sock)
            changed_before.append(before)
    new = current.sockets
    removed = [sock for key, sock in old.items() if key not in new]
    return SnapshotDiff(current, added=added, changed=changed, removed=removed, changed_before=changed_before)
