"""View 6, "top": who is hammering this box. Sockets grouped by remote host, remote network, local port or
process, with counts per state and the change since the last refresh, and the per-state history below.

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

from netscope.collectors.history import StateHistory
from netscope.collectors.insights import GROUPING_LABELS, GROUPINGS, Group, GroupCounter
from netscope.widgets.history_chart import HistoryChart
from netscope.widgets.live_table import LiveRow, LiveTable

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


def _number(value: int) -> Text:
    return Text(str(value) if value else "·", justify="right")


def _change(value: int) -> Text:
    if not value:
        return Text("·", justify="right")
    return Text(f"{value:+d}", style="bold" if abs(value) >= 10 else "", justify="right")


def group_row(group: Group) -> LiveRow:
    named = sum(group.states.get(state, 0) for _, state in STATE_COLUMNS)
    cells: list[str | Text] = [
        group.key,
        Text(str(group.total), justify="right"),
        _change(group.change),
        *(_number(group.states.get(state, 0)) for _, state in STATE_COLUMNS),
        _number(group.total - named),
    ]
    return LiveRow(group.key, cells)


class TopView(Vertical):
    BINDINGS = [
        Binding("g", "cycle_grouping(1)", "Group by"),
        Binding("G", "cycle_grouping(-1)", "Group back", show=False),
        Binding("s", "cycle_sort(1)", "Sort"),
        Binding("S", "cycle_sort(-1)", "Sort back", show=False),
        Binding("f", "choose", "Show connections"),
    ]

    class GroupChosen(Message):
        """Enter or f on a group: the app narrows the connection table to it."""

        def __init__(self, group: Group) -> None:
            super().__init__()
            self.group = group

    def __init__(self, groups: GroupCounter, history: StateHistory, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.groups = groups
        self.grouping = GROUPINGS[0]
        self.sort = "total"
        self.filter_text = ""
        self.taken_at = 0.0
        self.shown: list[Group] = []
        # Held, not queried: data may arrive before this view is composed.
        self.summary = Static("", id="top-summary", markup=False)
        self.table = LiveTable(COLUMNS, id="top-table")
        self.chart = HistoryChart(history, id="top-history")

    def compose(self) -> ComposeResult:
        yield self.summary
        yield self.table
        yield self.chart

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
    def selected_group(self) -> Group | None:
        key = self.table.selected_key
        return next((group for group in self.shown if group.key == key), None)

    def action_cycle_grouping(self, step: int) -> None:
        index = GROUPINGS.index(self.grouping)
        self.grouping = GROUPINGS[(index + step) % len(GROUPINGS)]
        # Another grouping's rows are not the same rows: start its table without "new row" flashes.
        self.table.clear()
        self.table.reset_highlights()
        self.refresh_groups(self.taken_at, self.filter_text)
        self.table.move_cursor(row=0)

    def action_cycle_sort(self, step: int) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + step) % len(SORTS)]
        self.refresh_groups(self.taken_at, self.filter_text)

    def action_choose(self) -> None:
        group = self.selected_group
        if group is not None:
            self.post_message(self.GroupChosen(group))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        label = str(event.label)
        sort = {"Group": "key", "Sockets": "total", "Change": "change",
                **{column: state for column, state in STATE_COLUMNS}}.get(label)
        if sort is not None:
            self.sort = sort
            self.refresh_groups(self.taken_at, self.filter_text)
