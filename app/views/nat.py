"""View 7, NAT (`netstat -M`, `conntrack -L` live): the kernel's tracked flows with both tuples, so a masqueraded
connection shows its inside and its outside addresses; the local socket and owner where this host is an end.
Filtered with the filter language (its own filter: a flow is not a socket of view 1) and sorted with `s`."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from netscope.collectors.conntrack import NO_FLOWS_HINT, Flow
from netscope.collectors.row_order import ip_order
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.nat import NatTable
from netscope.collectors.view_data import ConntrackSnapshot
from netscope.widgets.filter_bar import FilterBar
from netscope.widgets.formatting import flow_end_text, flow_tuple_text, format_age, format_count
from netscope.widgets.live_table import LiveRow, LiveTable

# Both tuples first: at 80 columns they are what must show (the rest scrolls into view with → or the mouse).
COLUMNS = ("Original: source → destination", "Reply: source → destination", "State", "Proto", "NAT", "Timeout",
           "Bytes", "Local end")


def flow_row(flow: Flow) -> LiveRow:
    o, r = flow.original, flow.reply
    total = None if o.bytes is None else o.bytes + (r.bytes or 0)
    cells: list[str | Text] = [
        flow_tuple_text(o), flow_tuple_text(r), flow.state or "-", flow.protocol_name, flow.nat or "-",
        Text(format_age(flow.timeout), justify="right"),  # counted like ages: a calm column over SSH
        Text("-" if total is None else format_count(total), justify="right"), flow_end_text(flow),
    ]
    key = (flow.id, flow.protocol, o.src, o.sport, o.dst, o.dport, o.icmp)
    return LiveRow(key, cells, emphasis="default" if flow.nat else "")


class NatView(Vertical):
    BINDINGS = [
        Binding("slash", "open_filter", "Filter", id="nat_filter",
                tooltip="filter the flows (the filter language: a flow matches by its original or its reply "
                        "tuple, e.g. `ip:10.0.1.0/24`, `:8080`, `established`)"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="nat_clear_filter",
                tooltip="clear the flows' filter"),
        Binding("s", "cycle_sort", "Sort", id="nat_sort",
                tooltip="sort the flows by original tuple, time left, bytes, state"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Held, not queried: data may arrive before this view is composed.
        self.summary = Static("", id="nat-summary", markup=False)
        # Busy flows' bytes move every read: only flows that start or end flash (calm over SSH).
        self.table = LiveTable(COLUMNS, id="nat-table", highlight_changes=False)
        self.filter_bar = FilterBar(id="nat-filter-bar")
        self.model = NatTable(address_order=ip_order)
        self.snapshot: ConntrackSnapshot | None = None
        self.recorded = False

    def compose(self) -> ComposeResult:
        yield self.summary
        yield self.table
        yield self.filter_bar

    def show(self, snapshot: ConntrackSnapshot, recorded: bool = False) -> None:
        """`recorded`: from a replay, where the table is the one last recorded (while this view was shown)."""
        self.snapshot = snapshot
        self.recorded = recorded
        self.model.flows = snapshot.flows
        self._redraw()

    def show_not_recorded(self) -> None:
        self.summary.update("No connection tracking table was recorded up to this point of the replay: a "
                            "recording holds it while this view is shown.")

    def _redraw(self) -> None:
        snapshot = self.snapshot
        if snapshot is None:
            return
        shown = self.model.shown()
        if snapshot.error:
            self.summary.update(f"No connection tracking table: {snapshot.error}")
        else:
            nated = sum(1 for flow in snapshot.flows if flow.nat)
            parts = [f"{len(snapshot.flows):,} flows tracked, {nated:,} NATed (highlighted)",
                     f"read in {snapshot.read_seconds * 1000:.0f} ms"]
            if self.recorded:  # recorded while this view was shown: the latest at or before the replay's time
                parts[-1] = time.strftime("as recorded at %H:%M:%S", time.localtime(snapshot.taken_at))
            elif snapshot.every >= 2:
                parts[-1] += f", again in {snapshot.every:.0f} s (a tenth of a core at most)"
            if not self.model.filter.is_empty:
                parts.append(f"filter {self.model.filter.text}: {len(shown):,} shown")
            parts.append(f"sort: {self.model.sort_label}")
            if not snapshot.flows and not self.recorded:  # an empty table: likely no tracking here at all
                parts.append(f"none: {NO_FLOWS_HINT}")
            self.summary.update(" · ".join(parts))
        self.table.show_rows([flow_row(flow) for flow in shown], snapshot.taken_at)

    def action_open_filter(self) -> None:
        self.filter_bar.open(self.model.filter.text)

    def on_filter_bar_submitted(self, event: FilterBar.Submitted) -> None:
        event.stop()
        new_filter = self.filter_bar.parsed(event.text, self.model.filter)
        if new_filter is None:
            return
        self.model.filter = new_filter
        self.table.focus()
        self.table.reset_highlights()  # another set of rows, not flows that opened or closed
        self._redraw()

    def on_filter_bar_cleared(self, event: FilterBar.Cleared) -> None:
        event.stop()
        self.filter_bar.close()
        self.action_clear_filter()
        self.table.focus()

    def action_clear_filter(self) -> None:
        self.model.filter = parse_filter("")
        self.table.reset_highlights()
        self._redraw()

    def action_cycle_sort(self) -> None:
        self.model.cycle_sort()
        self.table.reset_highlights()  # a new order, not changes to flash
        self._redraw()
