"""How often to refresh so that refreshing costs at most a share of one core.

On the busiest box of a fleet (half a million sockets, a SYN flood) one refresh can cost a second of CPU; at a 1 s
interval the monitor would become the load. The worker measures each refresh's CPU time and waits longer between
refreshes when their cost passes `cpu_share` of the interval, in a few fixed steps (so the status line does not
change every refresh), and comes back down when the cost falls. A pace the user forced (`--interval` on the command
line) is kept whatever it costs: `cpu_share` 0.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

DEFAULT_CPU_SHARE = 0.2
# Multiples of the chosen interval the pace may stretch to.
STEPS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)
LONGEST = 60.0  # seconds: never slower than this (unless the interval itself is)
# Costs remembered: the median of the last few, so that one slow refresh (the first, full one; a burst of new
# processes to scan) does not stretch the pace, and one quick one does not undo it.
REMEMBERED = 5
SURE_AFTER = 3  # refreshes measured before the pace moves at all
# Back down a step only once the cost would fit the lower pace with room to spare: no see-saw at a boundary.
ROOM = 0.7


def _median(costs: deque[float]) -> float:
    """statistics.median of a few numbers, without that module and the fractions and decimal it loads into the
    worker (0.5 MiB resident, measured)."""
    ordered = sorted(costs)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, slots=True)
class PaceState:
    interval: float  # seconds between refreshes now
    stretched: bool  # longer than the interval asked for, to keep under the share
    cost: float  # CPU seconds a refresh takes (median of the last few)
    cpu_share: float


class Pace:
    def __init__(self, interval: float, cpu_share: float = DEFAULT_CPU_SHARE) -> None:
        if not 0.0 <= cpu_share <= 1.0:
            raise ValueError(f"cpu_share must be between 0 and 1, not {cpu_share}")
        self.base = interval
        self.cpu_share = cpu_share
        self.interval = interval
        self._costs: deque[float] = deque(maxlen=REMEMBERED)

    def after(self, cost: float) -> PaceState:
        """Take one refresh's CPU seconds; return the pace for the wait before the next one."""
        self._costs.append(max(0.0, cost))
        typical = _median(self._costs)
        if self.cpu_share > 0 and len(self._costs) >= SURE_AFTER:
            needed = typical / self.cpu_share  # the interval at which refreshing costs exactly the share
            slower = self._level(needed)
            if slower > self.interval:
                self.interval = slower
            else:
                faster = self._level(needed / ROOM)
                if faster < self.interval:
                    self.interval = faster
        return PaceState(self.interval, self.interval > self.base, typical, self.cpu_share)

    def _level(self, seconds: float) -> float:
        """The smallest step at least `seconds` long, within LONGEST."""
        longest = max(self.base, LONGEST)
        for step in STEPS:
            candidate = self.base * step
            if candidate >= seconds or candidate >= longest:
                return min(candidate, longest)
        return longest
