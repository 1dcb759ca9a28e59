"""The netscope App: wires the connection collector to the table, counters, filter, details and kill."""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from collections import Counter
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.notifications import Notification, Notify, SeverityLevel
from textual.widgets import Footer, TabbedContent, TabPane

import netscope.styles
from netscope.app.oneshot import write_export, write_table_export
from netscope.app.screens.columns import ColumnsScreen
from netscope.app.screens.confirm_close import ConfirmCloseScreen
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.app.screens.details import DetailsScreen, TcpDetails
from netscope.app.screens.help import HelpScreen, key_help
from netscope.app.system_views import SystemViews, ViewSource
from netscope.app.views.interfaces import InterfacesView
from netscope.app.views.multicast import MulticastView
from netscope.app.views.routes import RoutesView
from netscope.app.views.statistics import StatisticsView
from netscope.app.views.top import TopView
from netscope.collectors.connections import CollectionFailure, SnapshotSource, missing_owner_reason
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket, SocketKey
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.recording import RecordedViews, RecordingTee, RecordingWriter, ReplaySource
from netscope.collectors.resolver import NameResolver
from netscope.collectors.session.alerts import Alert, AlertEngine, Thresholds
from netscope.collectors.session.config import save_columns
from netscope.collectors.session.filters import Filter, FilterError, parse_filter
from netscope.collectors.session.history import StateHistory
from netscope.collectors.session.insights import GroupCounter
from netscope.collectors.session.notices import Decision, NoticeBoard
from netscope.collectors.session.stats import SynRecvWatch, update_counts
from netscope.collectors.session.throughput import Throughput, ThroughputTracker
from netscope.collectors.signals import look_before_kill, owner_details, refusal_reason, send_signal
from netscope.collectors.sock_destroy import close_refusal, destroy_capability, destroy_socket
from netscope.collectors.tcpinfo import TcpInfo
from netscope.widgets.alert_bar import AlertBar
from netscope.widgets.connection_table import ConnectionTable
from netscope.widgets.filter_bar import FilterBar
from netscope.widgets.state_counters import StateCounters
from netscope.widgets.status_bar import Status, StatusBar, rounded_ms
from netscope.widgets.tcp_columns import METRIC_COLUMNS
from netscope.widgets.text import printable
from netscope.widgets.top_panel import TopPanel
from netscope.widgets.traffic_panel import TrafficPanel

STYLES = Path(netscope.styles.__file__).parent / "netscope.tcss"
# Actions that act on the connection table: only while the Connections view is shown.
# Pause and recording are not among them: they answer in every view (R records everything; space says what it
# pauses), so that neither key does nothing without a word.
CONNECTION_ACTIONS = frozenset(
    {"cycle_sort", "reverse_sort", "filter_selected", "toggle_names", "kill", "clear_filter",
     "replay_step", "replay_jump", "replay_speed", "choose_columns", "close_connection"}
)
FIRST_INSIGHTS_LATER = 20_000  # sockets in a first load above which the groups and alerts follow the table
REPLAY_ACTIONS = frozenset({"replay_step", "replay_jump", "replay_speed"})
VIEWS = ("connections", "interfaces", "routes", "statistics", "multicast", "top")  # keys 1 to 6
LIVE_VIEW_TABS = ("tab-interfaces", "tab-routes", "tab-statistics", "tab-multicast")


class NetscopeApp(App[None]):
    TITLE = "netscope"
    CSS_PATH = STYLES
    # Each key once, with an id (for `[keys]` in the config file) and a tooltip: the help screen (`?`) is built
    # from the active bindings, so what a key does is written here and nowhere else.
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit", tooltip="quit"),
        *(Binding(str(number), f"show_view('{view}')", view.capitalize(), show=False, id=f"view_{view}",
                  tooltip="views: Connections, Interfaces (netstat -i), Routes (-r), Statistics (-s), Multicast "
                  "(-g), Top (who is connected: by remote host, network, local port, process; the last hour)")
          for number, view in enumerate(VIEWS, 1)),
        Binding("a", "show_alert", "Alert", show=False, id="show_alert",
                tooltip="show the sockets behind the first alert (a flood's sources, a leaking process)"),
        Binding("slash", "open_filter", "Filter", id="filter",
                tooltip="filter (Enter applies, Escape clears); a bad filter is explained and the old one kept"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter",
                tooltip="clear the filter"),
        Binding("s", "cycle_sort(1)", "Sort", id="sort",
                tooltip="sort by the next / previous column (or click a column header)"),
        Binding("S", "cycle_sort(-1)", "Sort back", show=False, id="sort_back",
                tooltip="sort by the next / previous column (or click a column header)"),
        Binding("r", "reverse_sort", "Reverse", show=False, id="reverse_sort", tooltip="reverse the sort order"),
        Binding("o", "filter_selected('port')", "This port", id="filter_port",
                tooltip="filter to the selected row's local port"),
        Binding("t", "filter_selected('state')", "This state", id="filter_state",
                tooltip="filter to the selected row's state"),
        Binding("p", "filter_selected('pid')", "This PID", id="filter_pid",
                tooltip="filter to the selected row's PID"),
        Binding("n", "toggle_names", "Names", id="names",
                tooltip="toggle host and service names (resolved in the background) and numbers"),
        Binding("k", "kill('SIGTERM')", "Kill", id="kill",
                tooltip="send SIGTERM to the owning process (asks first; never a recycled PID)"),
        Binding("K", "kill('SIGKILL')", "Kill -9", show=False, id="kill_9",
                tooltip="send SIGKILL to the owning process (asks first; never a recycled PID)"),
        Binding("x", "close_connection", "Close conn", id="close_connection",
                tooltip="close just the selected TCP connection (SOCK_DESTROY, like ss -K; asks first; needs "
                        "root)"),
        Binding("c", "choose_columns", "Columns", show=False, id="columns",
                tooltip="choose extra columns: the owner's container, and from tcp_info bytes, rates, rtt, cwnd "
                        "..."),
        Binding("space", "toggle_pause", "Pause", show=False, id="pause",
                tooltip="pause / resume the connection table (in a replay: play / pause)"),
        Binding("e", "export('csv')", "Export", show=False, id="export_csv",
                tooltip="export the view's rows as shown (filtered, sorted) to CSV in the current directory"),
        Binding("E", "export('json')", "Export JSON", show=False, id="export_json",
                tooltip="export the view's rows as shown (filtered, sorted) to JSON in the current directory"),
        Binding("R", "toggle_recording", "Record", show=False, id="record",
                tooltip="start / stop recording to netscope-DATE-TIME.nsrec (replay it with netscope --replay "
                        "FILE)"),
        Binding("comma", "replay_step(-1)", "Step back", id="replay_back", tooltip="replay: one refresh back"),
        Binding("full_stop", "replay_step(1)", "Step", id="replay_forward", tooltip="replay: one refresh forward"),
        Binding("left_square_bracket", "replay_jump(-60)", "-1 min", id="replay_minute_back",
                tooltip="replay: one minute back"),
        Binding("right_square_bracket", "replay_jump(60)", "+1 min", id="replay_minute_forward",
                tooltip="replay: one minute forward"),
        Binding("minus", "replay_speed(0.5)", "Slower", show=False, id="replay_slower", tooltip="replay: slower"),
        Binding("plus,equals_sign", "replay_speed(2)", "Faster", show=False, id="replay_faster",
                tooltip="replay: faster"),
        Binding("question_mark", "help", "Help", id="help", tooltip="this help: every key of the view shown"),
    ]

    def __init__(
        self,
        source: SnapshotSource | None = None,
        *,
        interval: float = 1.0,
        filter_text: str = "",
        flash_seconds: float = 3.0,
        views: ViewSource | None = None,
        thresholds: Thresholds | None = None,
        columns: list[str] | None = None,
        save_config: bool = True,
        config_file: Path | None = None,
        notices: list[str] | None = None,
        netns: str = "",
        keys: dict[str, str] | None = None,
        key_places: dict[str, str] | None = None,
    ) -> None:
        """`columns`, `save_config` and `config_file`: the tcp_info columns to start with, and whether and where
        (None: the usual place) a change of them is remembered; `notices`: problems to tell once started;
        `keys`: the config file's [keys] (binding id -> keys), `key_places` where each was written."""
        super().__init__()
        self._keys = dict(keys or {})
        self._key_places = dict(key_places or {})
        # Live data passes through a RecordingTee so that R can start recording at any time.
        self.source: SnapshotSource = source or RecordingTee(ProcessCollector(interval=interval))
        self.filter: Filter = parse_filter(filter_text)  # the CLI validated it; a bad one raises FilterError
        self.flash_seconds = flash_seconds
        self.snapshot: Snapshot | None = None
        self.paused = False
        self.refresh_count = 0
        self._resolver: NameResolver | None = None
        self._warned: set[str] = set()
        self._standing_warning = ""
        self._syn_recv = SynRecvWatch()
        # Insights (view 6, the panel and the alerts) follow the same diffs as the table: no second scan.
        self.groups = GroupCounter(None if self.filter.is_empty else self.filter.matches)
        self.history = StateHistory()
        self.alerts = AlertEngine(thresholds)
        self._alerts_told: set[tuple[str, str]] = set()
        self._insights_pending: SnapshotDiff | None = None
        # Per-connection tcp_info (issue 7): collected only while a column or view needs it.
        self.throughput = ThroughputTracker()
        self._initial_columns = list(columns or [])
        self._save_config = save_config
        self._config_file = config_file
        self._notices = list(notices or [])
        self.netns = netns  # the network namespace looked into, as the user named it; "" for this one
        self._total_counts: Counter[str] = Counter()
        self._pending_snapshot: Snapshot | None = None
        self._received_at = 0.0  # wall clock when the current snapshot arrived
        # Held directly: `query_one` searches the active screen, which is a modal while details are open.
        self.counters = StateCounters(id="counters")
        self.table = ConnectionTable(id="connections", flash_seconds=flash_seconds)
        self.filter_bar = FilterBar(id="filter-bar")
        self.status_bar = StatusBar(id="status")
        self.traffic = TrafficPanel(id="traffic")
        self.interfaces_view = InterfacesView(id="interfaces-view")
        self.routes_view = RoutesView(id="routes-view")
        self.statistics_view = StatisticsView(id="statistics-view")
        self.multicast_view = MulticastView(id="multicast-view")
        self.top_view = TopView(self.groups, self.history, id="top-view")
        self.top_panel = TopPanel(id="top-panel")
        self.alert_bar = AlertBar(id="alerts")
        self.is_replay: bool = getattr(self.source, "is_replay", False)
        if views is None:
            views = RecordedViews(self.source) if isinstance(self.source, ReplaySource) else SystemViews()
        self.views: ViewSource = views
        # A version-1 recording holds sockets only: then views 2-5 are hidden rather than showing this machine.
        self.views_recorded = not isinstance(views, RecordedViews) or views.available
        self.notices = NoticeBoard()
        self._views_busy = False
        self._views_again = False

    # ----------------------------------------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield self.alert_bar
        with TabbedContent(id="views", initial="tab-connections"):
            with TabPane("1 Connections", id="tab-connections"):
                yield self.counters
                yield self.traffic
                yield self.top_panel
                yield self.table
                yield self.filter_bar
                yield self.status_bar
            with TabPane("2 Interfaces", id="tab-interfaces"):
                yield self.interfaces_view
            with TabPane("3 Routes", id="tab-routes"):
                yield self.routes_view
            with TabPane("4 Statistics", id="tab-statistics"):
                yield self.statistics_view
            with TabPane("5 Multicast", id="tab-multicast"):
                yield self.multicast_view
            with TabPane("6 Top", id="tab-top"):
                yield self.top_view
        yield Footer()

    def on_mount(self) -> None:
        self._apply_keymap()
        self.table.focus()
        if self._initial_columns:
            self._show_metric_columns(self._initial_columns)
        for notice in self._notices:
            self._warn_once(notice, severity="warning")
        if not self.filter.is_empty:
            self.table.set_filter(self.filter.matches)
        self.set_interval(0.5, self._tick_highlights)
        self._consume_snapshots()
        if self.is_replay:
            if not self.views_recorded:
                # The machine's live interfaces and routes would mislead beside a recording's sockets.
                tabs = self.query_one(TabbedContent)
                for tab in LIVE_VIEW_TABS:
                    tabs.hide_tab(tab)
                self.traffic.display = False
        else:
            self.set_interval(self.source.interval, self._poll_views)
            self._poll_views()

    # ----------------------------------------------------------------------------------------- live data

    @work(exclusive=True, group="collect")
    async def _consume_snapshots(self) -> None:
        async for update in self.source.stream():
            if isinstance(update, CollectionFailure):
                self._warn_once(update.message, severity="error")
                continue
            self.apply_diff(update)

    def apply_diff(self, diff: SnapshotDiff) -> None:
        if self.paused and self.snapshot is not None:
            # Paused: what is on screen stays; the newest snapshot is kept to reload from on resume (the
            # collector keeps first-seen times, so ages stay right).
            self._pending_snapshot = diff.snapshot
            return
        self.snapshot = diff.snapshot
        self._received_at = time.time()
        self.refresh_count += 1
        for warning in diff.snapshot.warnings:
            self._warn_once(warning)
        if diff.snapshot.owners_incomplete:
            self._standing_warning = "some owners unknown"
        self._total_counts = update_counts(self._total_counts, diff)
        syn_recv = self._total_counts["SYN_RECV"]
        if diff.first:
            self._syn_recv.reset(syn_recv)
        else:
            self._syn_recv.update(syn_recv)
        self.table.apply_diff(diff)
        if self.is_replay and self.views_recorded:
            self._poll_views()  # the recorded views follow play, step and seek
        if self._tcp_wanted():
            self.throughput.update(diff.snapshot)
            self.table.metrics_changed()
        self.history.record(diff.snapshot.taken_at, self._total_counts)
        self._show_counts()
        if diff.first and len(diff.added) > FIRST_INSIGHTS_LATER:
            # A big first load: the table is what the user waits for. Grouping 100,000 sockets takes a few
            # hundred ms; it runs once the table is on screen (and before the next diff is applied).
            self._insights_pending = diff
            self.call_after_refresh(self._catch_up_insights)
            return
        self._catch_up_insights()
        self._feed_insights(diff)

    def _catch_up_insights(self) -> None:
        pending, self._insights_pending = self._insights_pending, None
        if pending is not None:
            self._feed_insights(pending)

    def _feed_insights(self, diff: SnapshotDiff) -> None:
        self.groups.apply_diff(diff)
        self._show_alerts(self.alerts.update(diff))
        self._show_insights()

    def _show_alerts(self, alerts: list[Alert]) -> None:
        self.alert_bar.show_alerts(alerts)
        # Told once when it starts (one per leaking process, per busy host ...); the strip shows it meanwhile.
        raised = {(alert.kind, alert.filter_text) for alert in alerts}
        for alert in alerts:
            if (alert.kind, alert.filter_text) not in self._alerts_told:
                self.notify(f"{alert.title}\n{alert.detail}", severity="error" if alert.severity == "error"
                            else "warning", timeout=10, markup=False)
        self._alerts_told = raised

    def _show_insights(self) -> None:
        if self.active_view == "connections":
            groups = self.groups
            self.top_panel.show_groups([
                ("Remote hosts", groups.groups("remote_ip", limit=6)),
                ("Local ports", groups.groups("local_port", limit=6)),
                ("Programs", groups.groups("process", limit=6)),
            ])
        elif self.active_view == "top" and self.snapshot is not None:
            top = self.top_view
            if not top.is_rate:
                top.refresh_groups(self.snapshot.taken_at, self.filter.text)
                return
            snapshot = self.snapshot
            if not self.filter.is_empty:  # only while shown, and only over the sockets with tcp_info
                matches, sockets = self.filter.matches, snapshot.sockets
                shown = {key: sock for key in snapshot.tcp_info if (sock := sockets.get(key)) and matches(sock)}
                snapshot = Snapshot(snapshot.taken_at, shown, tcp_info=snapshot.tcp_info)
            rate_groups = (self.throughput.by_process(snapshot) if top.grouping == "process_rate"
                           else self.throughput.by_remote_host(snapshot))
            note = self._tcp_info_note() or ("" if snapshot.tcp_info else "no tcp_info yet: it is read from the "
                                             "next refresh on (never when sockets are read from /proc)")
            top.show_rate_groups(rate_groups, snapshot.taken_at, self.filter.text, note)

    def _show_counts(self) -> None:
        table = self.table
        self.counters.show_counts(
            table.filtered_counts, self._total_counts, not self.filter.is_empty, self._syn_recv.alert
        )
        snapshot = self.snapshot
        self.status_bar.show_status(Status(
            shown=sum(table.filtered_counts.values()),
            total=len(snapshot.sockets) if snapshot else 0,
            filter_text=self.filter.text,
            sort_label=table.sort_label,
            collect_ms=float(rounded_ms(snapshot.collect_seconds * 1000)) if snapshot else 0.0,
            interval=self.source.interval,
            paused=self.paused,
            names=self._resolver is not None,
            warning=self._source_state() or self._standing_warning,
            late_seconds=self._late_seconds(),
        ))

    def _late_seconds(self) -> int:
        """Whole seconds since the last refresh arrived, once that is well past the interval; else 0."""
        if self.snapshot is None or self.is_replay or self.paused:
            return 0
        age = time.time() - self._received_at
        return int(age) if age > 2 * self.source.interval + 2 else 0

    def _source_state(self) -> str:
        """REPLAY, the namespace looked into, REC: for the status line."""
        source = self.source
        if isinstance(source, ReplaySource):
            return f"REPLAY {source.describe()}"
        parts = [f"netns {self.netns}"] if self.netns else []
        if isinstance(source, RecordingTee) and source.recording and source.writer is not None:
            parts.append(f"● REC {Path(source.writer.path).name}")
        return "  ".join(parts)

    def _tick_highlights(self) -> None:
        if self.is_replay or self._late_seconds():
            self._show_counts()  # the replay position and state, or how late the data is
        if self.snapshot is not None:
            # Snapshot time plus what has elapsed since it arrived: the same clock for live and recorded data.
            self.table.expire_highlights(self.snapshot.taken_at + time.time() - self._received_at)
        if self._resolver is not None and self._resolver.take_updates():
            self.table.repaint_all()

    def binding_ids(self) -> set[str]:
        """The ids of every binding the App and its widgets declare: what `[keys]` may remap."""
        ids: set[str] = set()
        for node in (self, *self.walk_children(with_self=False)):
            for cls in type(node).__mro__:
                ids.update(binding.id for binding in vars(cls).get("BINDINGS", ())
                           if isinstance(binding, Binding) and binding.id)
        return ids

    def _apply_keymap(self) -> None:
        known = self.binding_ids()
        keymap = {}
        for binding_id, keys in self._keys.items():
            if binding_id in known:
                keymap[binding_id] = keys
            else:
                where = self._key_places.get(binding_id, "the config file")
                self._warn_once(f"{where}: keys.{binding_id} is not a key netscope has (? shows each key's id); "
                                "ignored", severity="warning")
        if keymap:
            self.set_keymap(keymap)

    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information",
        timeout: float | None = None, markup: bool = True,
    ) -> None:
        """Every toast goes through the notice board: a repeat of a live message bumps its count instead of
        stacking another toast (see app/notices.py), and system text in it is escaped line by line."""
        text = "\n".join(printable(line) for line in message.split("\n"))
        decision = self.notices.post(text, severity, self.NOTIFICATION_TIMEOUT if timeout is None else timeout)
        self._show_notice(decision, title, markup)

    def _show_notice(self, decision: Decision, title: str = "", markup: bool = False) -> None:
        for old in decision.take_down:
            if isinstance(old.token, Notification):
                # Textual has no public call to take down one toast; tests/test_notices.py fails if this changes.
                self._unnotify(old.token)
        notice = decision.show
        if notice is not None:
            toast = Notification(notice.text, title, notice.severity,  # type: ignore[arg-type]
                                 max(0.5, notice.until - time.monotonic()), markup=markup)
            notice.token = toast
            self.post_message(Notify(toast))
        if decision.redraw_at is not None:
            self.set_timer(max(0.0, decision.redraw_at - time.monotonic()), self._redraw_notices)

    def _redraw_notices(self) -> None:
        for decision in self.notices.due():
            self._show_notice(decision)

    def _warn_once(self, message: str, severity: str = "information", key: str | None = None) -> None:
        key = key or message
        if key in self._warned:
            return
        self._warned.add(key)
        self.notify(message, severity=severity, timeout=10, markup=False)  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------- the other views

    @property
    def active_view(self) -> str:
        try:
            return self.query_one(TabbedContent).active.removeprefix("tab-")
        except NoMatches:  # data can arrive before the layout exists
            return ""

    def action_show_view(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        self._poll_views()  # show the new view's data now, not an interval from now
        self._show_insights()
        focus = {
            "connections": self.table,
            "interfaces": self.interfaces_view.table,
            "routes": self.routes_view.table,
            "statistics": self.statistics_view.table,
            "multicast": self.multicast_view.table,
            "top": self.top_view.active_table,
        }.get(self.active_view)
        if focus is not None:
            focus.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The connection table's keys do nothing (and leave the footer) while another view is shown; replay
        # controls exist only in a replay, recording only on live data.
        if action in REPLAY_ACTIONS:
            return self.is_replay
        if action == "toggle_recording" and not isinstance(self.source, RecordingTee):
            return False
        if action == "show_view" and self.is_replay and not self.views_recorded:
            return parameters in (("connections",), ("top",))
        # (App.is_mounted is a method, so it was always true here: active_view is "" until the tabs exist.)
        return not (action in CONNECTION_ACTIONS and self.active_view not in ("", "connections"))

    @work(group="views")
    async def _poll_views(self) -> None:
        """One read of views 2-5 (see SystemViews.collect for what is read when)."""
        # A read that outlasts the interval (a huge routing table) is left to finish rather than cancelled and
        # restarted, which would never show anything; ticks that come meanwhile are skipped.
        if not self.views_recorded:
            return
        if self._views_busy:
            # In a replay every step must end with its own views shown: read again once this read is done.
            self._views_again = self.is_replay
            return
        tee = self.source if isinstance(self.source, RecordingTee) and self.source.recording else None
        if isinstance(self.views, SystemViews):
            self.views.recording = tee is not None  # routes are then read every few seconds on any view
        self._views_busy = True
        try:
            result = await asyncio.to_thread(self.views.collect, self.active_view)
            if tee is not None:
                problem = await asyncio.to_thread(tee.write_views, result)
                if problem:
                    self._warn_once(problem, severity="error")
        finally:
            self._views_busy = False
        if self._views_again:
            self._views_again = False
            self._poll_views()
        # Tables are filled only while shown (switching to one polls at once): 400 counters a second into a
        # hidden DataTable cost CPU for nothing. The collectors still sample every interval, so rates and history
        # stay true.
        active = self.active_view
        if result.interfaces is not None:
            self.traffic.show_interfaces(result.interfaces.interfaces)
            if active == "interfaces":
                self.interfaces_view.show(result.interfaces)
        if result.routes is not None and active == "routes":
            self.routes_view.show(result.routes)
        if result.statistics is not None:
            self.alerts.update_counters(result.statistics)  # listen queue overflows
            self._show_alerts(self.alerts.active)
            if active == "statistics":
                self.statistics_view.show(result.statistics)
        if result.multicast is not None and active == "multicast":
            self.multicast_view.show(result.multicast)
        for warning in result.warnings:
            self._warn_once(warning, severity="warning")

    # -------------------------------------------------------------------------------------------- filters

    def action_open_filter(self) -> None:
        if self.active_view == "statistics":
            self.statistics_view.action_focus_filter()
        elif self.active_view == "connections":
            self.filter_bar.open(self.filter.text)

    def on_filter_bar_submitted(self, event: FilterBar.Submitted) -> None:
        bar = self.filter_bar
        try:
            new_filter = parse_filter(event.text)
        except FilterError as error:
            bar.show_error(f"{error}  (the previous filter stays: {self.filter.text or 'none'})")
            return
        bar.close()
        self.apply_filter(new_filter)
        self.table.focus()

    def on_filter_bar_cleared(self, event: FilterBar.Cleared) -> None:
        self.filter_bar.close()
        self.apply_filter(parse_filter(""))
        self.table.focus()

    def action_clear_filter(self) -> None:
        if not self.filter.is_empty:
            self.apply_filter(parse_filter(""))

    def apply_filter(self, new_filter: Filter) -> None:
        self.filter = new_filter
        matches = None if new_filter.is_empty else new_filter.matches
        self.table.set_filter(matches)
        self.groups.set_filter(matches, self.snapshot)
        self._show_counts()
        self._show_insights()

    def on_top_view_group_chosen(self, event: TopView.GroupChosen) -> None:
        # The view counted the sockets the filter shows: narrow within it, not beside it.
        current = self.filter.text.strip()
        self._filter_and_show(f"{current} {event.filter_text}" if current else event.filter_text)

    def on_top_view_grouping_changed(self, event: TopView.GroupingChanged) -> None:
        self._sync_tcp_info()
        self._show_insights()

    def action_show_alert(self) -> None:
        alert = next((alert for alert in self.alerts.active if alert.filter_text), None)
        if alert is None:
            self.notify("No alert is active.", timeout=3)
            return
        self._filter_and_show(alert.filter_text)

    def _filter_and_show(self, text: str) -> None:
        try:
            new_filter = parse_filter(text)
        except FilterError as error:  # a group key from the system that the filter language cannot say
            self.notify(f"Cannot filter to that: {error}", severity="error", markup=False)
            return
        self.apply_filter(new_filter)
        self.action_show_view("connections")

    def action_filter_selected(self, what: str) -> None:
        sock = self.table.selected_socket
        if sock is None:
            return
        if what == "port":
            text = f"lport:{sock.local_port}"
        elif what == "state":
            text = f"state:{sock.state.lower()}"
        elif sock.pid is None:
            self.notify("This socket has no known owning process.", severity="warning")
            return
        else:
            text = f"pid:{sock.pid}"
        self.apply_filter(parse_filter(text))

    # ------------------------------------------------------------------------------------ sorting, names

    def action_cycle_sort(self, step: int) -> None:
        self.table.cycle_sort(step)

    def action_reverse_sort(self) -> None:
        self.table.sort_reverse = not self.table.sort_reverse

    def on_connection_table_sort_changed(self, event: ConnectionTable.SortChanged) -> None:
        self._show_counts()

    def action_toggle_names(self) -> None:
        if self._resolver is None:
            resolver = self._resolver = NameResolver()

            def named(ip: str, port: int, proto: str) -> str:
                host = resolver.host(ip) or (f"[{ip}]" if ":" in ip else ip)
                service = (resolver.service(port, proto) if port else "*") or str(port)
                return f"{host}:{service}"

            self.table.set_endpoint_formatter(named)
        else:
            self._resolver.shutdown()
            self._resolver = None
            self.table.set_endpoint_formatter(None)
        self._show_counts()

    def action_toggle_pause(self) -> None:
        if isinstance(self.source, ReplaySource):
            self.source.toggle()
            self._show_counts()
            return
        if self.active_view != "connections":
            self.notify("Space pauses the connection table (view 1); this view keeps its live history and rates, "
                        "so it is not paused. Press 1, then space.", timeout=4)
            return
        self.paused = not self.paused
        pending = self._pending_snapshot
        if not self.paused and pending is not None:
            # The diffs skipped while paused are gone; reload from the newest snapshot without highlights.
            self._pending_snapshot = None
            self.apply_diff(SnapshotDiff(pending, added=list(pending.sockets.values()), changed=[], removed=[],
                                         first=True))
        self._show_counts()

    # ------------------------------------------------------------------------------ export, record, replay

    async def action_export(self, fmt: str) -> None:
        view = self.active_view
        path = Path.cwd() / time.strftime(f"netscope-export-{view}-%Y%m%d-%H%M%S.{fmt}")
        if view == "connections":
            rows = [sock for sock in self.table.rows if not self.table.is_closed(sock)]
            job = functools.partial(write_export, path, rows, fmt)
        else:
            tables = {"interfaces": self.interfaces_view.table, "routes": self.routes_view.table,
                      "statistics": self.statistics_view.table, "multicast": self.multicast_view.table,
                      "top": self.top_view.active_table}
            labels, cells = tables[view].export_rows()
            job = functools.partial(write_table_export, path, labels, cells, fmt)
        try:
            count = await asyncio.to_thread(job)
        except OSError as error:
            self.notify(f"Export failed: {error}. Start netscope in a writable directory.", severity="error",
                        markup=False)
            return
        scope = f" (filter: {self.filter.text or 'none'})" if view in ("connections", "top") else ""
        self.notify(f"Wrote {count} rows of {view}{scope} to {path}", markup=False)

    def action_toggle_recording(self) -> None:
        if not isinstance(self.source, RecordingTee):
            return
        if self.source.recording:
            writer = self.source.stop()
            if writer is not None:
                self.notify(f"Recording stopped: {writer.frames} refreshes in {writer.path}", markup=False)
        else:
            path = Path.cwd() / time.strftime("netscope-%Y%m%d-%H%M%S.nsrec")
            try:
                self.source.start(RecordingWriter(path, interval=self.source.interval))
            except OSError as error:
                self.notify(f"Cannot record to {path}: {error}", severity="error", markup=False)
                return
            self.notify(f"Recording every refresh to {path}; R again stops it.", markup=False)
        self._show_counts()

    def action_replay_step(self, frames: int) -> None:
        if isinstance(self.source, ReplaySource):
            self.source.pause()
            self.source.step(frames)

    def action_replay_jump(self, seconds: int) -> None:
        source = self.source
        if isinstance(source, ReplaySource) and source.current_time is not None:
            source.seek_time(source.current_time + seconds)

    def action_replay_speed(self, factor: float) -> None:
        if isinstance(self.source, ReplaySource):
            self.source.set_speed(min(64.0, max(1 / 16, self.source.speed * factor)))
            self._show_counts()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(key_help(self, self.screen.active_bindings)))

    # ------------------------------------------------------------------------- tcp_info columns, close

    def metrics_of(self, key: SocketKey) -> tuple[TcpInfo | None, Throughput | None]:
        snapshot = self.snapshot
        info = snapshot.tcp_info.get(key) if snapshot is not None else None
        return info, self.throughput.get(key) if info is not None else None

    def tcp_details(self, key: SocketKey) -> TcpDetails | None:
        """For the details screen: None while tcp_info is not collected."""
        if not self._tcp_columns_shown():
            return None
        info, rate = self.metrics_of(key)
        return info, rate, self.throughput.history(key)

    def _tcp_info_note(self) -> str:
        """Why the tcp_info columns would show only "-", if they would."""
        if self.is_replay:
            return "A recording holds no tcp_info: these columns show '-' in a replay."
        return ""

    def _show_metric_columns(self, keys: list[str]) -> None:
        self.table.set_metric_columns(keys)
        self.table.set_metrics(self.metrics_of if keys else None)
        self._sync_tcp_info()
        self._show_counts()

    def _tcp_wanted(self) -> bool:
        """tcp_info costs about 3 µs a socket per refresh: read while a column or a bandwidth view shows it."""
        return self._tcp_columns_shown() or self.top_view.is_rate

    def _tcp_columns_shown(self) -> bool:
        return any(key in METRIC_COLUMNS for key in self.table.metric_columns)

    def _sync_tcp_info(self) -> None:
        collector = getattr(self.source, "source", self.source)  # through the RecordingTee
        set_tcp_info = getattr(collector, "set_tcp_info", None)
        if set_tcp_info is not None:
            set_tcp_info(self._tcp_wanted())

    def action_choose_columns(self) -> None:
        async def chosen(keys: list[str] | None) -> None:
            if keys is None:
                return
            self._show_metric_columns(keys)
            if not self._save_config:
                return
            try:
                await asyncio.to_thread(save_columns, keys, self._config_file)
            except OSError as error:
                self.notify(f"Columns changed but not remembered: {error}", severity="warning", markup=False)

        self.push_screen(ColumnsScreen(self.table.metric_columns, self._tcp_info_note()), chosen)

    async def action_close_connection(self) -> None:
        if self.is_replay:
            self.notify("This is a recording: its connections are not these, and nothing is closed from it.",
                        severity="warning")
            return
        sock = self.table.selected_socket
        if sock is None:
            return
        if self.table.is_closed(sock):
            self.notify("That connection is already closed.", severity="warning")
            return
        refusal = close_refusal(sock)
        if self.netns:
            # SOCK_DESTROY would be asked of this process's namespace, not the one shown.
            refusal = "Closing one connection works only in netscope's own network namespace (no --netns)."
        if refusal:
            self.notify(refusal, severity="warning", markup=False)
            return
        reason = await asyncio.to_thread(destroy_capability)
        if reason:
            self.notify(reason, severity="error", markup=False)
            return

        async def answered(yes: bool | None) -> None:
            if not yes:
                self.notify("Nothing was closed.", timeout=3)
                return
            result = await asyncio.to_thread(destroy_socket, sock)
            self.notify(result.message, severity="information" if result.ok else "error", markup=False)

        self.push_screen(ConfirmCloseScreen(sock), answered)

    # -------------------------------------------------------------------------------------- details, kill

    def sockets_of(self, pid: int) -> list[Socket]:
        if self.snapshot is None:
            return []
        return [sock for sock in self.snapshot.sockets.values() if sock.pid == pid]

    async def on_connection_table_activated(self, event: ConnectionTable.Activated) -> None:
        sock = event.socket
        if event.control is not self.table:
            return
        sockets = self.sockets_of(sock.pid) if sock.pid is not None else [sock]
        now = self.snapshot.taken_at if self.snapshot else 0
        if self.is_replay:
            # The recorded PID may belong to another process now: show what was recorded, never look it up.
            self.push_screen(DetailsScreen(sock, None, sockets, now, recorded=True))
            return
        details = None if sock.pid is None else await asyncio.to_thread(owner_details, sock)
        self.push_screen(DetailsScreen(sock, details, sockets, now, tcp=self.tcp_details))

    async def action_kill(self, signal_name: str) -> None:
        if self.is_replay:
            self.notify("This is a recording: its processes are not these, and nothing is killed from it.",
                        severity="warning")
            return
        sig = signal.Signals[signal_name]
        sock = self.table.selected_socket
        if sock is None:
            return
        if self.table.is_closed(sock):
            self.notify("That connection has closed: its process may have exited and its PID been reused. Nothing "
                        "is sent from a closed row; select a live one.", severity="warning")
            return
        if sock.pid is None:
            self.notify(f"Nothing to kill: {missing_owner_reason(sock)}.", severity="warning", markup=False)
            return
        refusal = refusal_reason(sock.pid)
        if refusal:
            self.notify(f"Refused: {refusal}", severity="error", markup=False)
            return
        # A fresh look, whatever the age of the row (a paused table, a slow refresh): the process recorded with the
        # socket, by PID and start time, and whether it still holds the socket.
        details, check = await asyncio.to_thread(look_before_kill, sock)
        if check.refusal:
            self.notify(f"Refused: {check.refusal}", severity="error", markup=False)
            return
        if details.error:
            self.notify(details.error, severity="warning", markup=False)
            return
        count = check.socket_count if check.socket_count is not None else len(self.sockets_of(sock.pid))
        note = ""
        if self.paused:
            note = "The table is paused; this process was checked just now and still holds the socket."

        async def answered(yes: bool | None) -> None:
            if not yes:
                self.notify("Nothing was sent.", timeout=3)
                return
            result = await asyncio.to_thread(send_signal, details.pid, sock.pid_start, sig, sock.inode)
            self.notify(result.message, severity="information" if result.ok else "error", markup=False)

        self.push_screen(ConfirmKillScreen(details, count, sig, note), answered)

    async def on_unmount(self) -> None:
        close_views = getattr(self.views, "close", None)
        if close_views is not None:
            close_views()
        if self._resolver is not None:
            self._resolver.shutdown()
        await self.source.aclose()

