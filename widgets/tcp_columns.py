"""The optional per-connection columns from the kernel's tcp_info (`c` chooses them): bytes, rates, rtt, cwnd ...

Each column takes its number from a connection's TcpInfo and Throughput and says how to print it. A socket with
no tcp_info (UDP, TIME_WAIT, a half-open request, or sockets read from /proc) shows `-`, never a made-up zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netscope.collectors.model import LiveTimer
from netscope.collectors.session.throughput import Throughput
from netscope.collectors.tcpinfo import TcpInfo
from netscope.collectors.timers import TIMER_KINDS
from netscope.widgets.formatting import format_age

Value = Callable[[TcpInfo, Throughput | None], float | None]


def needs_tcp_info(keys: list[str]) -> bool:
    """Whether these chosen columns need the worker to read tcp_info (and with it the timers)."""
    return any(key in METRIC_COLUMNS or key == TIMER_KEY for key in keys)


def timer_cell(timer: LiveTimer | None, now: float) -> str:
    """`keepalive 1h59m`, `timewait 40s`, `on 0.2s ×3`: the time left counted like ages (tens of seconds, then
    minutes), so a screen of timers does not repaint every second; under ten seconds, to the tenth."""
    if timer is None:
        return "-"
    kind = TIMER_KINDS.get(timer.kind, f"unkn-{timer.kind}")
    left = max(0.0, timer.deadline - now)
    text = f"{kind} {left:.1f}s" if left < 10 else f"{kind} {format_age(left)}"
    return f"{text} ×{timer.retransmits}" if timer.retransmits else text


def format_bytes(value: float) -> str:
    """`812`, `1.2K`, `34M`, `5.1G`: decimal units, compact enough for a table column."""
    for unit in ("", "K", "M", "G", "T"):
        if value < 1000 or unit == "T":
            if not unit:
                return f"{value:.0f}"
            return f"{value:.0f}{unit}" if value >= 99.95 else f"{value:.1f}{unit}"
        value /= 1000
    return f"{value:.1f}T"  # pragma: no cover - the loop always returns


def format_micros(value: float) -> str:
    """An rtt in microseconds as people read it: `45us`, `1.2ms`, `230ms`, `1.5s`."""
    if value < 1000:
        return f"{value:.0f}us"
    if value < 1_000_000:
        ms = value / 1000
        return f"{ms:.1f}ms" if ms < 99.95 else f"{ms:.0f}ms"
    return f"{value / 1_000_000:.1f}s"


def _short_rate(value: float) -> str:
    """Bytes a second as the byte columns print bytes (`812`, `1.6M`): the header says "/s"."""
    return format_bytes(value)


@dataclass(frozen=True, slots=True)
class MetricColumn:
    key: str
    label: str
    width: int
    description: str
    value: Value
    text: Callable[[float], str]


def _count(value: float) -> str:
    return f"{value:.0f}"


def _used(used: int | None, size: int | None) -> float | None:
    return None if used is None else float(used)


METRIC_COLUMN_LIST: tuple[MetricColumn, ...] = (
    MetricColumn("sent", "Sent", 6, "bytes sent and acknowledged (tcpi_bytes_acked)",
                 lambda info, _: info.bytes_acked, format_bytes),
    MetricColumn("received", "Rcvd", 6, "bytes received (tcpi_bytes_received)",
                 lambda info, _: info.bytes_received, format_bytes),
    MetricColumn("send_rate", "Send/s", 7, "bytes sent per second over the last refresh",
                 lambda _, rate: rate.send_rate if rate else None, _short_rate),
    MetricColumn("recv_rate", "Recv/s", 7, "bytes received per second over the last refresh",
                 lambda _, rate: rate.recv_rate if rate else None, _short_rate),
    MetricColumn("rtt", "RTT", 6, "smoothed round-trip time (tcpi_rtt)",
                 lambda info, _: info.rtt_us, format_micros),
    MetricColumn("rttvar", "RTTvar", 6, "round-trip time variation (tcpi_rttvar)",
                 lambda info, _: info.rttvar_us, format_micros),
    MetricColumn("cwnd", "Cwnd", 5, "congestion window, in segments (tcpi_snd_cwnd)",
                 lambda info, _: info.snd_cwnd, _count),
    MetricColumn("retrans", "Retr", 5, "segments retransmitted over the connection's life (tcpi_total_retrans)",
                 lambda info, _: info.total_retrans, _count),
    MetricColumn("lost", "Lost", 5, "segments the kernel counts as lost now (tcpi_lost)",
                 lambda info, _: info.lost, _count),
    MetricColumn("delivery_rate", "Deliv/s", 7, "the kernel's delivery rate estimate (tcpi_delivery_rate)",
                 lambda info, _: info.delivery_rate, _short_rate),
    MetricColumn("send_buffer", "SndBuf", 6, "bytes queued in the send buffer (SKMEMINFO)",
                 lambda info, _: _used(info.send_buffer_used, info.send_buffer), format_bytes),
    MetricColumn("recv_buffer", "RcvBuf", 6, "bytes held in the receive buffer (SKMEMINFO)",
                 lambda info, _: _used(info.recv_buffer_used, info.recv_buffer), format_bytes),
)
METRIC_COLUMNS: dict[str, MetricColumn] = {column.key: column for column in METRIC_COLUMN_LIST}
# The Timer column (netstat -o's): read with tcp_info, from the same dump, so choosing it collects them both.
TIMER_KEY = "timer"
TIMER_WIDTH = 15
# What `c` offers, in this order: (key, label, description).
CHOOSABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("container", "Container", "the owning process's container or systemd service (from its cgroup)"),
    (TIMER_KEY, "Timer", "the TCP timer running and the time until it fires, as netstat -o says: on "
     "(retransmission), keepalive, timewait, probe (zero window), ×N its retransmits or probes; sorts by time "
     "left"),
    *((column.key, column.label, column.description) for column in METRIC_COLUMN_LIST),
)
