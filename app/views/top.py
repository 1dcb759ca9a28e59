"""View 6, "top": who is hammering this box. Sockets grouped by remote host, remote network, local port or
process, with counts per state and the change since the last refresh, and the per-state history below; or, like
bandwhich, the bytes per second per process or remote host, from the kernel's tcp_info.

It answers the pipelines people paste (`netstat -ntu | awk '{print $5}' | cut -d: -f1 | sort | uniq -c | sort -n`,
`netstat -nap | grep :80 | grep ESTABLISHED | wc -l`) live; Enter narrows the connection table to one group.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from netscope.collectors.session.history import StateHistory
from netscope.collectors.session.insights import GROUPING_LABELS, GROUPINGS, Group, GroupCounter
from netscope.collectors.session.live import LiveSession
from netscope.collectors.session.throughput import RateGroup
from netscope.widgets.formatting import format_rate, printable, shortened
from netscope.widgets.history_chart import HistoryChart
from netscope.widgets.live_table import LiveRow, LiveTable
from netscope.widgets.tcp_columns import format_bytes

# Column label -> the sort GroupCounter.groups() takes; "Other" is not sortable on its own.
STATE_COLUMNS = (
    ("ESTAB", "ESTABLISHED"),
    ("SYN_RECV", "SYN_RECV"),
    ("TIME_WAIT", "TIME_WAIT"),
    ("CLOSE_WAIT", "CLOSE_WAIT"),
    ("LISTEN", "LISTEN"),
    ("UDP", "UDP"),
)
COLUMNS = ("Group", "Sockets", "Change", *(label for label, _ in STATE_COLUMNS), "Other")
SORTS = ("total", "change", *(state for _, state in STATE_COLUMNS), "key")
SORT_LABELS = {"total": "Sockets", "change": "Change", "key": "Group",
               **{state: label for label, state in STATE_COLUMNS}}
SHOWN_GROUPS = 500  # the busiest; a flood from 50,000 addresses must not make a 50,000-row table every second
# Bandwidth groupings (tcp_info bytes per second), after the count groupings in the `g` cycle.
RATE_GROUPINGS = ("process_rate", "remote_rate")
RATE_LABELS = {"process_rate": "bandwidth per process", "remote_rate": "bandwidth per remote host"}
ALL_GROUPINGS = (*GROUPINGS, *RATE_GROUPINGS)
RATE_COLUMNS = ("Group", "Conns", "Send/s", "Recv/s", "Total/s", "Sent", "Received")
RATE_SORTS = ("rate", "bytes", "connections", "key")
RATE_SORT_LABELS = {"rate": "Total/s", "bytes": "bytes", "connections": "Conns", "key": "Group"}
GROUP_NAME_WIDTH = 40
NO_TCP_INFO = "no tcp_info yet: it is read from the next refresh on (never when sockets are read from /proc)"
GROUP_TIP = "group by remote host, /24 (/64), local port, process; bandwidth per process, per host"
SORT_TIP = "sort by sockets, change, a state, or name (or click a column header)"


def _number(value: int) -> Text:
    return Text(str(value) if value else "·", justify="right")


def _change(value: int) -> Text:
    if not value:
        return Text("·", justify="right")
    return Text(f"{value:+d}", style="bold" if abs(value) >= 10 else "", justify="right")


def _group_name(key: str) -> Text:
    # A process may name itself with 3,000 characters: the counts beside it must stay on screen. The details (Enter
    # on a row of view 1) show the whole name.
    return Text(shortened(printable(key), GROUP_NAME_WIDTH))


def group_row(group: Group) -> LiveRow:
    named = sum(group.states.get(state, 0) for _, state in STATE_COLUMNS)
    cells: list[str | Text] = [
        _group_name(group.key),
        Text(str(group.total), justify="right"),
        _change(group.change),
        *(_number(group.states.get(state, 0)) for _, state in STATE_COLUMNS),
        _number(group.total - named),
    ]
    return LiveRow(group.key, cells)


def rate_row(group: RateGroup) -> LiveRow:
    cells: list[str | Text] = [
        _group_name(group.key),
        Text(str(group.connections), justify="right"),
        Text(format_rate(group.send_rate), justify="right"),
        Text(format_rate(group.recv_rate), justify="right"),
        Text(format_rate(group.send_rate + group.recv_rate), justify="right"),
        Text(format_bytes(group.bytes_sent) + "B", justify="right"),
        Text(format_bytes(group.bytes_received) + "B", justify="right"),
    ]
    return LiveRow(group.key, cells)


def sort_rate_groups(groups: list[RateGroup], sort: str) -> list[RateGroup]:
    if sort == "key":
        return sorted(groups, key=lambda g: g.key)
    if sort == "connections":
        return sorted(groups, key=lambda g: (-g.connections, g.key))
    if sort == "bytes":
        return sorted(groups, key=lambda g: (-(g.bytes_sent + g.bytes_received), g.key))
    return groups  # already busiest first


class TopView(Vertical):
    BINDINGS = [
        Binding("g", "cycle_grouping(1)", "Group by", id="top_group", tooltip=GROUP_TIP),
        Binding("G", "cycle_grouping(-1)", "Group back", show=False, id="top_group_back", tooltip=GROUP_TIP),
        Binding("s", "cycle_sort(1)", "Sort", id="top_sort", tooltip=SORT_TIP),
        Binding("S", "cycle_sort(-1)", "Sort back", show=False, id="top_sort_back", tooltip=SORT_TIP),
        Binding("f", "choose", "Show connections", id="top_show",
                tooltip="show the selected group's connections in view 1 (Enter too)"),
    ]

    class GroupChosen(Message):
        """Enter or f on a group: the app narrows the connection table to it."""

        def __init__(self, filter_text: str) -> None:
            super().__init__()
            self.filter_text = filter_text

    class GroupingChanged(Message):
        """`g`: the app collects tcp_info while a bandwidth grouping is shown."""

    def __init__(self, groups: GroupCounter, history: StateHistory, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.groups = groups
        self.grouping = GROUPINGS[0]
        self.sort = "total"
        self.filter_text = ""
        self.taken_at = 0.0
        self.shown: list[Group] = []
        self.rate_sort = "rate"
        self.rates_shown: list[RateGroup] = []
        # Held, not queried: data may arrive before this view is composed.
        self.summary = Static("", id="top-summary", markup=False)
        self.table = LiveTable(COLUMNS, id="top-table")
        self.rate_table = LiveTable(RATE_COLUMNS, id="top-rates", highlight_changes=False)
        self.rate_table.display = False
        self.chart = HistoryChart(history, id="top-history")

    def compose(self) -> ComposeResult:
        yield self.summary
        yield self.table
        yield self.rate_table
        yield self.chart

    @property
    def is_rate(self) -> bool:
        return self.grouping in RATE_GROUPINGS

    @property
    def active_table(self) -> LiveTable:
        return self.rate_table if self.is_rate else self.table

    def show_rate_groups(self, groups: list[RateGroup], taken_at: float, filter_text: str, note: str = "") -> None:
        """Show the bandwidth groups as they are now (a bandwidth grouping is shown; the app sums them)."""
        self.taken_at, self.filter_text = taken_at, filter_text
        self.rates_shown = sort_rate_groups(groups, self.rate_sort)[:SHOWN_GROUPS]
        self.summary.update(
            f"{len(groups)} groups, {RATE_LABELS[self.grouping]} (tcp_info, TCP only) · sorted by "
            f"{RATE_SORT_LABELS[self.rate_sort]} · filter: {filter_text or 'none'}"
            f"   g: group by  s: sort  Enter: show these connections{'  · ' + note if note else ''}"
        )
        self.rate_table.show_rows([rate_row(group) for group in self.rates_shown], taken_at)

    def show_session(self, session: LiveSession, replay_note: str = "") -> None:
        """Show what the session counts now: its groups, or (a bandwidth grouping) its rates per process or
        host."""
        snapshot = session.snapshot
        if snapshot is None:
            return
        if not self.is_rate:
            self.refresh_groups(snapshot.taken_at, session.filter.text)
            return
        groups, summed = session.rate_groups(by_process=self.grouping == "process_rate")
        has_info = summed is not None and bool(summed.tcp_info)
        self.show_rate_groups(groups, snapshot.taken_at, session.filter.text,
                              replay_note or ("" if has_info else NO_TCP_INFO))

    def refresh_groups(self, taken_at: float, filter_text: str) -> None:
        """Show the groups as they are now (called each refresh while this view is shown)."""
        self.taken_at, self.filter_text = taken_at, filter_text
        # A heap of the busiest rather than sorting every group: a flood may come from 50,000 addresses.
        self.shown = self.groups.groups(self.grouping, self.sort, limit=SHOWN_GROUPS)
        total = self.groups.count(self.grouping)
        more = total - len(self.shown)
        self.summary.update(
            f"{total} groups by {GROUPING_LABELS[self.grouping].lower()}"
            f"{f' (the first {SHOWN_GROUPS} shown, {more} more)' if more > 0 else ''}"
            f" · sorted by {SORT_LABELS[self.sort]}"
            f" · filter: {filter_text or 'none'}"
            "   g: group by  s: sort  Enter: show these connections"
        )
        self.table.show_rows([group_row(group) for group in self.shown], taken_at)
        self.chart.refresh()

    @property
    def selected_filter(self) -> str | None:
        """The filter text of the selected group, in whichever grouping is shown."""
        if self.is_rate:
            key = self.rate_table.selected_key
            rate = next((group for group in self.rates_shown if group.key == key), None)
            return rate.filter_text if rate is not None else None
        key = self.table.selected_key
        group = next((group for group in self.shown if group.key == key), None)
        return group.filter_text if group is not None else None

    def action_cycle_grouping(self, step: int) -> None:
        index = ALL_GROUPINGS.index(self.grouping)
        self.grouping = ALL_GROUPINGS[(index + step) % len(ALL_GROUPINGS)]
        # Another grouping's rows are not the same rows: start its table without "new row" flashes.
        table = self.active_table
        table.clear()
        table.reset_highlights()
        self.table.display = not self.is_rate
        self.rate_table.display = self.is_rate
        if self.is_rate:
            self.rates_shown = []
            self.summary.update(f"{RATE_LABELS[self.grouping]}: reading tcp_info …")
        else:
            self.refresh_groups(self.taken_at, self.filter_text)
        table.focus()
        table.move_cursor(row=0)
        self.post_message(self.GroupingChanged())

    def action_cycle_sort(self, step: int) -> None:
        if self.is_rate:
            self.rate_sort = RATE_SORTS[(RATE_SORTS.index(self.rate_sort) + step) % len(RATE_SORTS)]
            self.post_message(self.GroupingChanged())  # the app re-sums and shows them sorted
            return
        self.sort = SORTS[(SORTS.index(self.sort) + step) % len(SORTS)]
        self.refresh_groups(self.taken_at, self.filter_text)

    def action_choose(self) -> None:
        filter_text = self.selected_filter
        if filter_text:
            self.post_message(self.GroupChosen(filter_text))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if self.is_rate:
            return
        label = str(event.label)
        sort = {"Group": "key", "Sockets": "total", "Change": "change",
                **{column: state for column, state in STATE_COLUMNS}}.get(label)
        if sort is not None:
            self.sort = sort
            self.refresh_groups(self.taken_at, self.filter_text)
