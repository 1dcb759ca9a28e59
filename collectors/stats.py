"""Counting sockets per state, and telling when SYN_RECV jumps (a SYN flood, or a listener too slow to accept)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from netscope.collectors.model import SnapshotDiff, Socket

# A rise of this many half-open connections within one refresh is worth a warning on its own...
SYN_RECV_JUMP = 20
# ...and so is a count that has at least doubled, once it is above this floor (a few are normal on a busy server).
SYN_RECV_FLOOR = 50


def count_states(sockets: Iterable[Socket]) -> Counter[str]:
    return Counter(sock.counter_name for sock in sockets)


def update_counts(counts: Counter[str], diff: SnapshotDiff) -> Counter[str]:
    """The per-state counts after `diff`, from the counts before it: no pass over every socket each refresh."""
    if diff.first:
        return count_states(diff.snapshot.sockets.values())
    for sock in diff.added:
        counts[sock.counter_name] += 1
    for sock in diff.removed:
        counts[sock.counter_name] -= 1
    for before, after in zip(diff.changed_before, diff.changed, strict=True):
        if before.counter_name != after.counter_name:
            counts[before.counter_name] -= 1
            counts[after.counter_name] += 1
    return counts


def syn_recv_surging(previous: int, current: int) -> bool:
    """True when the SYN_RECV count jumped since the last refresh."""
    rise = current - previous
    return rise >= SYN_RECV_JUMP or (current >= SYN_RECV_FLOOR and current >= 2 * max(previous, 1))
