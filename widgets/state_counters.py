"""The per-state counter bar: how many sockets are in each TCP state, in view and on the whole machine."""

from __future__ import annotations

from collections import Counter

from rich.text import Text
from textual.widget import Widget

from netscope.collectors.model import COUNTED_STATES

# As `ss` abbreviates them, for a counter bar that must fit one line of 80 columns.
SHORT_NAMES = {
    "ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECV", "FIN_WAIT1": "FIN-WAIT-1",
    "FIN_WAIT2": "FIN-WAIT-2", "TIME_WAIT": "TIME-WAIT", "CLOSE_WAIT": "CLOSE-WAIT", "LAST_ACK": "LAST-ACK",
}


class StateCounters(Widget):
    """`ESTABLISHED 6/120  LISTEN 2/31 …`: the first number counts the filtered view, the second the machine."""

    COMPONENT_CLASSES = {
        "state-counters--label",
        "state-counters--count",
        "state-counters--zero",
        "state-counters--alert",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.filtered: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        self.filter_active = False
        self.syn_recv_alert = False
        self.states = COUNTED_STATES  # the buckets shown, in order (unix sockets have their own)
        self._signature: tuple[object, ...] = ()

    def show_counts(
        self, filtered: Counter[str], total: Counter[str], filter_active: bool, syn_recv_alert: bool,
        states: tuple[str, ...] = COUNTED_STATES,
    ) -> None:
        # The app updates its counters in place: compare what would be drawn, not the objects.
        self.states = states
        signature = (
            states, tuple(filtered[state] for state in states), tuple(total[state] for state in states),
            sum(filtered.values()), sum(total.values()), filter_active, syn_recv_alert,
        )
        self.filtered, self.total = filtered, total
        self.filter_active, self.syn_recv_alert = filter_active, syn_recv_alert
        if signature == self._signature:
            return  # unchanged: repainting it would only send bytes over SSH
        self._signature = signature
        self.set_class(syn_recv_alert, "-alert")
        # One line high whatever it says: a layout pass would also repaint the table's scrollbar (Textual
        # repaints a ScrollView's scrollbars on every layout), 1 KB/s over SSH for nothing.
        self.refresh()

    def render(self) -> Text:
        """One line: every state by its full name if that fits; else only the states with sockets (SYN_RECV always
        while it surges); else those by `ss`'s short names; cut with an ellipsis only past that."""
        width = self.content_size.width or 200
        for short, every_state in ((False, True), (False, False), (True, False)):
            text = self._line(short, every_state)
            if text.cell_len <= width:
                return text
        return text

    def _line(self, short: bool, every_state: bool) -> Text:
        # Built at paint time: component styles exist only once the widget is mounted.
        label_style = self.get_component_rich_style("state-counters--label", partial=True)
        count_style = self.get_component_rich_style("state-counters--count", partial=True)
        zero_style = self.get_component_rich_style("state-counters--zero", partial=True)
        alert_style = self.get_component_rich_style("state-counters--alert", partial=True)
        text = Text(no_wrap=True, overflow="ellipsis")
        total_all = sum(self.total.values())
        shown_all = sum(self.filtered.values())
        text.append("ALL:", label_style)
        text.append(f"{shown_all}/{total_all}" if self.filter_active else str(total_all), count_style)
        for state in self.states:
            shown, total = self.filtered[state], self.total[state]
            alert = state == "SYN_RECV" and self.syn_recv_alert
            if not (every_state or total or alert):
                continue
            style = alert_style if alert else (zero_style if total == 0 else count_style)
            name = SHORT_NAMES.get(state, state) if short else state
            text.append(" ")
            text.append(f"{name}:", alert_style if alert else (zero_style if total == 0 else label_style))
            text.append(f"{shown}/{total}" if self.filter_active else str(total), style)
            if alert:
                text.append(" ▲ surging", alert_style)
        return text
