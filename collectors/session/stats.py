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


class SynRecvWatch:
    """Raises on a jump of SYN_RECV and stays raised while the count stays above half its peak, so that a flood
    is flagged for as long as it lasts, not for the one refresh in which it began."""

    def __init__(self) -> None:
        self.previous = 0
        self.peak = 0
        self.alert = False

    def update(self, count: int) -> bool:
        if syn_recv_surging(self.previous, count):
            self.alert = True
            self.peak = max(self.peak, count)
        elif self.alert and count * 2 >= self.peak:
            self.peak = max(self.peak, count)
        else:
            self.alert = False
            self.peak = 0
        self.previous = count
        return self.alert

    def reset(self, count: int) -> None:
        """Start over from `count` (a fresh load): no alert, since nothing was seen rising."""
        self.previous, self.peak, self.alert = count, 0, False
