"""Per-state socket counts over the last hour, for the history chart under the "top" view.

One sample per socket refresh: the time it was taken and the counts of `HISTORY_STATES` (TOTAL is every socket).
`series()` shrinks the window to as many equal time buckets as the chart has columns, each bucket the highest
count seen in it, so a one-second SYN flood stays visible in a bucket that covers a minute.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

HISTORY_STATES: tuple[str, ...] = ("TOTAL", "ESTABLISHED", "SYN_RECV", "TIME_WAIT", "CLOSE_WAIT")
# A hard cap whatever the refresh rate (ten refreshes a second for an hour): memory stays bounded even when samples
# come faster than the window drops them, as in a replay played fast.
MAX_SAMPLES = 36_000

_INDEX: dict[str, int] = {name: index for index, name in enumerate(HISTORY_STATES)}


class StateHistory:
    def __init__(self, seconds: float = 3600.0, max_samples: int = MAX_SAMPLES) -> None:
        if not seconds > 0:  # also rejects NaN
            raise ValueError(f"the history window must be a positive number of seconds, got {seconds!r}")
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples!r}")
        self.seconds = float(seconds)
        self._times: deque[float] = deque(maxlen=max_samples)
        self._values: deque[tuple[int, ...]] = deque(maxlen=max_samples)

    def __len__(self) -> int:
        return len(self._times)

    def clear(self) -> None:
        self._times.clear()
        self._values.clear()

    def record(self, taken_at: float, counts: Mapping[str, int]) -> None:
        """Add a sample. `counts` is keyed by `Socket.counter_name`; TOTAL is the sum of all of them.

        A sample older than the newest means time went back (a replay seeking backwards): the history is
        started over, as the samples kept belong to another stretch of time. One at the same time replaces it."""
        times, values = self._times, self._values
        if times:
            if taken_at < times[-1]:
                self.clear()
            elif taken_at == times[-1]:
                times.pop()
                values.pop()
        sample = (
            sum(counts.values()),
            counts.get("ESTABLISHED", 0),
            # counter_name folds NEW_SYN_RECV into SYN_RECV already; raw kernel state counts may not.
            counts.get("SYN_RECV", 0) + counts.get("NEW_SYN_RECV", 0),
            counts.get("TIME_WAIT", 0),
            counts.get("CLOSE_WAIT", 0),
        )
        times.append(taken_at)
        values.append(sample)
        oldest = taken_at - self.seconds
        while times[0] < oldest:
            times.popleft()
            values.popleft()

    def series(self, name: str, buckets: int, window: float | None = None) -> list[int | None]:
        """The last `window` seconds (default: all of `seconds`) before the newest sample in `buckets` equal time
        buckets, oldest first: each the highest count of the samples in it (peaks survive), None where no sample
        fell."""
        index = _index(name)
        if buckets < 1:
            raise ValueError(f"buckets must be at least 1, got {buckets!r}")
        out: list[int | None] = [None] * buckets
        times = self._times
        if not times:
            return out
        window = self.seconds if window is None else min(self.seconds, window)
        if not window > 0:
            raise ValueError(f"the window must be a positive number of seconds, got {window!r}")
        start = times[-1] - window
        width = window / buckets
        last = buckets - 1
        for taken_at, sample in zip(times, self._values, strict=True):
            if taken_at < start:
                continue
            # Bucket i holds [start + i*width, start + (i+1)*width); the newest sample closes the last one.
            bucket = min(int((taken_at - start) / width), last)
            value = sample[index]
            current = out[bucket]
            if current is None or value > current:
                out[bucket] = value
        return out

    def latest(self, name: str) -> int:
        """The newest sample's count, 0 before any."""
        index = _index(name)
        return self._values[-1][index] if self._values else 0

    def span(self) -> float:
        """Seconds between the oldest and the newest sample kept."""
        return self._times[-1] - self._times[0] if self._times else 0.0


def _index(name: str) -> int:
    index = _INDEX.get(name)
    if index is None:
        raise ValueError(f"unknown history series {name!r}; expected one of {', '.join(HISTORY_STATES)}")
    return index
