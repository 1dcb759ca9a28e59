"""How sockets and system text read, on screen, in netscope's printed tables and in exports: endpoints, owners,
states, ages, and the escaping of text that the system's users chose. One module, so the
table, `--once` and the `e` export say the same thing the same way."""

from __future__ import annotations

import re

from rich.cells import cell_len, set_cell_size

from netscope.collectors.conntrack import Flow, Tuple
from netscope.collectors.model import Socket, is_unix
from netscope.collectors.session.folding import FoldedSockets


def format_endpoint(ip: str, port: int, proto: str = "tcp") -> str:
    """`127.0.0.1:80`, `[::1]:80`; a zero port is `*`, as netstat prints an unconnected peer. A unix socket is
    its path and inode as `ss -x` prints them (`/run/x.sock 12345`, `* 0` for no peer); the path is the
    system's text: show it through printable()."""
    if is_unix(proto):
        return f"{ip or '*'} {port}"
    port_text = str(port) if port else "*"
    if ":" in ip:
        return f"[{ip}]:{port_text}"
    return f"{ip}:{port_text}"


def flow_tuple_text(end: Tuple) -> str:
    """One tuple of a tracked flow: `10.0.1.2:40000 → 10.0.2.2:8080`; ICMP's type, code and id instead of ports."""
    if end.sport is None and end.dport is None:
        icmp = f"  (type {end.icmp[0]} code {end.icmp[1]} id {end.icmp[2]})" if end.icmp is not None else ""
        return f"{end.src} → {end.dst}{icmp}"
    return f"{format_endpoint(end.src, end.sport or 0)} → {format_endpoint(end.dst, end.dport or 0)}"


def flow_end_text(flow: Flow) -> str:
    """Where this host is an end of a tracked flow: `client 1234/curl`, `server 88/nginx`, both, or ""."""
    ends = (("client", flow.client), ("server", flow.server))
    return "  ".join(f"{side} {owner_text(sock)}" for side, sock in ends if sock is not None)


def owner_text(sock: Socket) -> str:
    """PID/Program as netstat prints it: `1234/nginx`, `1234/?` when the name could not be read, `-` when no
    process is known to own the socket; a folded row, how many ownerless sockets it stands for."""
    if isinstance(sock, FoldedSockets):
        return f"×{sock.count:,} no owner"
    if sock.pid is None:
        return "-"
    return f"{sock.pid}/{printable(sock.program) or '?'}"


def state_label(sock: Socket) -> str:
    # The kernel's NEW_SYN_RECV is a request socket for a SYN_RECV connection; netstat and ss both say SYN_RECV.
    return "SYN_RECV" if sock.state == "NEW_SYN_RECV" else sock.state


def format_age(seconds: float, lower_bound: bool = False, coarse: bool = False) -> str:
    """Compact age: `7s`, `40s`, `12m`, `5h12m`, `3d4h`; `>` marks sockets that were already open when netscope
    started.

    Seconds count one by one for the first ten (a connection that is just opening), then in steps of ten (`40s` is
    40 to 49 s): a screen of young keep-alive connections would otherwise repaint every row every second, and a
    ticking column of seconds is not something a person reads.

    Minutes drop the seconds so that old rows do not repaint every second over SSH. A socket older than netscope
    is `>0m` for its first minute: the seconds of a lower bound say nothing, and counting them would repaint
    every such row every second (23 KB/s to the terminal in netscope's first minute). `coarse` (the low-bandwidth
    mode) says `<1m` for the first minute too: on a busy server every young row would repaint each second.
    """
    seconds = max(0, int(seconds))
    if seconds < 60 and lower_bound:
        return ">0m"
    if seconds < 60 and coarse:
        return "<1m"
    if seconds < 10:
        text = f"{seconds}s"
    elif seconds < 60:
        text = f"{seconds // 10 * 10}s"
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


def sparkline(values: list[float], width: int, floor: float = 0.0) -> str:
    """The last `width` values as block characters scaled to their own maximum, or to `floor` if that is higher
    (all zero: a flat line)."""
    recent = values[-width:] if width > 0 else []
    peak = max(max(recent, default=0.0), floor)
    if peak <= 0:
        return SPARK_LEVELS[0] * len(recent)
    top = len(SPARK_LEVELS) - 1
    return "".join(SPARK_LEVELS[min(top, int(value / peak * top + 0.5))] for value in recent)


# --- text the system chose: escaped, cropped, never a formula ---------------------------------------------------


def printable(text: str) -> str:
    """Escape every character that is not printable (control, format and bidi characters) as \\xNN or \\uNNNN.

    Process names and host names are attacker-controlled: an escape sequence or a right-to-left override must
    not reach the terminal or reorder what the user reads. Callers render the result as plain text, never markup.
    """
    if text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def fit(text: str, width: int, align_right: bool = False) -> str:
    """Pad or crop `text` to exactly `width` terminal cells (wide characters count as two)."""
    if width <= 0:
        return ""
    length = cell_len(text)
    if length == width:
        return text
    if length < width:
        padding = " " * (width - length)
        return padding + text if align_right else text + padding
    # Cropped text ends in an ellipsis so a truncated name is never mistaken for a whole one.
    return set_cell_size(text, width - 1) + "…"


def shortened(text: str, width: int) -> str:
    """`text` as it is if it fits in `width` cells, else cropped to them with an ellipsis."""
    return text if cell_len(text) <= width else fit(text, width)


def capped(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and how many more there are."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit:,} characters)"


# What a spreadsheet takes for the start of a formula (OWASP, "CSV Injection"): =, +, -, @, and tab or CR before
# them. A cell that is only a number ("-5", "+3", "1,024.5") or a lone "-" is left as it is: no formula there.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[\d.,]+%?|-")


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs: one that could start a formula gets a leading
    apostrophe, as OWASP recommends (`=HYPERLINK("x")` is written `'=HYPERLINK("x")`)."""
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
