"""The netscope App: the tabs, the keys that work in every view, and the routing of each refresh from the source,
through the session, to the view on screen. What is kept about the data lives in the session
(collectors/session/live.py); each view owns its table and its keys; toasts and keymaps are mixed in from
toasts.py and keymap.py; views 2-5 are read by views_reader.py. Its length is mostly the global keys (each with
its help text) and the replay, record and export actions those keys start."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

import netscope.styles
from netscope.app.keymap import apply_keymap
from netscope.app.printed.export import write_export, write_table_export
from netscope.app.screens.help import HelpScreen, key_help
from netscope.app.toasts import CoalescedToasts
from netscope.app.views.connections import ConnectionsView
from netscope.app.views.interfaces import InterfacesView
from netscope.app.views.multicast import MulticastView
from netscope.app.views.nat import NatView
from netscope.app.views.routes import RoutesView
from netscope.app.views.statistics import StatisticsView
from netscope.app.views.top import TopView
from netscope.app.views_reader import ViewsReader
from netscope.collectors.connections import CollectionFailure
from netscope.collectors.conntrack import link_local_sockets
from netscope.collectors.gc_pause import freeze_first_read, gc_paused
from netscope.collectors.model import FirstScreen, SnapshotDiff, first_screen_rows
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.recording.tee import RecordingTee
from netscope.collectors.session.alerts import Alert, Thresholds
from netscope.collectors.session.filters import Filter, FilterError, parse_filter
from netscope.collectors.session.live import LiveSession, Refresh
from netscope.collectors.session.metrics_feed import MetricsFeed
from netscope.collectors.sources import SnapshotSource
from netscope.collectors.view_data import SystemViews, ViewSource
from netscope.widgets.alert_bar import AlertBar
from netscope.widgets.connection_table import ConnectionTable
from netscope.widgets.key_footer import KeyFooter
from netscope.widgets.status_bar import StatusBar

STYLES = Path(netscope.styles.__file__).parent / "netscope.tcss"
VIEWS = ("connections", "interfaces", "routes", "statistics", "multicast", "top", "nat")  # keys 1 to 7
LIVE_VIEW_TABS = ("tab-interfaces", "tab-routes", "tab-statistics", "tab-multicast", "tab-nat")
REPLAY_ACTIONS = frozenset({"replay_step", "replay_jump", "replay_speed"})


def view_title(view: str) -> str:
    return "NAT" if view == "nat" else view.capitalize()


class NetscopeApp(CoalescedToasts):
    TITLE = "netscope"
    CSS_PATH = STYLES
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]  # the Screen's class, for the panels that fit
    # The keys of every view, each once, with an id (for `[keys]` in the config file) and a tooltip: the help
    # screen (`?`) is built from the active bindings. A view's own keys are on the view (ConnectionsView, TopView).
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit", tooltip="quit"),
        *(Binding(str(number), f"show_view('{view}')", view_title(view), show=False, id=f"view_{view}",
                  tooltip="views: Connections, Interfaces (netstat -i), Routes (-r), Statistics (-s), Multicast "
                  "(-g), Top (who is connected: by remote host, network, local port, process; the last hour), NAT "
                  "(-M: the kernel's tracked flows, both tuples)")
          for number, view in enumerate(VIEWS, 1)),
        Binding("a", "show_alert", "Alert", show=False, id="show_alert",
                tooltip="show the sockets behind the first alert (a flood's sources, a leaking process)"),
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
        low_bandwidth: bool = False,
        metrics: MetricsFeed | None = None,
        unix_source: Callable[[], SnapshotSource] | None = None,
    ) -> None:
        """`columns`, `save_config` and `config_file`: the tcp_info columns to start with, and whether and where
        (None: the usual place) a change of them is remembered; `notices`: problems to tell once started;
        `keys`: the config file's [keys] (binding id -> keys), `key_places` where each was written; `metrics`: the
        Prometheus endpoint's feed, given every update the source sends (paused or not); `unix_source` makes the
        source of the unix sockets `u` shows (by default, with no `source`, a worker like the default source's;
        else none unless given)."""
        super().__init__()
        # Live data passes through a RecordingTee so that R can start recording at any time.
        if source is None and unix_source is None:
            unix_source = functools.partial(ProcessCollector, interval=interval, unix=True)
        self.source: SnapshotSource = source or RecordingTee(ProcessCollector(
            interval=interval, first_screen=first_screen_rows(filter_text)))
        self.session = LiveSession(filter_text, thresholds)  # a bad filter raises FilterError: the CLI checked
        self.metrics = metrics
        self._initial_columns = list(columns or [])
        self._startup_notices = list(notices or [])
        self._keys, self._key_places = dict(keys or {}), dict(key_places or {})
        replay = self.source.replay
        self.views: ViewSource = views or (replay.recorded_views() if replay is not None else SystemViews())
        self.views_recorded = self.views.available  # a version-1 recording holds sockets only: views 2-5 hidden
        self.views_reader = ViewsReader(self.views, self.source)
        # Held directly: `query_one` searches the active screen, which is a modal while details are open.
        self.connections = ConnectionsView(self.session, self.source, flash_seconds=flash_seconds, netns=netns,
                                           save_config=save_config, config_file=config_file,
                                           low_bandwidth=low_bandwidth, unix_source=unix_source,
                                           id="connections-view")
        self.interfaces_view = InterfacesView(id="interfaces-view")
        self.routes_view = RoutesView(id="routes-view")
        self.statistics_view = StatisticsView(id="statistics-view")
        self.multicast_view = MulticastView(id="multicast-view")
        self.top_view = TopView(self.session.groups, self.session.history, id="top-view")
        self.nat_view = NatView(id="nat-view")
        self.alert_bar = AlertBar(id="alerts")
        self._insights_after_load: Callable[[], None] | None = None  # a big first load's: see _show_refresh

    # The connections view's parts and the session's state, under the names tests and tools use.
    @property
    def table(self) -> ConnectionTable:
        return self.connections.table

    @property
    def status_bar(self) -> StatusBar:
        return self.connections.status_bar

    @property
    def filter(self) -> Filter:
        return self.session.filter

    @property
    def refresh_count(self) -> int:
        return self.session.refresh_count

    @property
    def is_replay(self) -> bool:
        return self.source.replay is not None

    # --- layout

    def compose(self) -> ComposeResult:
        yield self.alert_bar
        with TabbedContent(id="views", initial="tab-connections"):
            for number, (view, widget) in enumerate(zip(VIEWS, self._view_widgets(), strict=True), 1):
                with TabPane(f"{number} {view_title(view)}", id=f"tab-{view}"):
                    # The other views are mounted when first shown (_mount_view): mounted at start, unseen, the
                    # six of them were 4-5 MB of the UI's memory (measured) and time before the first table.
                    if view == "connections":
                        yield widget
        yield KeyFooter()

    async def _mount_view(self, pane: TabPane) -> None:
        """Mount the view of `pane` if it is not yet: the first time it is shown."""
        if pane.children:
            return
        view = (pane.id or "").removeprefix("tab-")
        for name, widget in zip(VIEWS, self._view_widgets(), strict=True):
            if name == view:
                await pane.mount(widget)

    def _view_widgets(self) -> tuple[Widget, ...]:
        return (self.connections, self.interfaces_view, self.routes_view, self.statistics_view,
                self.multicast_view, self.top_view, self.nat_view)

    def on_mount(self) -> None:
        for problem in apply_keymap(self, self._keys, self._key_places, self._view_widgets()):
            self.tell(self.session.warn_once(problem, "warning"))
        self.table.focus()
        if self._initial_columns:
            self.connections.show_metric_columns(self._initial_columns)
        for notice in self._startup_notices:
            self.tell(self.session.warn_once(notice, "warning"))
        self.set_interval(0.5, self.connections.tick)
        self._consume_snapshots()
        if self.is_replay:
            if not self.views_recorded:
                # The machine's live interfaces and routes would mislead beside a recording's sockets.
                tabs = self.query_one(TabbedContent)
                for tab in LIVE_VIEW_TABS:
                    tabs.hide_tab(tab)
                self.connections.traffic.display = False
        else:
            self.set_interval(self.source.interval, self._poll_views)
            self._poll_views()

    # --- refreshes: source -> session -> views

    @work(exclusive=True, group="collect")
    async def _consume_snapshots(self) -> None:
        async for update in self.source.stream():
            if isinstance(update, FirstScreen):
                self.connections.show_first_screen(update)
                continue
            if self.metrics is not None:
                self.metrics.take(update)  # never blocks: the feed counts in its own thread
                for problem in self.metrics.take_problems():
                    self.tell(self.session.warn_once(problem, "warning"))
            self.apply_diff(update)

    def apply_diff(self, diff: SnapshotDiff | CollectionFailure) -> None:
        """One refresh, as if from the source (benchmarks feed it directly)."""
        # A first refresh makes several objects per socket (rows, sort keys, groups): see gc_pause.
        with gc_paused():
            refresh = self.session.take(diff)
            self._show_refresh(refresh)
            if refresh.diff is not None and refresh.diff.first:
                freeze_first_read(len(refresh.diff.snapshot.sockets))

    def _show_refresh(self, refresh: Refresh) -> None:
        self.tell(refresh.tell)
        if refresh.diff is not None or refresh.tell:
            self.connections.apply(refresh)
        if refresh.diff is not None and self.is_replay and self.views_recorded:
            self._poll_views()  # the recorded views follow play, step and seek
        if refresh.insights_later:
            if refresh.diff is not None:
                # A big first load: its groups and alerts once its rows are made (first_load.py), not in turns
                # with them (with the rows' runs as machine ints, the UI's RSS went 80 -> 76 MiB at 50,000
                # connections). A refresh meanwhile waits for both (LiveSession.take, ConnectionRows.apply_diff).
                self._catch_up_after_rows()
            else:  # a part of them done: the next after a turn of the event loop (keys are answered meanwhile;
                # call_later would run it from the same turn of the App's queue)
                self.set_timer(0.001, functools.partial(self._show_refresh_of, self.session.catch_up))
        if refresh.alerts_changed:
            self._show_alerts(refresh.raised)
            self._show_insights()

    def on_connection_table_loaded(self) -> None:
        catch_up, self._insights_after_load = self._insights_after_load, None
        if catch_up is not None:
            self.call_after_refresh(catch_up)

    def _show_refresh_of(self, make: Callable[[], Refresh]) -> None:
        self._show_refresh(make())

    def _show_alerts(self, raised: list[Alert]) -> None:
        self.alert_bar.show_alerts(self.session.alerts.active)
        for alert in raised:  # told once when it starts, briefly: the strip above the table shows it meanwhile
            self.notify(f"{alert.title}\n{alert.detail}", severity="error" if alert.severity == "error"
                        else "warning", timeout=5, markup=False)

    def _show_insights(self) -> None:
        if self.active_view == "connections":
            self.connections.show_groups()
        elif self.active_view == "top":
            self.top_view.show_session(self.session, self.connections.tcp_info_note())

    def _sync_tcp_info(self) -> None:
        self.session.rate_view = self.top_view.is_rate
        self.source.set_tcp_info(self.session.tcp_wanted)

    def on_connections_view_tcp_need_changed(self, event: ConnectionsView.TcpNeedChanged) -> None:
        self._sync_tcp_info()

    def on_connections_view_unix_replayed(self, event: ConnectionsView.UnixReplayed) -> None:
        if self.views_recorded:
            self._poll_views()
        else:  # a version-1 recording: sockets only
            self.connections.show_recorded_unix(None)

    def on_connections_view_tell(self, event: ConnectionsView.Tell) -> None:
        self.tell(event.messages)

    def on_connections_view_filter_changed(self, event: ConnectionsView.FilterChanged) -> None:
        self._show_insights()
        if event.insights_later:
            self._catch_up_after_rows()

    def _catch_up_after_rows(self) -> None:
        """Count the insights left (LiveSession.catch_up), a part a turn, once the table's rows being made in parts
        show: the rows sooner, and the two's transient objects not alive at once."""
        catch_up = functools.partial(self._show_refresh_of, self.session.catch_up)
        if self.table.loading_rows:
            self._insights_after_load = catch_up
        else:
            self.call_after_refresh(catch_up)

    @work(group="views")
    async def _poll_views(self) -> None:
        """One read of views 2-5 (see SystemViews.collect for what is read when), shown where it is shown.

        Tables are filled only while shown (switching to one polls at once): 400 counters a second into a hidden
        DataTable cost CPU for nothing. The collectors still sample every interval, so rates and history stay
        true."""
        if not self.views_recorded:
            return
        result, problems = await self.views_reader.read(self.active_view, self.connections.unix_rows)
        for problem, severity in problems:
            self.tell(self.session.warn_once(problem, severity))
        if self.views_reader.owed():
            self._poll_views()
        if result is None:
            return
        active = self.active_view
        if result.interfaces is not None:
            self.connections.show_interfaces(result.interfaces.interfaces)
            if active == "interfaces":
                self.interfaces_view.show(result.interfaces)
        if result.routes is not None and active == "routes":
            self.routes_view.show(result.routes)
        if result.statistics is not None:
            self._show_refresh(self.session.counters_read(result.statistics))  # listen queue overflows
            if active == "statistics":
                self.statistics_view.show(result.statistics)
        if result.multicast is not None and active == "multicast":
            self.multicast_view.show(result.multicast)
        if result.conntrack is not None and active == "nat":
            snapshot = self.session.snapshot
            if snapshot is not None and not self.is_replay:  # which local socket and program each flow is
                sockets = list(snapshot.sockets.values())
                await asyncio.to_thread(link_local_sockets, result.conntrack.flows, sockets)
            self.nat_view.show(result.conntrack, recorded=self.is_replay)
        elif active == "nat" and self.is_replay:
            self.nat_view.show_not_recorded()
        if self.is_replay and self.connections.showing_unix:
            self.connections.show_recorded_unix(result.unix)

    # --- views

    @property
    def active_view(self) -> str:
        try:
            return self.query_one(TabbedContent).active.removeprefix("tab-")
        except NoMatches:  # data can arrive before the layout exists
            return ""

    async def action_show_view(self, name: str) -> None:
        tabs = self.query_one(TabbedContent)
        await self._mount_view(tabs.get_pane(f"tab-{name}"))  # before it shows, so that its table takes the focus
        tabs.active = f"tab-{name}"

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not event.pane.children:  # a tab clicked, first: its view mounts now
            # Else the widget focused in the pane just hidden would be given the focus back meanwhile, and with it
            # its pane (TabbedContent follows the focus).
            self.set_focus(None)
            await self._mount_view(event.pane)
        self.refresh_bindings()
        self._poll_views()  # show the new view's data now, not an interval from now
        self._show_insights()
        focus = {
            "connections": self.table, "interfaces": self.interfaces_view.table, "routes": self.routes_view.table,
            "statistics": self.statistics_view.table, "multicast": self.multicast_view.table,
            "top": self.top_view.active_table, "nat": self.nat_view.table,
        }.get(self.active_view)
        if focus is not None:
            focus.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Replay controls exist only in a replay, recording only on data that can be recorded.
        if action in REPLAY_ACTIONS:
            return self.is_replay
        if action == "toggle_recording":
            return self.source.recorder is not None
        if action == "show_view" and self.is_replay and not self.views_recorded:
            return parameters in (("connections",), ("top",))
        return True

    def on_top_view_group_chosen(self, event: TopView.GroupChosen) -> None:
        # The view counted the sockets the filter shows: narrow within it, not beside it.
        current = self.session.filter.text.strip()
        self._filter_and_show(f"{current} {event.filter_text}" if current else event.filter_text)

    def on_top_view_grouping_changed(self, event: TopView.GroupingChanged) -> None:
        self._sync_tcp_info()
        self._show_insights()

    def action_show_alert(self) -> None:
        alert = next((alert for alert in self.session.alerts.active if alert.filter_text), None)
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
        self.connections.apply_filter(new_filter)
        self.query_one(TabbedContent).active = "tab-connections"  # mounted from the start

    # --- pause, export, record, replay, help

    def action_toggle_pause(self) -> None:
        replay = self.source.replay
        if replay is not None:
            replay.toggle()
        elif self.active_view != "connections":
            self.notify("Space pauses the connection table (view 1); this view keeps its live history and rates, "
                        "so it is not paused. Press 1, then space.", timeout=4)
            return
        elif self.connections.showing_unix:
            self.connections.toggle_unix_pause()
        else:
            reload = self.session.toggle_pause()
            if reload is not None:
                self.apply_diff(reload)
        self.connections.show_counts()

    async def action_export(self, fmt: str) -> None:
        view = self.active_view
        path = Path.cwd() / time.strftime(f"netscope-export-{view}-%Y%m%d-%H%M%S.{fmt}")
        if view == "connections":
            job = functools.partial(write_export, path, self.connections.export_rows(), fmt)
        else:
            tables = {"interfaces": self.interfaces_view.table, "routes": self.routes_view.table,
                      "statistics": self.statistics_view.table, "multicast": self.multicast_view.table,
                      "top": self.top_view.active_table, "nat": self.nat_view.table}
            labels, cells = tables[view].export_rows()
            job = functools.partial(write_table_export, path, labels, cells, fmt)
        try:
            count = await asyncio.to_thread(job)
        except OSError as error:
            self.notify(f"Export failed: {error}. Start netscope in a writable directory.", severity="error",
                        markup=False)
            return
        scope = f" (filter: {self.session.filter.text or 'none'})" if view in ("connections", "top") else ""
        if view == "nat":
            scope = f" (filter: {self.nat_view.model.filter.text or 'none'})"
        self.notify(f"Wrote {count} rows of {view}{scope} to {path}", markup=False)

    def action_toggle_recording(self) -> None:
        recorder = self.source.recorder
        if recorder is None:
            return
        if recorder.recording:
            writer = recorder.stop()
            if writer is not None:
                self.notify(f"Recording stopped: {writer.frames} refreshes in {writer.path}", markup=False)
        else:
            from netscope.collectors.recording.writer import RecordingWriter  # loaded only to record

            path = Path.cwd() / time.strftime("netscope-%Y%m%d-%H%M%S.nsrec")
            try:
                recorder.start(RecordingWriter(path, interval=self.source.interval))
            except OSError as error:
                self.notify(f"Cannot record to {path}: {error}", severity="error", markup=False)
                return
            self.notify(f"Recording every refresh to {path}; R again stops it.", markup=False)
            self._poll_views()  # views 2-5 from the start too, not an interval later
        self.connections.show_counts()

    def action_replay_step(self, frames: int) -> None:
        if (replay := self.source.replay) is not None:
            replay.pause()
            replay.step(frames)

    def action_replay_jump(self, seconds: int) -> None:
        replay = self.source.replay
        if replay is not None and replay.current_time is not None:
            replay.seek_time(replay.current_time + seconds)

    def action_replay_speed(self, factor: float) -> None:
        if (replay := self.source.replay) is not None:
            replay.set_speed(min(64.0, max(1 / 16, replay.speed * factor)))
            self.connections.show_counts()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(key_help(self, self.screen.active_bindings)))

    async def on_unmount(self) -> None:
        self.views.close()
        await self.source.aclose()
