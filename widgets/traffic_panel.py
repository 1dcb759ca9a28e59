"""The compact RX/TX panel on the connections screen: the busiest interfaces right now, with a short history."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from netscope.collectors.interfaces import Interface
from netscope.widgets.formatting import format_rate, printable, sparkline

SHOWN = 3
SPARK_WIDTH = 12
# B/s: sparklines are scaled to at least this, so a trickle (an SSH session's own bytes on lo) draws nearly flat
# instead of a jagged line that changes shape, and is resent, every few seconds.
SPARK_FLOOR = 4000.0


class TrafficPanel(Widget):
    COMPONENT_CLASSES = {"traffic-panel--name", "traffic-panel--rx", "traffic-panel--tx", "traffic-panel--down"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.busiest: list[Interface] = []
        self.rates: dict[str, tuple[float, float]] = {}
        self.sparklines: dict[str, tuple[str, str]] = {}  # as last drawn; redrawn only when asked
        self._signature: list[tuple[object, ...]] = []

    def show_interfaces(self, interfaces: list[Interface], rates: dict[str, tuple[float, float]] | None = None, *,
                        sparklines: bool = True, redraw_sparklines: bool = True) -> None:
        """The busiest interfaces; `rates` (rx, tx by name) as they should read (steadied by the caller; default:
        the interfaces' own), sparklines drawn anew only when `redraw_sparklines`, none if not `sparklines`."""
        given = rates or {}
        every = {i.name: given.get(i.name, (i.rx_bytes_per_s, i.tx_bytes_per_s)) for i in interfaces}
        before = {i.name: index for index, i in enumerate(self.busiest)}
        # Ordered by the rates as shown, ties kept where they were: interfaces must not swap places on a wobble.
        busiest = sorted(interfaces, key=lambda i: (-sum(every[i.name]), before.get(i.name, SHOWN)))[:SHOWN]
        self.rates = {i.name: every[i.name] for i in busiest}
        if not sparklines:
            self.sparklines = {}
        elif redraw_sparklines or any(i.name not in self.sparklines for i in busiest):
            self.sparklines = {i.name: (sparkline(i.rx_history, SPARK_WIDTH, SPARK_FLOOR),
                                        sparkline(i.tx_history, SPARK_WIDTH, SPARK_FLOOR))
                               for i in busiest}
        signature: list[tuple[object, ...]] = [
            (i.name, i.up, format_rate(self.rates[i.name][0]), format_rate(self.rates[i.name][1]),
             self.sparklines.get(i.name))
            for i in busiest
        ]
        self.busiest = busiest
        if signature != self._signature:  # an idle link draws the same line: do not resend it
            self._signature = signature
            self.refresh()

    def render(self) -> Text:
        name_style = self.get_component_rich_style("traffic-panel--name", partial=True)
        rx_style = self.get_component_rich_style("traffic-panel--rx", partial=True)
        tx_style = self.get_component_rich_style("traffic-panel--tx", partial=True)
        down_style = self.get_component_rich_style("traffic-panel--down", partial=True)
        text = Text(no_wrap=True, overflow="ellipsis")
        if not self.busiest:
            text.append("interfaces: reading…", down_style)
        for index, interface in enumerate(self.busiest):
            if index:
                text.append("  │  ")
            rx, tx = self.rates.get(interface.name, (interface.rx_bytes_per_s, interface.tx_bytes_per_s))
            rx_spark, tx_spark = self.sparklines.get(interface.name, ("", ""))
            text.append(printable(interface.name), name_style if interface.up else down_style)
            text.append(" ↓")
            text.append(f"{format_rate(rx):>9}", rx_style)
            if rx_spark:
                text.append(f" {rx_spark}", rx_style)
            text.append(" ↑")
            text.append(f"{format_rate(tx):>9}", tx_style)
            if tx_spark:
                text.append(f" {tx_spark}", tx_style)
        return text
