"""The live session: everything netscope keeps about the refreshes it has seen, without drawing any of it.

A source's updates go in (`take`); what the screen should do comes out, typed (`Refresh`): the diff to apply, the
per-state totals, warnings to tell once, alerts raised. It owns pause and the reload on resume, the totals and the
SYN_RECV watch, the groups, the hour of history, the alerts and which were told, throughput, and the first big
load's deferred insights. Textual-free: tested with a fixed source alone (tests/test_live_session.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.model import LiveTimer, Snapshot, SnapshotDiff, SocketKey
from netscope.collectors.protostats import StatsSnapshot
from netscope.collectors.session.alerts import Alert, AlertEngine, Thresholds
from netscope.collectors.session.filters import Filter, parse_filter
from netscope.collectors.session.history import StateHistory
from netscope.collectors.session.insights import GroupCounter
from netscope.collectors.session.stats import SynRecvWatch, update_counts
from netscope.collectors.session.throughput import RateGroup, Throughput, ThroughputTracker
from netscope.collectors.tcpinfo import TcpInfo

# Sockets in a first load above which the groups and alerts follow the table (`Refresh.insights_later`):
# grouping 100,000 sockets takes a few hundred ms, and the table is what the user waits for.
FIRST_INSIGHTS_LATER = 20_000
# Sockets counted per turn of the app's event loop while it catches up (catch_up): 20,000 are ≈ 20 ms of groups
# or 8 ms of alerts, so keys are answered in between (all at once, 100,000 sockets held the loop 135 ms: measured).
INSIGHTS_PART = 20_000


@dataclass(slots=True)
class Refresh:
    """What one update means for the screen."""

    diff: SnapshotDiff | None = None  # the table applies it; None: nothing to draw (paused, or a failure)
    tell: list[tuple[str, str]] = field(default_factory=list)  # (message, severity), each told once
    raised: list[Alert] = field(default_factory=list)  # alerts that started now: tell each
    alerts_changed: bool = False  # the active alerts (`LiveSession.alerts.active`) may differ: redraw the strip
    insights_later: bool = False  # a big first load: call `catch_up()` once the table is on screen


class LiveSession:
    def __init__(self, filter_text: str = "", thresholds: Thresholds | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """`filter_text` must parse (the CLI checked it): a bad one raises FilterError."""
        self.filter: Filter = parse_filter(filter_text)
        self.snapshot: Snapshot | None = None
        self.paused = False
        self.refresh_count = 0
        self.received_at = 0.0  # clock time the current snapshot arrived
        self.totals: Counter[str] = Counter()
        self.syn_recv = SynRecvWatch()
        # Insights (view 6, the panel and the alerts) follow the same diffs as the table: no second scan.
        self.groups = GroupCounter(None if self.filter.is_empty else self.filter.matches)
        self.history = StateHistory()
        self.alerts = AlertEngine(thresholds)
        self.throughput = ThroughputTracker()
        self.standing_warning = ""  # said in the status line for as long as it holds
        self.tcp_columns = False  # a tcp_info column is shown ...
        self.rate_view = False  # ... or a bandwidth grouping: then tcp_info is collected (3 us a socket)
        self._clock = clock
        self._pending: Snapshot | None = None  # the newest snapshot while paused
        self._insights_pending: Iterator[None] | None = None  # the steps of a first load's deferred insights
        self._insights_queued: list[SnapshotDiff] = []  # refreshes since, counted once those are done
        self._recounting = False  # what is pending is only a filter's recount now: a new filter drops it
        self._told: set[tuple[str, str]] = set()  # alerts told, by (kind, filter)
        self._warned: set[str] = set()

    # --- updates

    def take(self, update: SnapshotDiff | CollectionFailure) -> Refresh:
        if isinstance(update, CollectionFailure):
            return Refresh(tell=self._once([(update.message, "error")]))
        diff = update
        if self.paused and self.snapshot is not None:
            # What is on screen stays; the newest snapshot is kept to reload from on resume (the collector keeps
            # first-seen times, so ages stay right).
            self._pending = diff.snapshot
            return Refresh()
        self.snapshot = diff.snapshot
        self.received_at = self._clock()
        self.refresh_count += 1
        tell = self._once([(warning, "information") for warning in diff.snapshot.warnings])
        if diff.snapshot.owners_incomplete:
            self.standing_warning = "some owners unknown"
        self.totals = update_counts(self.totals, diff)
        if diff.first:
            self.syn_recv.reset(self.totals["SYN_RECV"])
        else:
            self.syn_recv.update(self.totals["SYN_RECV"])
        if self.tcp_wanted:
            self.throughput.update(diff.snapshot)
        self.history.record(diff.snapshot.taken_at, self.totals)
        if diff.first and len(diff.added) > FIRST_INSIGHTS_LATER:
            self._insights_pending, self._insights_queued = self._first_insights(diff), []
            self._recounting = False  # a recount under way was of the sockets before: replaced, not dropped later
            return Refresh(diff, tell, insights_later=True)
        if self._insights_pending is not None and not diff.first:
            # Counted after the first load's, by the catch_up steps under way: not all at once now (measured: 144
            # ms at 100,000 sockets, when the next refresh came before they were done).
            self._insights_queued.append(diff)
            return Refresh(diff, tell)
        refresh = self.catch_up(everything=True)
        refresh.diff, refresh.tell = diff, tell
        self._feed_insights(diff, refresh)
        return refresh

    def catch_up(self, everything: bool = False) -> Refresh:
        """The insights of a big first load, deferred by `take`: one part of them (`insights_later` if more is
        left), or `everything` left; nothing if none are pending."""
        refresh = Refresh()
        pending = self._insights_pending
        if pending is None:
            return refresh
        for _step in pending:
            if not everything:
                refresh.insights_later = True
                return refresh
        self._insights_pending = None
        queued, self._insights_queued = self._insights_queued, []
        for diff in queued:
            self._feed_insights(diff, refresh)
        refresh.raised += self._tell_alerts(self.alerts.active)
        refresh.alerts_changed = True
        return refresh

    def _first_insights(self, diff: SnapshotDiff) -> Iterator[None]:
        yield from self.groups.first_in_parts(diff, INSIGHTS_PART)
        yield
        yield from self.alerts.first_in_parts(diff, INSIGHTS_PART)

    def _feed_insights(self, diff: SnapshotDiff, refresh: Refresh) -> None:
        self.groups.apply_diff(diff)
        refresh.raised += self._tell_alerts(self.alerts.update(diff))
        refresh.alerts_changed = True

    def counters_read(self, statistics: StatsSnapshot) -> Refresh:
        """TcpExt ListenOverflows/ListenDrops from view 4's read feed the listen-queue alert."""
        self.alerts.update_counters(statistics)
        return Refresh(raised=self._tell_alerts(self.alerts.active), alerts_changed=True)

    def _tell_alerts(self, active: list[Alert]) -> list[Alert]:
        """The alerts not told yet; told once when they start (one per culprit), the strip shows them meanwhile."""
        raised = [alert for alert in active if (alert.kind, alert.filter_text) not in self._told]
        self._told = {(alert.kind, alert.filter_text) for alert in active}
        return raised

    def _once(self, messages: list[tuple[str, str]]) -> list[tuple[str, str]]:
        fresh = [(message, severity) for message, severity in messages if message not in self._warned]
        self._warned.update(message for message, _ in fresh)
        return fresh

    def warn_once(self, message: str, severity: str = "information") -> list[tuple[str, str]]:
        """[(message, severity)] the first time `message` is given, [] after."""
        return self._once([(message, severity)])

    # --- pause, filter

    def toggle_pause(self) -> SnapshotDiff | None:
        """Pause or resume; on resume, the reload to apply (the diffs skipped while paused are gone), if any."""
        self.paused = not self.paused
        pending, self._pending = self._pending, None
        if self.paused or pending is None:
            return None
        return SnapshotDiff(pending, added=list(pending.sockets.values()), changed=[], removed=[], first=True)

    def set_filter(self, new_filter: Filter, *, in_parts: bool = False) -> bool:
        """Show and count only what `new_filter` matches. `in_parts`: the groups of more than INSIGHTS_PART
        sockets are recounted a part per catch_up() call, as a big first load's are, the counts before shown
        until then (at 200,000 sockets a recount at once held the event loop 45 ms for one port, 190 ms for a
        filter that keeps most sockets: measured); True if catch_up() calls must start for it (False: none are
        needed, or those under way take it on)."""
        self.filter = new_filter
        snapshot, pending, queued = self.snapshot, self._insights_pending, self._insights_queued
        steps_under_way = pending is not None
        if self._recounting:
            # The counts change only at a recount's last part: one not done yet is dropped, not finished first.
            pending, self._recounting = None, False
        self._insights_pending, self._insights_queued = None, []
        steps = self._refiltered(new_filter, snapshot, pending, queued, INSIGHTS_PART if in_parts else 0)
        if not in_parts or snapshot is None or len(snapshot.sockets) <= INSIGHTS_PART:
            for _step in steps:  # a first load's parts left are counted now (alerts told with the next refresh)
                pass
            return False
        self._insights_pending = steps
        return not steps_under_way

    def _refiltered(self, new_filter: Filter, snapshot: Snapshot | None, pending: Iterator[None] | None,
                    queued: list[SnapshotDiff], part: int) -> Iterator[None]:
        """What insights were pending and the refreshes queued after them, then the groups recounted under
        `new_filter`: a recount counts every socket of `snapshot`, so nothing counted before it may be added
        after it."""
        if pending is not None:
            yield from pending
        for diff in queued:
            self._feed_insights(diff, Refresh())  # their alerts are told when catch_up ends
        self._recounting = True
        yield from self.groups.set_filter_in_parts(None if new_filter.is_empty else new_filter.matches, snapshot,
                                                   part)
        self._recounting = False

    # --- how fresh

    def late_seconds(self, interval: float, replay: bool = False) -> int:
        """Whole seconds since the last refresh arrived, once that is well past the interval; else 0."""
        if self.snapshot is None or replay or self.paused:
            return 0
        age = self._clock() - self.received_at
        return int(age) if age > 2 * interval + 2 else 0

    # --- tcp_info

    @property
    def tcp_wanted(self) -> bool:
        """tcp_info costs about 3 µs a socket per refresh: read while a column or a bandwidth view shows it."""
        return self.tcp_columns or self.rate_view

    def metrics_of(self, key: SocketKey) -> tuple[TcpInfo | None, Throughput | None]:
        snapshot = self.snapshot
        info = snapshot.tcp_info.get(key) if snapshot is not None else None
        return info, self.throughput.get(key) if info is not None else None

    def timer_of(self, key: SocketKey) -> LiveTimer | None:
        """The socket's running TCP timer, while tcp_info is read (`tcp_wanted`); None: off, or not read."""
        snapshot = self.snapshot
        return snapshot.timers.get(key) if snapshot is not None else None

    def rate_groups(self, by_process: bool) -> tuple[list[RateGroup], Snapshot | None]:
        """Bandwidth per process or per remote host over the sockets the filter shows (only those with tcp_info,
        so a filter costs nothing per idle socket), and the snapshot it was summed from."""
        snapshot = self.snapshot
        if snapshot is None:
            return [], None
        if not self.filter.is_empty:
            matches, sockets = self.filter.matches, snapshot.sockets
            shown = {key: sock for key in snapshot.tcp_info if (sock := sockets.get(key)) and matches(sock)}
            snapshot = Snapshot(snapshot.taken_at, shown, tcp_info=snapshot.tcp_info)
        groups = self.throughput.by_process(snapshot) if by_process else self.throughput.by_remote_host(snapshot)
        return groups, snapshot
