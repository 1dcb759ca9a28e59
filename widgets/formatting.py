"""How sockets and system text read, on screen, in netscope's printed tables and in exports: endpoints, owners,
states, ages, the order of addresses, and the escaping of text that the system's users chose. One module, so the
table, `--once` and the `e` export say the same thing the same way."""

from __future__ import annotations

import re
import socket
import struct
from functools import lru_cache

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


@lru_cache(maxsize=65536)
def ip_order(ip: str) -> tuple[int, bytes]:
    """Numeric order for addresses (10.0.0.9 before 10.0.0.10), IPv4 before IPv6. inet_pton, not ipaddress: a
    flood from 50,000 addresses is sorted at start, and ipaddress takes ten times as long per address."""
    try:
        if ":" in ip:
            return (6, socket.inet_pton(socket.AF_INET6, ip))
        return (4, socket.inet_pton(socket.AF_INET, ip))
    except OSError:
        return (9, ip.encode())


@lru_cache(maxsize=65536)
def address_sort_bytes(ip: str) -> bytes:
    """ip_order as one bytes string that sorts the same way: its version, then the address (a text that is no
    address, such as a unix socket's path, ends with NUL, so that no key is the start of another)."""
    version, packed = ip_order(ip)
    return bytes((version,)) + packed + (b"\0" if version == 9 else b"")


_PORT = struct.Struct(">I").pack  # a port, or a unix socket's inode where it stands in for one


def endpoints_sort_bytes(first_ip: str, first_port: int, second_ip: str, second_port: int) -> bytes:
    """(address, port, address, port) in number order, as one bytes string: sorting 100,000 rows compares
    bytes (memcmp) in a third of the time it takes to compare tuples of tuples (measured)."""
    return address_sort_bytes(first_ip) + _PORT(first_port) + address_sort_bytes(second_ip) + _PORT(second_port)


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
