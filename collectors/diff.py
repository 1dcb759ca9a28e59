"""Diffing one snapshot against the last, and carrying each socket's first-seen time across."""

from __future__ import annotations

from collections.abc import Mapping

from netscope.collectors import speedups
from netscope.collectors.model import SharedFields, Snapshot, SnapshotDiff, Socket, SocketKey, shared_with_age


def diff_snapshots(previous: Snapshot | None, current: Snapshot) -> SnapshotDiff:
    """Compare two snapshots by socket identity.

    A socket present in both keeps its `first_seen` from `previous` (so its age keeps counting); it is *changed*
    when anything the table shows (state, queues, owner) differs.
    """
    if previous is None:
        return SnapshotDiff(current, added=list(current.sockets.values()), changed=[], removed=[], first=True)
    if speedups.diff_keys is not None:
        added, pairs, removed = speedups.diff_keys(previous.sockets, current.sockets)
    else:
        added, pairs, removed = diff_keys_python(previous.sockets, current.sockets)
    changed: list[Socket] = []
    changed_before: list[Socket] = []
    made: dict[SharedFields, SharedFields] = {}
    for index in range(0, len(pairs), 2):
        sock, before = pairs[index], pairs[index + 1]
        sock.shared = shared_with_age(sock.shared, before.first_seen, before.seen_since_start, made)
        if not sock.same_content(before):
            changed.append(sock)
            changed_before.append(before)
    return SnapshotDiff(current, added=added, changed=changed, removed=removed, changed_before=changed_before)


def diff_changes(
    old: Mapping[SocketKey, Socket], current: Snapshot, fresh: list[Socket], gone: list[Socket]
) -> SnapshotDiff:
    """diff_snapshots(previous, current) when it is known that every socket of `current` is the same object as in
    `previous` but `fresh`, and every socket of `previous` is in `current` but those whose reading went (`gone`):
    the same diff, from the changes alone. `old`: the previous snapshot's sockets, or at least those under the keys
    of `fresh` and `gone` as they were then."""
    new = current.sockets
    added: list[Socket] = []
    changed: list[Socket] = []
    changed_before: list[Socket] = []
    made: dict[SharedFields, SharedFields] = {}
    for sock in fresh:
        before = old.get(sock.key)
        if before is None:
            added.append(sock)
            continue
        sock.shared = shared_with_age(sock.shared, before.first_seen, before.seen_since_start, made)
        if not sock.same_content(before):
            changed.append(sock)
            changed_before.append(before)
    removed = [old[sock.key] for sock in gone if sock.key not in new and sock.key in old]
    return SnapshotDiff(current, added=added, changed=changed, removed=removed, changed_before=changed_before)


def diff_keys_python(
    old: dict[SocketKey, Socket], new: dict[SocketKey, Socket]
) -> tuple[list[Socket], list[Socket], list[Socket]]:
    """The sockets only in `new`; [socket, before, socket, before ...] for those in both that are not the same
    object (the reader reuses a socket reported exactly as before: nothing to compare); those only in `old`.
    Compiled where it can be (collectors/speedups.py): it runs over every socket of the machine every refresh."""
    added: list[Socket] = []
    pairs: list[Socket] = []
    for key, sock in new.items():
        before = old.get(key)
        if before is None:
            added.append(sock)
        elif before is not sock:
            pairs += (sock, before)
    removed = [sock for key, sock in old.items() if key not in new]
    return added, pairs, removed
