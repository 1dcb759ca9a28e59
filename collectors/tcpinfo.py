"""TCP internals of one connection: the kernel's struct tcp_info and socket memory, as sock_diag reports them.

`parse_tcp_info` reads a struct tcp_info (include/uapi/linux/tcp.h) by the kernel's own byte offsets, whatever its
length: the struct grows with kernel versions, and the kernel sends its own size (INET_DIAG_INFO over sock_diag,
getsockopt(TCP_INFO) up to what was asked). A field that lies beyond the data is None ("this kernel does not say"),
never 0. The counters `bytes_acked` and `bytes_received` (Linux 4.1+) are what per-connection throughput is made
of, so a struct too short to hold them is refused (ValueError): the socket then has no TcpInfo, and the UI shows
"-" rather than a wrong number.

The socket memory comes from INET_DIAG_SKMEMINFO (the `skmem:(r..,rb..,t..,tb..,f..,w..,...)` of `ss -m`): a u32
array indexed by SK_MEMINFO_* (include/uapi/linux/sock_diag.h). These are bytes of memory the kernel charges to
the socket (buffers with their overhead), not payload bytes: compare `*_used` with its limit, not with the queues.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Offsets in struct tcp_info (include/uapi/linux/tcp.h) of the fields kept, in offset order, which is also the
# order of TcpInfo's first fields: one unpack then gives the constructor's arguments in order.
#   name, offset, struct code; in the comments, the kernel version that added the field where it is after 3.x
TCP_INFO_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("retransmits", 2, "B"),  # tcpi_retransmits
    ("rto_us", 8, "I"),  # tcpi_rto
    ("snd_mss", 16, "I"),
    ("lost", 32, "I"),  # tcpi_lost
    ("rtt_us", 68, "I"),  # tcpi_rtt
    ("rttvar_us", 72, "I"),
    ("snd_cwnd", 80, "I"),
    ("total_retrans", 100, "I"),
    ("bytes_acked", 120, "Q"),  # 4.1
    ("bytes_received", 128, "Q"),  # 4.1
    ("notsent_bytes", 144, "I"),  # 4.6
    ("min_rtt_us", 148, "I"),  # 4.6
    ("delivery_rate", 160, "Q"),  # 4.9
    ("bytes_sent", 200, "Q"),  # 4.19
    ("bytes_retrans", 208, "Q"),  # 4.19
    ("snd_wnd", 228, "I"),  # 5.4
)
TCP_INFO_MIN_LEN = 136  # through tcpi_bytes_received (Linux 4.1, 2015): shorter is refused
MIN_RTT_UNKNOWN = 0xFFFFFFFF  # tcpi_min_rtt before the first RTT sample (minmax_reset to ~0U)


def _layout(fields: tuple[tuple[str, int, str], ...]) -> struct.Struct:
    """One Struct reading `fields` at their offsets, the bytes between them skipped."""
    fmt, at = "=", 0
    for _name, offset, code in fields:
        if offset > at:
            fmt += f"{offset - at}x"
        fmt += code
        at = offset + struct.calcsize("=" + code)
    return struct.Struct(fmt)


_FULL = _layout(TCP_INFO_FIELDS)  # every field there: the one-unpack path (kernel 5.4+)
TCP_INFO_FULL_LEN = _FULL.size  # a struct this long holds every field TcpInfo has
MIN_RTT_INDEX = [name for name, _o, _c in TCP_INFO_FIELDS].index("min_rtt_us")
_BY_FIELD = tuple((offset, struct.Struct("=" + code)) for _name, offset, code in TCP_INFO_FIELDS)
# u32s in SK_MEMINFO_* order (include/uapi/linux/sock_diag.h): rmem_alloc, rcvbuf, wmem_alloc, sndbuf, fwd_alloc,
# wmem_queued; Linux 3.6+ sends 8 or 9 of them.
_MEMINFO = struct.Struct("=6I")
MEMINFO_MIN_LEN = _MEMINFO.size
_NO_MEMINFO = (None, None, None, None)


@dataclass(slots=True, frozen=True)
class TcpInfo:
    """What the kernel says about one TCP connection's internals. Fields are in struct order (for speed):
    construct it with keywords. None: this kernel's struct is too short to hold the field, or (min_rtt_us) the
    connection has no RTT sample yet, or (the buffer fields) the kernel sent no socket memory."""

    retransmits: int  # tcpi_retransmits: RTO timeouts in a row not yet recovered from (0 when healthy)
    rto_us: int  # tcpi_rto: the retransmission timeout now
    snd_mss: int
    lost: int  # tcpi_lost: segments presumed lost now
    rtt_us: int  # tcpi_rtt: smoothed round-trip time
    rttvar_us: int
    snd_cwnd: int  # congestion window, in segments
    total_retrans: int  # tcpi_total_retrans: segments retransmitted over the connection's life
    bytes_acked: int  # tcpi_bytes_acked: bytes sent and acknowledged ("bytes sent"; the SYN and FIN count 1 each)
    bytes_received: int  # tcpi_bytes_received (the peer's FIN counts 1)
    notsent_bytes: int | None  # written by the process, not yet sent (4.6+)
    min_rtt_us: int | None  # 4.6+; None before the first RTT sample
    delivery_rate: int | None  # bytes/s of the most recent delivery sample (4.9+)
    bytes_sent: int | None  # tcpi_bytes_sent, retransmissions included (4.19+)
    bytes_retrans: int | None  # 4.19+
    snd_wnd: int | None  # the peer's advertised receive window, in bytes (5.4+)
    # INET_DIAG_SKMEMINFO. Send: wmem_queued, not wmem_alloc: wmem_queued is what TCP holds for sending (unsent
    # and unacknowledged data) and what it compares with sndbuf before blocking the writer; wmem_alloc only counts
    # packets handed to the device and not yet freed, ~0 on an idle or loopback connection.
    send_buffer_used: int | None
    send_buffer: int | None  # sndbuf
    recv_buffer_used: int | None  # rmem_alloc: received data the process has not read yet, with overhead
    recv_buffer: int | None  # rcvbuf


def tcp_info_values(data: bytes | bytearray | memoryview, offset: int, length: int) -> tuple[int | None, ...]:
    """The TcpInfo fields read from a struct tcp_info of `length` bytes at `data[offset:]`, in TcpInfo's order
    (the first len(TCP_INFO_FIELDS)). Raises ValueError when it is shorter than TCP_INFO_MIN_LEN."""
    if length >= _FULL.size:
        values: tuple[int | None, ...] = _FULL.unpack_from(data, offset)
    elif length < TCP_INFO_MIN_LEN:
        raise ValueError(
            f"struct tcp_info of {length} bytes is too short to hold the byte counters "
            f"(at least {TCP_INFO_MIN_LEN}: Linux 4.1+)"
        )
    else:  # an older kernel: the fields that fit, None for the rest
        values = tuple(
            one.unpack_from(data, offset + at)[0] if at + one.size <= length else None for at, one in _BY_FIELD
        )
    if values[MIN_RTT_INDEX] == MIN_RTT_UNKNOWN:
        values = (*values[:MIN_RTT_INDEX], None, *values[MIN_RTT_INDEX + 1 :])
    return values


def meminfo_values(
    data: bytes | bytearray | memoryview | None, offset: int = 0, length: int = 0
) -> tuple[int | None, ...]:
    """(send_buffer_used, send_buffer, recv_buffer_used, recv_buffer) from an INET_DIAG_SKMEMINFO array of
    `length` bytes at `data[offset:]`; Nones when there is none, or it is too short (older than Linux 3.6)."""
    if data is None or length < _MEMINFO.size:
        return _NO_MEMINFO
    rmem, rcvbuf, _wmem_alloc, sndbuf, _fwd, wmem_queued = _MEMINFO.unpack_from(data, offset)
    return wmem_queued, sndbuf, rmem, rcvbuf


def parse_tcp_info(data: bytes | memoryview, meminfo: bytes | memoryview | None) -> TcpInfo:
    """A TcpInfo from a struct tcp_info (INET_DIAG_INFO's payload, or getsockopt(TCP_INFO)'s result) and an
    optional INET_DIAG_SKMEMINFO payload. Raises ValueError when `data` is too short (see the module docstring)."""
    mem = meminfo_values(meminfo, 0, len(meminfo)) if meminfo is not None else _NO_MEMINFO
    return TcpInfo(*tcp_info_values(data, 0, len(data)), *mem)  # type: ignore[arg-type]
