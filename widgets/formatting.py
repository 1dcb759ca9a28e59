"""How socket fields read on screen: endpoints, states and ages, the way netstat and ss users expect."""

from __future__ import annotations

from netscope.collectors.model import Socket


def format_endpoint(ip: str, port: int, proto: str = "tcp") -> str:
    """`127.0.0.1:80`, `[::1]:80`; a zero port is `*`, as netstat prints an unconnected peer."""
    port_text = str(port) if port else "*"
    if ":" in ip:
        return f"[{ip}]:{port_text}"
    return f"{ip}:{port_text}"


def state_label(sock: Socket) -> str:
    # The kernel's NEW_SYN_RECV is a request socket for a SYN_RECV connection; netstat and ss both say SYN_RECV.
    return "SYN_RECV" if sock.state == "NEW_SYN_RECV" else sock.state


def format_age(seconds: float, lower_bound: bool = False) -> str:
    """Compact age: `42s`, `12m`, `5h12m`, `3d4h`; `>` marks sockets that were already open when netscope started.

    Minutes drop the seconds so that old rows do not repaint every second over SSH. A socket older than netscope
    is `>0m` for its first minute: the seconds of a lower bound say nothing, and counting them would repaint
    every such row every second (23 KB/s to the terminal in netscope's first minute).
    """
    seconds = max(0, int(seconds))
    if seconds < 60 and lower_bound:
        return ">0m"
    if seconds < 60:
        text = f"{seconds}s"
    elif seconds < 3600:
        text = f"{seconds // 60}m"
    elif seconds < 86400:
        text = f"{seconds // 3600}h{seconds % 3600 // 60}m"
    else:
        text = f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    return f">{text}" if lower_bound else text


SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def format_rate(bytes_per_second: float) -> str:
    """`0 B/s`, `812 B/s`, `1.2 KB/s`, `34 MB/s`: decimal units, as network rates are quoted."""
    value = max(0.0, bytes_per_second)
    for unit in ("B/s", "KB/s", "MB/s", "GB/s"):
        if value < 1000 or unit == "GB/s":
            # 99.97 would print as "100.0": switch to whole numbers where rounding would reach three digits.
            return f"{value:.0f} {unit}" if value >= 99.95 or unit == "B/s" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB/s"  # pragma: no cover - the loop always returns


def format_count(value: float) -> str:
    """Packets per second and the like: `0`, `12`, `3.4k`, `1.2M`."""
    value = max(0.0, value)
    if value < 1000:
        return f"{value:.0f}"
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"


def sparkline(values: list[float], width: int) -> str:
    """The last `width` values as block characters scaled to their own maximum (all zero: a flat line)."""
    recent = values[-width:] if width > 0 else []
    peak = max(recent, default=0.0)
    if peak <= 0:
        return SPARK_LEVELS[0] * len(recent)
    top = len(SPARK_LEVELS) - 1
    return "".join(SPARK_LEVELS[min(top, int(value / peak * top + 0.5))] for value in recent)
