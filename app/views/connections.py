"""View 1, Connections: the live table with its counters, panels, filter bar and status line, its keys, and the
flows that act on a row (details, kill, close, columns). The data and what is made of it live in the session.

Its length is view 1's keys, each with the short flow it starts (filter, sort, names, columns, low bandwidth, the
unix sockets' protocol choice, details, kill, close): they all act on the one table and the session it shows, and
each is a few lines; the logic they call (filters, sessions, signals, SOCK_DESTROY) lives in collectors/."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message

from netscope.app.screens.columns import ColumnsScreen
from netscope.app.screens.confirm_close import ConfirmCloseScreen
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.app.screens.details import DetailsScreen, TcpDetails
from netscope.collectors.connections import missing_owner_reason
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.interfaces import Interface
from netscope.collectors.model import (
    COUNTED_STATES,
    UNIX_COUNTED_STATES,
    FirstScreen,
    Snapshot,
    SnapshotDiff,
    Socket,
    SocketKey,
    is_unix,
)
from netscope.collectors.resolver import NameResolver
from netscope.collectors.session.config import save_columns
from netscope.collectors.session.filters import (
    Filter,
    FilterError,
    filter_terms,
    narrowed,
    parse_filter,
    without_last_term,
)
from netscope.collectors.session.folding import FoldedSockets
from netscope.collectors.session.live import LiveSession, Refresh
from netscope.collectors.session.steady import SteadyFigure, SteadyFigures
from netscope.collectors.signals import look_before_kill, owner_details, refusal_reason, send_signal
from netscope.collectors.sock_destroy import close_refusal, destroy_capability, destroy_socket
from netscope.collectors.sources import SnapshotSource
from netscope.collectors.timers import probe_socket
from netscope.collectors.view_data import UnixRows
from netscope.widgets.connection_table import ConnectionTable
from netscope.widgets.filter_bar import FilterBar
from netscope.widgets.formatting import format_endpoint
from netscope.widgets.state_counters import StateCounters
from netscope.widgets.status_bar import Status, StatusBar, rounded_ms
from netscope.widgets.tcp_columns import TIMER_KEY, needs_tcp_info
from netscope.widgets.top_panel import TopPanel
from netscope.widgets.traffic_panel import TrafficPanel

LOW_BANDWIDTH_PAINT = 3.0  # seconds between repaints of the table, counters and status in low-bandwidth mode
SPARKLINE_EVERY = 5.0  # seconds between redraws of the traffic sparklines: their shape, not each second, is news
SORT_TIP = "sort by the next / previous column (or click a column header)"  # s and S share a help row
FOLD_REFUSAL = ("This row stands for {:,} sockets that no process owns (the kernel holds them until they finish "
                "closing). Enter shows them one by one.")
REPLAY_REFUSAL = "This is a recording: its {} are not these, and nothing is {} from it."


class ConnectionsView(Vertical):
    BINDINGS = [
        Binding("slash", "open_filter", "Filter", id="filter",
                tooltip="filter (Enter applies, Escape clears); a bad filter is explained and the old one kept"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter",
                tooltip="clear the filter"),
        Binding("s", "cycle_sort(1)", "Sort", id="sort",
                tooltip=SORT_TIP),
        Binding("S", "cycle_sort(-1)", "Sort back", show=False, id="sort_back",
                tooltip=SORT_TIP),
        Binding("r", "reverse_sort", "Reverse", show=False, id="reverse_sort", tooltip="reverse the sort order"),
        Binding("o", "filter_selected('port')", "This port", id="filter_port",
                tooltip="narrow the filter to the selected row's local port (`:80`; replaces a port term); on a "
                        "unix socket, its path"),
        Binding("t", "filter_selected('state')", "This state", id="filter_state",
                tooltip="narrow the filter to the selected row's state (replaces a state term): o then t on a :80 "
                        "ESTABLISHED row is `:80 established`"),
        Binding("p", "filter_selected('pid')", "This PID", id="filter_pid",
                tooltip="narrow the filter to the selected row's PID (replaces a pid term)"),
        Binding("backspace", "drop_last_term", "Drop term", show=False, id="drop_term",
                tooltip="take the last term off the filter"),
        Binding("n", "toggle_names", "Names", id="names",
                tooltip="toggle host and service names (resolved in the background) and numbers"),
        Binding("k", "kill('SIGTERM')", "Kill", id="kill",
                tooltip="send SIGTERM to the owning process (asks first; never a recycled PID)"),
        Binding("K", "kill('SIGKILL')", "Kill -9", show=False, id="kill_9",
                tooltip="send SIGKILL to the owning process (asks first; never a recycled PID)"),
        Binding("x", "close_connection", "Close conn", id="close_connection",
                tooltip="close just the selected TCP connection (SOCK_DESTROY, like ss -K; asks first; needs "
                        "root)"),
        Binding("b", "toggle_low_bandwidth", "Low bandwidth", show=False, id="low_bandwidth",
                tooltip="low-bandwidth mode for a slow link: no sparklines, no transient colour, the screen "
                        f"repainted every {LOW_BANDWIDTH_PAINT:g} s (the data stays live; keys answer at once)"),
        Binding("u", "toggle_unix", "Unix", show=False, id="unix_sockets",
                tooltip="unix sockets in the table instead of TCP/UDP (type, path, inode, peer, owner; like "
                        "netstat -x), u again for TCP/UDP; read only while shown"),
        Binding("c", "choose_columns", "Columns", show=False, id="columns",
                tooltip="choose extra columns: the owner's container, and from tcp_info bytes, rates, rtt, cwnd "
                        "..."),
    ]

    class FilterChanged(Message):
        """The filter changed: what counts the filter (Top) should be redrawn."""

        def __init__(self, insights_later: bool) -> None:
            super().__init__()
            self.insights_later = insights_later  # the groups are recounted in parts: see LiveSession.set_filter

    class TcpNeedChanged(Message):
        """The tcp_info columns changed: the app tells the source whether to collect tcp_info."""

    class UnixReplayed(Message):
        """`u` in a replay: the recorded unix sockets are wanted now, not an interval from now."""

    class Tell(Message):
        """Warnings from the unix sockets' reads, for the app to tell as it tells the session's."""

        def __init__(self, messages: list[tuple[str, str]]) -> None:
            super().__init__()
            self.messages = messages

    def __init__(self, session: LiveSession, source: SnapshotSource, *, flash_seconds: float = 3.0,
                 netns: str = "", save_config: bool = True, config_file: Path | None = None,
                 low_bandwidth: bool = False, unix_source: Callable[[], SnapshotSource] | None = None,
                 id: str | None = None) -> None:
        """`netns`: the namespace looked into as the user named it ("" for ours); `save_config`, `config_file`:
        whether and where a change of columns is remembered; `low_bandwidth`: start in that mode (`b`);
        `unix_source` makes the source of unix sockets that `u` shows (None: not offered)."""
        super().__init__(id=id)
        self.flash_seconds = flash_seconds
        self.low_bandwidth = low_bandwidth
        # Not yet drawn (low-bandwidth mode): refreshes, the newest interfaces, whether the groups changed.
        self._held: list[SnapshotDiff] = []
        self._held_interfaces: list[Interface] | None = None
        self._groups_owed = False
        self._painted_at = 0.0
        self._sparklines_at = 0.0
        self._first_screen: FirstScreen | None = None  # shown until the first refresh comes
        self._read_time = SteadyFigure(tolerance=0.5, least=5.0)  # ms: news when it moves by half either way
        # B/s: over SSH, lo carries the session's own 1-3 KB/s, which must not repaint the panel every second.
        self._rates = SteadyFigures(tolerance=0.5, least=4000)
        # The session the table shows: the app's (TCP/UDP), or while `u` shows unix sockets their own, fed by a
        # source of their own. The app's keeps taking refreshes meanwhile: alerts, Top and metrics go on.
        self.main_session = self.session = session
        self.source = source
        self.unix_source = unix_source
        self._showing_unix = False  # the table shows unix sockets (`u`): read by a worker, or a replay's
        self._unix_said_missing = False  # a replay without unix sockets at this point said so once
        self.netns = netns
        self._save_config = save_config
        self._config_file = config_file
        self._resolver: NameResolver | None = None
        self.counters = StateCounters(id="counters")
        self.traffic = TrafficPanel(id="traffic")
        self.top_panel = TopPanel(id="top-panel")
        self.table = ConnectionTable(id="connections", flash_seconds=0.0 if low_bandwidth else flash_seconds)
        self.table.coarse_ages = low_bandwidth
        self.filter_bar = FilterBar(id="filter-bar")
        self.status_bar = StatusBar(id="status")

    def compose(self) -> ComposeResult:
        yield self.counters
        yield self.traffic
        yield self.top_panel
        yield self.table
        yield self.filter_bar
        yield self.status_bar

    def on_mount(self) -> None:
        if not self.session.filter.is_empty:
            self.table.set_filter(self.session.filter.matches)
        self.show_counts()  # the sort and filter from the start, before the first read

    @property
    def is_replay(self) -> bool:
        return self.source.replay is not None

    # --- what the app routes here

    def apply(self, refresh: Refresh) -> None:
        """A refresh of the app's session; not drawn while unix sockets are shown."""
        if self.session is self.main_session:
            self._draw(refresh)

    def show_first_screen(self, first: FirstScreen) -> None:
        """The top of the first refresh and its totals, while the refresh itself crosses the pipe (at 500,000
        sockets, seconds). Only over a table that has had no refresh and shows what the rows were picked for: no
        filter, the default order."""
        if self.session.refresh_count or self._showing_unix or not self.session.filter.is_empty:
            return
        if not self.table.in_default_order:
            return
        self._first_screen = first
        self.table.show_first_screen(first.rows, first.taken_at)
        self.show_counts()

    def _draw(self, refresh: Refresh) -> None:
        diff = refresh.diff
        if diff is not None and self.low_bandwidth and self.session.refresh_count > 1:
            self._held.append(diff)  # drawn with the next paint (tick)
            return
        if diff is not None:
            self.table.apply_diff(diff)
            if not self.table.loading_rows:  # else the first screen stays until on_connection_table_loaded
                self._first_screen = None
            if self.session.tcp_wanted:
                self.table.metrics_changed()
        self.show_counts()

    def on_connection_table_loaded(self) -> None:
        self._first_screen = None
        self.show_counts()

    def _paint_held(self) -> None:
        held, self._held = self._held, []
        for diff in held:
            self.table.apply_diff(diff)
        if held and self.session.tcp_wanted:
            self.table.metrics_changed()
        if self._held_interfaces is not None:
            self._show_interfaces(self._held_interfaces)
            self._held_interfaces = None
        if self._groups_owed:
            self._groups_owed = False
            self._show_groups()
        self.show_counts()
        self._painted_at = time.monotonic()

    def show_interfaces(self, interfaces: list[Interface]) -> None:
        if self.low_bandwidth:
            self._held_interfaces = interfaces  # drawn with the next paint
            return
        self._show_interfaces(interfaces)

    def _show_interfaces(self, interfaces: list[Interface]) -> None:
        now = time.monotonic()
        redraw = now - self._sparklines_at >= SPARKLINE_EVERY
        if redraw:
            self._sparklines_at = now
        steady = self._rates.update({
            **{f"{i.name}\0rx": i.rx_bytes_per_s for i in interfaces},
            **{f"{i.name}\0tx": i.tx_bytes_per_s for i in interfaces},
        })
        rates = {i.name: (steady[f"{i.name}\0rx"], steady[f"{i.name}\0tx"]) for i in interfaces}
        self.traffic.show_interfaces(interfaces, rates, sparklines=not self.low_bandwidth,
                                     redraw_sparklines=redraw)

    def action_toggle_low_bandwidth(self) -> None:
        self.low_bandwidth = not self.low_bandwidth
        self._paint_held()
        self.table.flash_seconds = 0.0 if self.low_bandwidth else self.flash_seconds
        self.table.coarse_ages = self.low_bandwidth
        self.table.clear_highlights()
        self.traffic.show_interfaces(self.traffic.busiest, self.traffic.rates, sparklines=not self.low_bandwidth)
        self.show_counts()

    def show_groups(self) -> None:
        if self.low_bandwidth:
            self._groups_owed = True  # drawn with the next paint
            return
        self._show_groups()

    def _show_groups(self) -> None:
        groups = self.session.groups
        if self._showing_unix:  # a unix socket has no remote host, and its "port" is an inode
            self.top_panel.show_groups([("Programs", groups.groups("process", limit=6))])
            return
        self.top_panel.show_groups([
            ("Remote hosts", groups.groups("remote_ip", limit=6)),
            ("Local ports", groups.groups("local_port", limit=6)),
            ("Programs", groups.groups("process", limit=6)),
        ])

    def tick(self) -> None:
        """Twice a second: highlights fade, resolved names show, and the status line says how late the data is;
        in low-bandwidth mode, what arrived is drawn every LOW_BANDWIDTH_PAINT s."""
        if self.low_bandwidth and time.monotonic() - self._painted_at >= LOW_BANDWIDTH_PAINT:
            self._paint_held()
        session = self.session
        if self.is_replay or session.late_seconds(self.refresh_interval):
            self.show_counts()  # the replay position and state, or how late the data is
        if session.snapshot is not None:
            # Snapshot time plus what has elapsed since it arrived: the same clock for live and recorded data.
            self.table.expire_highlights(session.snapshot.taken_at + time.time() - session.received_at)
        if self._resolver is not None and self._resolver.take_updates():
            self.table.repaint_all()

    @property
    def refresh_interval(self) -> float:
        """Seconds between refreshes now: the source's interval, or longer if its worker slowed itself down."""
        pace = self.source.pace
        return pace.interval if pace is not None else self.source.interval

    def show_counts(self) -> None:
        table, session = self.table, self.session
        states = UNIX_COUNTED_STATES if self.showing_unix else COUNTED_STATES
        first = self._first_screen
        if first is not None:
            totals = Counter(first.counts)
            self.counters.show_counts(totals, totals, False, False, states)
        else:
            # The rows' own filter: while a new one's rows are made (filtering_rows), that of the one before.
            self.counters.show_counts(table.filtered_counts, session.totals, table.filter_on,
                                      session.syn_recv.alert, states)
        snapshot = session.snapshot
        sockets = first.total if first is not None else len(snapshot.sockets) if snapshot is not None else 0
        # A filter typed over the first screen or while the first refresh is made into rows: filtering.
        filtering = table.filtering_rows
        self.status_bar.show_status(Status(
            filter_terms=tuple(filter_terms(session.filter.text)),
            sort_label=table.sort_label,
            collect_ms=float(rounded_ms(self._read_time.update(snapshot.collect_seconds * 1000))) if snapshot
            else 0.0,
            interval=self.refresh_interval,
            stretched_for=pace.cpu_share if (pace := self.source.pace) is not None and pace.stretched else 0.0,
            paused=session.paused,
            names=self._resolver is not None,
            warning=self._source_state() or session.standing_warning,
            late_seconds=session.late_seconds(self.refresh_interval, self.is_replay),
            low_bandwidth=self.low_bandwidth,
            loading=sockets if not filtering and (first is not None or table.loading_rows) else 0,
            filtering=sockets if filtering else 0,
            waiting=snapshot is None and first is None,
        ))

    def _source_state(self) -> str:
        """REPLAY, the namespace looked into, REC: for the status line."""
        replay, recorder = self.source.replay, self.source.recorder
        if replay is not None:
            return f"REPLAY {replay.describe()}"
        parts = [f"netns {self.netns}"] if self.netns else []
        if self.showing_unix:
            parts.append("UNIX sockets (u: TCP/UDP)")
        if recorder is not None and recorder.recording and recorder.writer is not None:
            parts.append(f"● REC {Path(recorder.writer.path).name}")
        return "  ".join(parts)

    def export_rows(self) -> list[Socket]:
        """Every socket shown, in table order: a folded row's sockets each on their own."""
        table = self.table
        table.finish_loading()
        return [member for row in table.rows if not table.is_closed(row) for member in table.members_of(row)]

    # --- filter

    def action_open_filter(self) -> None:
        self.filter_bar.open(self.session.filter.text)

    def on_filter_bar_submitted(self, event: FilterBar.Submitted) -> None:
        new_filter = self.filter_bar.parsed(event.text, self.session.filter)
        if new_filter is not None:
            self.apply_filter(new_filter)
            self.table.focus()

    def on_filter_bar_cleared(self, event: FilterBar.Cleared) -> None:
        self.filter_bar.close()
        self.apply_filter(parse_filter(""))
        self.table.focus()

    def action_clear_filter(self) -> None:
        if not self.session.filter.is_empty:
            self.apply_filter(parse_filter(""))

    def apply_filter(self, new_filter: Filter) -> None:
        insights_later = self.main_session.set_filter(new_filter, in_parts=True)  # the app calls its catch_up
        if self.session is not self.main_session:
            self.session.set_filter(new_filter)
        self.table.set_filter(None if new_filter.is_empty else new_filter.matches)
        self.show_counts()
        self.show_groups()
        self.post_message(self.FilterChanged(insights_later))

    def action_filter_selected(self, what: str) -> None:
        sock = self.table.selected_socket
        if sock is None:
            return
        if what == "port" and is_unix(sock.proto):
            path = sock.local_ip or sock.remote_ip  # a client's end has no name: its server's path says it
            if not path:
                self.app.notify("Neither this unix socket nor its peer has a path: p narrows to its process.",
                                severity="warning")
                return
            term = f"path:{path}"
        elif what == "port":
            term = f":{sock.local_port}"
        elif what == "state":
            state = "SYN_RECV" if sock.state == "NEW_SYN_RECV" else sock.state
            # Bare `listen` would also take unconnected UDP: the row's own state is meant.
            term = "state:listen" if state == "LISTEN" else state.lower()
        elif sock.pid is None:
            self.app.notify("This socket has no known owning process.", severity="warning")
            return
        else:
            term = f"pid:{sock.pid}"
        try:
            self.apply_filter(parse_filter(narrowed(self.session.filter.text, term)))
        except FilterError as error:  # a path the filter language cannot say (a comma, a quote)
            self.app.notify(f"Cannot filter to that: {error}", severity="error", markup=False)

    def action_drop_last_term(self) -> None:
        if not self.session.filter.is_empty:
            self.apply_filter(parse_filter(without_last_term(self.session.filter.text)))

    # --- sorting, names

    def action_cycle_sort(self, step: int) -> None:
        self.table.cycle_sort(step)

    def action_reverse_sort(self) -> None:
        self.table.sort_reverse = not self.table.sort_reverse

    def on_connection_table_sort_changed(self, event: ConnectionTable.SortChanged) -> None:
        self.show_counts()

    def action_toggle_names(self) -> None:
        if self._resolver is None:
            resolver = self._resolver = NameResolver()

            def named(ip: str, port: int, proto: str) -> str:
                if is_unix(proto):  # a path: nothing to look up
                    return format_endpoint(ip, port, proto)
                host = resolver.host(ip) or (f"[{ip}]" if ":" in ip else ip)
                service = (resolver.service(port, proto) if port else "*") or str(port)
                return f"{host}:{service}"

            self.table.set_endpoint_formatter(named)
        else:
            self._resolver.shutdown()
            self._resolver = None
            self.table.set_endpoint_formatter(None)
        self.show_counts()

    def on_unmount(self) -> None:
        if self._resolver is not None:
            self._resolver.shutdown()

    # --- unix sockets

    @property
    def showing_unix(self) -> bool:
        return self._showing_unix

    def action_toggle_unix(self) -> None:
        if self._showing_unix:
            self.workers.cancel_group(self, "unix")  # its source is closed as the worker ends
            self._showing_unix = False
            self._show_session(self.main_session)
            return
        if self.unix_source is None and not self.is_replay:
            self.app.notify("Unix sockets are not read here.", severity="warning")
            return
        self._showing_unix = True
        self._unix_said_missing = False
        session = LiveSession(self.main_session.filter.text)
        self._show_session(session)
        if self.is_replay:
            self.post_message(self.UnixReplayed())  # the app reads the recorded ones at the replay's position
        elif self.unix_source is not None:
            self.run_worker(self._follow_unix(self.unix_source(), session), group="unix", exclusive=True)

    def unix_rows(self) -> UnixRows | None:
        """The unix sockets shown now, for a recording (None while TCP/UDP are shown)."""
        snapshot = self.session.snapshot
        if not self._showing_unix or snapshot is None or self.is_replay:
            return None
        return UnixRows(snapshot.taken_at, list(snapshot.sockets.values()))

    def show_recorded_unix(self, rows: UnixRows | None) -> None:
        """A replay's unix sockets at its position (the latest recorded at or before it), drawn as live ones."""
        session = self.session
        if not self._showing_unix or session is self.main_session:
            return
        if rows is None:
            if not self._unix_said_missing:
                self._unix_said_missing = True
                self.app.notify("No unix sockets were recorded up to this point: a recording holds them while u "
                                "shows them.", severity="warning")
            return
        previous = session.snapshot
        if previous is not None and previous.taken_at == rows.taken_at:
            return  # the same recorded read
        current = Snapshot(rows.taken_at, {sock.key: sock for sock in rows.sockets})
        self._draw(session.take(diff_snapshots(previous, current)))

    def _show_session(self, session: LiveSession) -> None:
        """Show this session's sockets from now on (what it has, or "Reading sockets…" until it has some)."""
        self.session = session
        self._held.clear()  # the other session's refreshes
        snapshot = session.snapshot
        if snapshot is not None:
            self.table.apply_diff(SnapshotDiff(snapshot, list(snapshot.sockets.values()), [], [], first=True))
        else:
            self.table.load([], 0.0)
        self.show_counts()
        self.show_groups()

    def toggle_unix_pause(self) -> None:
        reload = self.session.toggle_pause()
        if reload is not None:
            self._draw(self.session.take(reload))
        self.show_counts()

    async def _follow_unix(self, source: SnapshotSource, session: LiveSession) -> None:
        try:
            async for update in source.stream():
                if isinstance(update, FirstScreen):
                    continue  # not asked of the unix sockets' worker
                refresh = session.take(update)
                tell = [told for message, severity in refresh.tell
                        for told in self.main_session.warn_once(message, severity)]
                if tell:
                    self.post_message(self.Tell(tell))
                if self.session is session:
                    self._draw(refresh)
        finally:
            await source.aclose()

    # --- tcp_info columns

    def tcp_details(self, key: SocketKey) -> TcpDetails | None:
        """For the details screen: None while tcp_info is not collected."""
        if not self.session.tcp_columns:
            return None
        info, rate = self.session.metrics_of(key)
        return info, rate, self.session.throughput.history(key)

    def tcp_info_note(self) -> str:
        """Why the tcp_info columns would show only "-", if they would."""
        return "A recording holds no tcp_info: these columns show '-' in a replay." if self.is_replay else ""

    def show_metric_columns(self, keys: list[str]) -> None:
        self.table.set_metric_columns(keys)
        # The app's session: its source reads tcp_info (unix sockets have none).
        self.table.set_metrics(self.main_session.metrics_of if keys else None)
        self.table.set_timers(self.main_session.timer_of if TIMER_KEY in keys else None)
        self.main_session.tcp_columns = needs_tcp_info(keys)
        self.post_message(self.TcpNeedChanged())
        self.show_counts()

    def action_choose_columns(self) -> None:
        async def chosen(keys: list[str] | None) -> None:
            if keys is None:
                return
            self.show_metric_columns(keys)
            if not self._save_config:
                return
            try:
                await asyncio.to_thread(save_columns, keys, self._config_file)
            except OSError as error:
                self.app.notify(f"Columns changed but not remembered: {error}", severity="warning", markup=False)

        self.app.push_screen(ColumnsScreen(self.table.metric_columns, self.tcp_info_note()), chosen)

    # --- acting on a row

    async def action_close_connection(self) -> None:
        notify = self.app.notify
        if self.is_replay:
            notify(REPLAY_REFUSAL.format("connections", "closed"), severity="warning")
            return
        sock = self.table.selected_socket
        if sock is None:
            return
        if self.table.is_closed(sock):
            notify("That connection is already closed.", severity="warning")
            return
        if isinstance(sock, FoldedSockets):
            notify(FOLD_REFUSAL.format(sock.count), severity="warning")
            return
        refusal = close_refusal(sock)
        if self.netns:
            # SOCK_DESTROY would be asked of this process's namespace, not the one shown.
            refusal = "Closing one connection works only in netscope's own network namespace (no --netns)."
        if refusal:
            notify(refusal, severity="warning", markup=False)
            return
        reason = await asyncio.to_thread(destroy_capability)
        if reason:
            notify(reason, severity="error", markup=False)
            return

        async def answered(yes: bool | None) -> None:
            if not yes:
                notify("Nothing was closed.", timeout=3)
                return
            result = await asyncio.to_thread(destroy_socket, sock)
            notify(result.message, severity="information" if result.ok else "error", markup=False)

        self.app.push_screen(ConfirmCloseScreen(sock), answered)

    def sockets_of(self, pid: int) -> list[Socket]:
        snapshot = self.session.snapshot
        if snapshot is None:
            return []
        return [sock for sock in snapshot.sockets.values() if sock.pid == pid]

    async def on_connection_table_activated(self, event: ConnectionTable.Activated) -> None:
        sock = event.socket
        if event.control is not self.table:
            return
        sockets = self.sockets_of(sock.pid) if sock.pid is not None else [sock]
        now = self.session.snapshot.taken_at if self.session.snapshot else 0
        if self.is_replay:
            # The recorded PID may belong to another process now: show what was recorded, never look it up.
            self.app.push_screen(DetailsScreen(sock, None, sockets, now, recorded=True, peer=self.peer_of))
            return
        details = None if sock.pid is None else await asyncio.to_thread(owner_details, sock)
        self.app.push_screen(DetailsScreen(sock, details, sockets, now, tcp=self.tcp_details, probe=probe_socket,
                                           peer=self.peer_of))

    def peer_of(self, sock: Socket) -> Socket | None:
        """A unix socket's other end, in the last read (its inode is where ss puts the peer's port)."""
        snapshot = self.session.snapshot
        if snapshot is None or not is_unix(sock.proto) or not sock.remote_port:
            return None
        peer_key = (sock.proto, sock.remote_ip, sock.remote_port, sock.local_ip, sock.inode, 0)
        found = snapshot.sockets.get(peer_key)
        if found is not None:
            return found
        return next((other for other in snapshot.sockets.values() if other.inode == sock.remote_port), None)

    async def action_kill(self, signal_name: str) -> None:
        notify = self.app.notify
        if self.is_replay:
            notify(REPLAY_REFUSAL.format("processes", "killed"), severity="warning")
            return
        sig = signal.Signals[signal_name]
        sock = self.table.selected_socket
        if sock is None:
            return
        if self.table.is_closed(sock):
            notify("That connection has closed: its process may have exited and its PID been reused. Nothing "
                   "is sent from a closed row; select a live one.", severity="warning")
            return
        if isinstance(sock, FoldedSockets):
            notify(FOLD_REFUSAL.format(sock.count), severity="warning")
            return
        if sock.pid is None:
            notify(f"Nothing to kill: {missing_owner_reason(sock)}.", severity="warning", markup=False)
            return
        refusal = refusal_reason(sock.pid)
        if refusal:
            notify(f"Refused: {refusal}", severity="error", markup=False)
            return
        # A fresh look, whatever the age of the row (a paused table, a slow refresh): the process recorded with the
        # socket, by PID and start time, and whether it still holds the socket.
        details, check = await asyncio.to_thread(look_before_kill, sock)
        if check.refusal:
            notify(f"Refused: {check.refusal}", severity="error", markup=False)
            return
        if details.error:
            notify(details.error, severity="warning", markup=False)
            return
        count = check.socket_count if check.socket_count is not None else len(self.sockets_of(sock.pid))
        note = ""
        if self.session.paused:
            note = "The table is paused; this process was checked just now and still holds the socket."

        async def answered(yes: bool | None) -> None:
            if not yes:
                notify("Nothing was sent.", timeout=3)
                return
            result = await asyncio.to_thread(send_signal, details.pid, sock.pid_start, sig, sock.inode)
            notify(result.message, severity="information" if result.ok else "error", markup=False)

        self.app.push_screen(ConfirmKillScreen(details, count, sig, note), answered)
