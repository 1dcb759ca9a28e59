"""The compact RX/TX panel on the connections screen: the busiest interfaces right now, with a short history."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from netscope.collectors.interfaces import Interface
from netscope.widgets.formatting import format_rate, printable, sparkline

SHOWN = 3
SPARK_WIDTH = 12


class TrafficPanel(Widget):
    COMPONENT_CLASSES = {"traffic-panel--name", "traffic-panel--rx", "traffic-panel--tx", "traffic-panel--down"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.busiest: list[Interface] = []
        self._signature: list[tuple[str, bool, str, str, str, str]] = []

    def show_interfaces(self, interfaces: list[Interface]) -> None:
        busiest = sorted(interfaces, key=lambda i: i.rx_bytes_per_s + i.tx_bytes_per_s, reverse=True)[:SHOWN]
        signature = [
            (i.name, i.up, format_rate(i.rx_bytes_per_s), format_rate(i.tx_bytes_per_s),
             sparkline(i.rx_history, SPARK_WIDTH), sparkline(i.tx_history, SPARK_WIDTH))
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
            text.append(printable(interface.name), name_style if interface.up else down_style)
            text.append(" ↓")
            text.append(f"{format_rate(interface.rx_bytes_per_s):>9} ", rx_style)
            text.append(sparkline(interface.rx_history, SPARK_WIDTH), rx_style)
            text.append(" ↑")
            text.append(f"{format_rate(interface.tx_bytes_per_s):>9} ", tx_style)
            text.append(sparkline(interface.tx_history, SPARK_WIDTH), tx_style)
        return text
