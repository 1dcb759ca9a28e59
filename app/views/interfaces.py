"""View 2, `netstat -i` live: every interface's state, counters and rates, and the selected one's history."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, Sparkline, Static

from netscope.collectors.interfaces import Interface, InterfaceSnapshot
from netscope.widgets.formatting import format_count, format_rate, printable, sparkline
from netscope.widgets.live_table import LiveRow, LiveTable

COLUMNS = (
    "Iface", "State", "MTU", "Flags", "Speed", "RX/s", "TX/s",
    "RX-OK", "RX-ERR", "RX-DRP", "RX-OVR", "TX-OK", "TX-ERR", "TX-DRP", "TX-OVR", "RX history",
)
HISTORY_WIDTH = 16


def _state(interface: Interface) -> str:
    if not interface.up:
        return "DOWN"
    return "UP" if interface.running else "NO-CARRIER"


def _speed(interface: Interface) -> str:
    if interface.speed_mbps is None:
        return "-"
    return f"{interface.speed_mbps // 1000}G" if interface.speed_mbps >= 1000 else f"{interface.speed_mbps}M"


def interface_row(interface: Interface) -> LiveRow:
    counters = interface.counters
    numbers = (
        counters.rx_packets, counters.rx_errors, counters.rx_dropped, counters.rx_fifo,
        counters.tx_packets, counters.tx_errors, counters.tx_dropped, counters.tx_fifo,
    )
    cells: list[str | Text] = [
        interface.name,
        _state(interface),
        Text(str(interface.mtu), justify="right"),
        interface.flags,
        Text(_speed(interface), justify="right"),
        Text(format_rate(interface.rx_bytes_per_s), justify="right"),
        Text(format_rate(interface.tx_bytes_per_s), justify="right"),
        *(Text(str(number), justify="right") for number in numbers),
        Text(sparkline(interface.rx_history, HISTORY_WIDTH)),
    ]
    return LiveRow(interface.name, cells, emphasis="" if interface.up else "dim")


def describe(interface: Interface) -> Text:
    text = Text()
    text.append(printable(interface.name), "bold")
    text.append(f"   index {interface.index}  {_state(interface)}  mtu {interface.mtu}  flags {interface.flags}")
    text.append(f"  speed {_speed(interface)}")
    if interface.mac:
        text.append(f"  mac {interface.mac}")
    text.append(f"\nRX {format_rate(interface.rx_bytes_per_s)}, {format_count(interface.rx_packets_per_s)} pkt/s")
    text.append(f"   TX {format_rate(interface.tx_bytes_per_s)}, {format_count(interface.tx_packets_per_s)} pkt/s")
    counters = interface.counters
    text.append(f"\nRX bytes {counters.rx_bytes:,}  frame {counters.rx_frame}  multicast {counters.rx_multicast}")
    text.append(f"   TX bytes {counters.tx_bytes:,}  collisions {counters.tx_collisions}")
    text.append(f"  carrier {counters.tx_carrier}")
    addresses = [*interface.ipv4, *interface.ipv6]
    text.append("\n" + ("  ".join(printable(address) for address in addresses) or "no addresses"))
    return text


class InterfacesView(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.snapshot: InterfaceSnapshot | None = None
        # Held, not queried: data may arrive before this view is composed.
        self.table = LiveTable(COLUMNS, id="interfaces-table", highlight_changes=False)
        self.info = Static("", id="interface-info")
        self.rx_label = Label("RX, last minutes", id="rx-label")
        self.rx_history = Sparkline([], id="rx-history")
        self.tx_label = Label("TX, last minutes", id="tx-label")
        self.tx_history = Sparkline([], id="tx-history")

    def compose(self) -> ComposeResult:
        yield self.table
        with Horizontal(id="interface-detail"):
            yield self.info
            with Vertical(id="interface-history"):
                yield self.rx_label
                yield self.rx_history
                yield self.tx_label
                yield self.tx_history

    def show(self, snapshot: InterfaceSnapshot) -> None:
        self.snapshot = snapshot
        self.table.show_rows([interface_row(interface) for interface in snapshot.interfaces], snapshot.taken_at)
        self._show_selected()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        if self.snapshot is None or not self.snapshot.interfaces:
            return
        by_name = {interface.name: interface for interface in self.snapshot.interfaces}
        interface = by_name.get(str(self.table.selected_key)) or self.snapshot.interfaces[0]
        self.info.update(describe(interface))
        self.rx_history.data = interface.rx_history or [0.0]
        self.tx_history.data = interface.tx_history or [0.0]
        self.rx_label.update(
            Text(f"RX {printable(interface.name)}: now {format_rate(interface.rx_bytes_per_s)}, "
                 f"peak {format_rate(max(interface.rx_history, default=0.0))}")
        )
        self.tx_label.update(
            Text(f"TX {printable(interface.name)}: now {format_rate(interface.tx_bytes_per_s)}, "
                 f"peak {format_rate(max(interface.tx_history, default=0.0))}")
        )
