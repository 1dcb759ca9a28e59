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

    Minutes drop the seconds so that old rows do not repaint every second over SSH.
    """
    seconds = max(0, int(seconds))
    if seconds < 60:
        text = f"{seconds}s"
    elif seconds < 3600:
        text = f"{seconds // 60}m"
    elif seconds < 86400:
        text = f"{seconds // 3600}h{seconds % 3600 // 60}m"
    else:
        text = f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    return f">{text}" if lower_bound else text
