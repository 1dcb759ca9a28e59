"""The metrics endpoint's own thread: it takes the updates the screen gets (or, headless, the same source's), and
makes one frame per refresh, whatever the number of scrapes.

Why a thread: counting a first refresh of 100,000 sockets takes a few hundred ms, which must not hold the screen's
event loop, and a scrape must never wait for a refresh nor a refresh for a scrape (a scrape reads the newest frame,
a finished object swapped in whole). `take` never blocks: if the thread falls behind by more than `MAX_BEHIND`
updates it drops them and recounts from the newest snapshot (snapshots are never changed once made).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.pace import PaceState
from netscope.collectors.session.alerts import AlertEngine, Thresholds
from netscope.collectors.session.metrics import (
    FrameStatus,
    Label,
    MetricsFrame,
    MetricsSettings,
    SocketTally,
    build_frame,
)
from netscope.collectors.view_data import ViewData

MAX_BEHIND = 8  # updates queued before the thread gives up on them and recounts from the newest


class MetricsFeed:
    def __init__(
        self,
        settings: MetricsSettings,
        *,
        thresholds: Thresholds | None = None,
        read_views: Callable[[], ViewData] | None = None,
        pace: Callable[[], PaceState | None] = lambda: None,
        build: dict[str, str] | None = None,
        label: Label = str,
        interval: float = 1.0,
    ) -> None:
        """`read_views`: interfaces and protocol counters, read in this feed's thread after each refresh (e.g.
        `lambda: SystemViews().collect("connections")`); `pace`: the source's, for the interval and the worker's
        cost; `build`: netscope_build_info's labels."""
        self.settings = settings
        self.tally = SocketTally()
        self.alerts = AlertEngine(thresholds)
        self._read_views = read_views
        self._pace = pace
        self._label = label
        self._status = FrameStatus(interval=interval, build=dict(build or {}))
        self.frame: MetricsFrame | None = None  # the newest: a scrape reads this, and only this
        self._problems: list[str] = []  # views that could not be read, each said once (take_problems)
        self._said: set[str] = set()
        self._pending: list[SnapshotDiff | CollectionFailure] = []
        self._resync = False
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.frames_made = threading.Event()  # set after each frame: tests and the headless loop wait on it

    # --- the producer's side (the screen's event loop, or the headless loop)

    def take(self, update: SnapshotDiff | CollectionFailure) -> None:
        with self._wake:
            pending = self._pending
            pending.append(update)
            if len(pending) > MAX_BEHIND:
                newest = next((item for item in reversed(pending) if isinstance(item, SnapshotDiff)), None)
                failures = sum(isinstance(item, CollectionFailure) for item in pending)
                self._status.failures += failures
                self._pending = [] if newest is None else [newest]
                self._resync = newest is not None
            self._wake.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="netscope-metrics", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the thread

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                updates, self._pending = self._pending, []
                resync, self._resync = self._resync, False
            self.make_frame(updates, resync)

    def make_frame(self, updates: list[SnapshotDiff | CollectionFailure], resync: bool = False) -> MetricsFrame:
        """Count `updates` in and publish a new frame (the thread's work; callable directly in tests)."""
        started = time.thread_time()
        status = self._status
        latest: SnapshotDiff | None = None
        for update in updates:
            if isinstance(update, CollectionFailure):
                status.failures += 1
                continue
            if resync:
                snapshot = update.snapshot
                update = SnapshotDiff(snapshot, list(snapshot.sockets.values()), [], [], first=True)
                resync = False
            self.tally.apply(update)
            self.alerts.update(update)
            status.refreshes += 1
            latest = update
        data = self._views()
        if data is not None and data.statistics is not None:
            self.alerts.update_counters(data.statistics)
        pace = self._pace()
        if pace is not None:
            status.interval = pace.interval
        worker_cost = pace.cost if pace is not None else 0.0
        taken_at = latest.snapshot.taken_at if latest is not None else time.time()
        # The frame's own making (one step per group) is left out: it is small next to counting a refresh.
        status.collect_seconds = worker_cost + time.thread_time() - started
        frame = build_frame(
            self.tally, self.alerts.active, data.interfaces if data else None, data.statistics if data else None,
            self.settings, status, taken_at, self._label,
        )
        self.frame = frame
        self.frames_made.set()
        return frame

    def _views(self) -> ViewData | None:
        if self._read_views is None:
            return None
        try:
            data = self._read_views()
        except Exception as error:  # a broken read loses interface and netstat series this refresh, no more
            self._say(f"metrics: reading interfaces and counters failed: {error.__class__.__name__}: {error}")
            return None
        for warning in data.warnings:
            self._say(f"metrics: {warning}")
        return data

    def _say(self, problem: str) -> None:
        with self._wake:
            if problem not in self._said:
                self._said.add(problem)
                self._problems.append(problem)

    def take_problems(self) -> list[str]:
        """What went wrong since the last call, each problem once in the feed's life (for stderr or the screen)."""
        with self._wake:
            problems, self._problems = self._problems, []
        return problems
