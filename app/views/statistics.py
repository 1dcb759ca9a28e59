"""View 4, `netstat -s` live: every protocol counter with its total, its change and its rate."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from netscope.collectors.protostats import ProtocolCounter, StatsSnapshot
from netscope.widgets.live_table import LiveRow, LiveTable

COLUMNS = ("Group", "Counter", "Kernel name", "Total", "Change", "Per second")
FILTER_HINT = "filter counters: retrans, listen, syn, drop, Udp …"


def counter_row(counter: ProtocolCounter) -> LiveRow:
    moving = counter.delta != 0 and not counter.is_gauge
    cells: list[str | Text] = [
        counter.group,
        counter.label or counter.name,
        counter.name,
        Text(f"{counter.value:,}", justify="right"),
        Text(f"{counter.delta:+,}" if counter.delta else "0", justify="right"),
        Text(f"{counter.rate:,.1f}" if counter.rate else "0", justify="right"),
    ]
    return LiveRow((counter.group, counter.name), cells, emphasis="moving" if moving else "")


class StatisticsView(Vertical):
    BINDINGS = [
        Binding("z", "toggle_zeros", "Hide zeros", id="statistics_zeros",
                tooltip="hide / show counters that are zero"),
        Binding("slash", "focus_filter", "Filter", id="statistics_filter",
                tooltip="filter the counters by name (Escape clears)"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hide_zeros = False
        self.filter_text = ""
        self.snapshot: StatsSnapshot | None = None
        # Held, not queried: data may arrive before this view is composed.
        self.filter_input = Input(placeholder=FILTER_HINT, id="stats-filter")
        self.summary = Static("", id="stats-summary", markup=False)
        self.table = LiveTable(COLUMNS, id="stats-table", highlight_changes=False)

    def compose(self) -> ComposeResult:
        yield self.filter_input
        yield self.summary
        yield self.table

    def visible_counters(self, snapshot: StatsSnapshot) -> list[ProtocolCounter]:
        needle = self.filter_text.lower()
        return [
            counter for counter in snapshot.counters
            if not (self.hide_zeros and counter.value == 0)
            and (not needle or needle in f"{counter.group} {counter.name} {counter.label}".lower())
        ]

    def show(self, snapshot: StatsSnapshot, *, highlight: bool = True) -> None:
        self.snapshot = snapshot
        counters = self.visible_counters(snapshot)
        moving = sum(1 for counter in snapshot.counters if counter.delta and not counter.is_gauge)
        self.summary.update(
            f"{len(counters)} of {len(snapshot.counters)} counters shown"
            f"{', zeros hidden' if self.hide_zeros else ''}; {moving} moved in the last interval "
            "(highlighted).  z: hide zeros   /: filter"
        )
        # A new filter is not a change in the counters: no highlights for rows that merely come into view.
        rows = [counter_row(counter) for counter in counters]
        self.table.show_rows(rows, snapshot.taken_at, highlight=highlight)

    def _reshow(self) -> None:
        if self.snapshot is not None:
            self.show(self.snapshot, highlight=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._reshow()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_toggle_zeros(self) -> None:
        self.hide_zeros = not self.hide_zeros
        self._reshow()

    def action_focus_filter(self) -> None:
        self.filter_input.focus()
