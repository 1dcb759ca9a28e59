"""TCP timers, as `netstat -o` prints them: which timer runs, how long until it fires, and the retransmits and
probes it counts. Read when asked for (`-o`), in a dump of its own, so the every-refresh socket read (the hot path,
which skips these fields on purpose) stays as fast as it is.

Netlink sock_diag first: its `timer` and `expires` (milliseconds), and from tcp_info the two counters netstat
shows, `tcpi_retransmits` (icsk_retransmits) and `tcpi_probes` (icsk_probes_out), which is what /proc/net/tcp's
`retrnsmt` and `timeout` columns hold. /proc/net/tcp{,6} is the fallback (clock ticks there, not milliseconds).
UDP sockets have no timer: netstat prints `off (0.00/0/0)` for them, and so does timer_text() for a missing one.
"""

from __future__ import annotations

import os
import socket
from typing import NamedTuple

from netscope.collectors import netlink
from netscope.collectors.model import Socket
from netscope.collectors.procnet import hex_to_address
from netscope.collectors.sockdiag import (
    ALL_STATES,
    INET_DIAG_INFO,
    INET_DIAG_MSG,
    INET_DIAG_SKMEMINFO,
    SOCK_DIAG_BY_FAMILY,
    TCP_INFO_EXT,
    InetDiagMsg,
    build_request,
    parse_inet_diag_msg,
)
from netscope.collectors.socket_lookup import find_connection
from netscope.collectors.tcpinfo import TcpInfo, parse_tcp_info

# The kernel's timer numbers (inet_diag_msg.idiag_timer, /proc/net/tcp's `tr`) to netstat's words.
TIMER_KINDS = {0: "off", 1: "on", 2: "keepalive", 3: "timewait", 4: "probe"}
_TCP_INFO_PROBES_AT = 3  # struct tcp_info: state, ca_state, retransmits, probes, ...

# (proto, local ip, local port, remote ip, remote port, inode): how a timer finds its socket. The inode tells
# listeners sharing an address apart (SO_REUSEPORT); TIME_WAIT sockets have inode 0 in both readers.
TimerKey = tuple[str, str, int, str, int, int]


class Timer(NamedTuple):
    kind: str  # off, on (retransmission, or a request socket's SYN-ACK), keepalive, timewait, probe (zero window)
    seconds: float  # until it fires; 0 when off
    retransmits: int
    probes: int


NO_TIMER = Timer("off", 0.0, 0, 0)


def timer_text(timer: Timer | None) -> str:
    """netstat -o's Timer column, to the character: `keepalive (7179.88/0/0)`."""
    timer = timer or NO_TIMER
    return f"{timer.kind} ({timer.seconds:2.2f}/{timer.retransmits}/{timer.probes})"


class SocketProbe(NamedTuple):
    """What one lookup of one TCP socket says: its timer and (for a full socket) its tcp_info."""

    timer: Timer
    tcp_info: TcpInfo | None


def probe_socket(sock: Socket) -> SocketProbe | None:
    """The details of one connection, from a sock_diag lookup of that socket alone (about 0.1 ms, whatever the
    number of sockets): None for UDP, a socket that is gone, or a kernel that will not say. Blocking: call it in
    a thread."""
    if not sock.is_tcp:
        return None
    try:
        with netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG) as nl:
            message = find_connection(nl, sock, TCP_INFO_EXT)
    except (OSError, ValueError):  # netlink refused, or an address the kernel's lookup cannot take
        return None
    if message is None:
        return None
    timer = _timer(message, parse_inet_diag_msg(message.data, message.start))
    info = meminfo = None
    for attr_type, start, end in netlink.iter_attrs(message.data, message.start + INET_DIAG_MSG.size, message.end):
        if attr_type == INET_DIAG_INFO:
            info = message.data[start:end]
        elif attr_type == INET_DIAG_SKMEMINFO:
            meminfo = message.data[start:end]
    tcp_info = None
    if info is not None:
        try:
            tcp_info = parse_tcp_info(info, meminfo)
        except ValueError:  # shorter than any kernel's struct tcp_info: shown as none
            tcp_info = None
    return SocketProbe(timer, tcp_info)


def read_timers() -> tuple[dict[TimerKey, Timer], str]:
    """Every TCP socket's timer, and where they were read from ("netlink" or "/proc/net")."""
    try:
        return _read_netlink(), "netlink"
    except OSError:  # netlink forbidden or missing (a NetlinkError is an OSError too): what netstat reads
        return read_proc_timers(), "/proc/net"


def _read_netlink() -> dict[TimerKey, Timer]:
    timers: dict[TimerKey, Timer] = {}
    ext = 1 << (INET_DIAG_INFO - 1)  # tcp_info's counters; no meminfo needed here
    with netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG) as sock:
        for family, proto in ((socket.AF_INET, "tcp"), (socket.AF_INET6, "tcp6")):
            request = build_request(family, socket.IPPROTO_TCP, ALL_STATES, ext)
            for message in sock.dump(SOCK_DIAG_BY_FAMILY, request, f"dump of {proto} timers"):
                if message.type != SOCK_DIAG_BY_FAMILY or message.end - message.start < INET_DIAG_MSG.size:
                    continue
                msg = parse_inet_diag_msg(message.data, message.start)
                size = 4 if family == socket.AF_INET else 16
                local = socket.inet_ntop(family, msg.src[:size])
                remote = socket.inet_ntop(family, msg.dst[:size])
                timers[(proto, local, msg.sport, remote, msg.dport, msg.inode)] = _timer(message, msg)
    return timers


def _timer(message: netlink.Message, msg: InetDiagMsg) -> Timer:
    """The timer of one sock_diag message, with (retransmits, probes) as /proc/net/tcp has them. A full socket's
    tcp_info holds both; without one (a request or TIME_WAIT socket) the message's own `retrans` is the request's
    SYN-ACK retransmits."""
    retransmits, probes = (msg.retrans, 0) if msg.timer == 1 else (0, 0)
    for attr_type, start, end in netlink.iter_attrs(message.data, message.start + INET_DIAG_MSG.size, message.end):
        if attr_type == INET_DIAG_INFO and end - start > _TCP_INFO_PROBES_AT:
            retransmits, probes = message.data[start + 2], message.data[start + _TCP_INFO_PROBES_AT]
    seconds = msg.expires / 1000 if msg.timer else 0.0
    return Timer(TIMER_KINDS.get(msg.timer, f"unkn-{msg.timer}"), seconds, retransmits, probes)


def read_proc_timers(proc_root: str = "/proc") -> dict[TimerKey, Timer]:
    """The fallback: /proc/net/tcp{,6}'s `tr tm->when retrnsmt uid timeout inode` columns. A missing or unreadable
    file gives no timers (the socket read already says why its sockets are missing)."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    timers: dict[TimerKey, Timer] = {}
    for proto in ("tcp", "tcp6"):
        try:
            with open(f"{proc_root.rstrip('/')}/net/{proto}", encoding="ascii", errors="replace") as file:
                lines = file.read().split("\n")[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            try:
                local_hex, local_port = fields[1].split(":")
                remote_hex, remote_port = fields[2].split(":")
                kind, when = fields[5].split(":")
                key = (proto, hex_to_address(local_hex), int(local_port, 16), hex_to_address(remote_hex),
                       int(remote_port, 16), int(fields[9]))  # fmt: skip
                number = int(kind, 16)
                seconds = int(when, 16) / ticks_per_second if number else 0.0
                timers[key] = Timer(TIMER_KINDS.get(number, f"unkn-{number}"), seconds, int(fields[6], 16),
                                    int(fields[8]))  # fmt: skip
            except ValueError:
                continue  # a half line of a file that changed while it was read
    return timers
