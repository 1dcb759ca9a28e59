"""Protocol statistics (`netstat -s`): every counter of /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6.

The files describe the network namespace of the process that reads them (or of PID with proc_root=/proc/PID).
Nothing here hard-codes which counters exist: every group and name the kernel prints is returned, in its order,
so counters added by newer kernels show up without a code change. Only the readable labels and the list of
gauges are tables, and both are keyed by (group, name), so an unknown counter just gets no label.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from netscope.collectors.proc_files import read_proc_text, skipped_lines_warning


@dataclass(slots=True, frozen=True)
class ProtocolCounter:
    group: str  # Ip, Icmp, IcmpMsg, Tcp, Udp, UdpLite, TcpExt, IpExt, MPTcpExt, Ip6, Icmp6, Udp6, UdpLite6
    name: str  # the kernel's name, e.g. RetransSegs, ListenOverflows, Ip6InReceives
    value: int
    delta: int  # change since the previous sample (0 on the first)
    rate: float  # delta per second
    label: str = ""  # readable words for the counters people look for, e.g. "segments retransmitted"
    is_gauge: bool = False  # a level or a setting (CurrEstab, MaxConn, RtoMin, Forwarding), not a running count


@dataclass(slots=True)
class StatsSnapshot:
    taken_at: float
    counters: list[ProtocolCounter]  # in the kernel's order, group by group
    warnings: list[str] = field(default_factory=list)


class RawCounter(NamedTuple):
    """One counter as a parser found it: no history, no label."""

    group: str
    name: str
    value: int


# Levels and settings rather than running counts. Their delta and rate are signed (CurrEstab 10 -> 8 is -2):
# a level going down is news, not a counter reset. Found by reading the kernel's MIB definitions
# (include/uapi/linux/snmp.h, net/ipv4/proc.c, net/mptcp/mib.c, net/sctp/proc.c): every other entry is only
# ever incremented, including all of Udp/UdpLite/Udp6 (MemErrors, IgnoredMulti are counts), all of TcpExt
# (TCPMemoryPressures counts entries into pressure, TCPMemoryPressuresChrono accumulates milliseconds), IpExt,
# Icmp/IcmpMsg/Icmp6 and Ip6.
GAUGES: frozenset[tuple[str, str]] = frozenset(
    {
        ("Ip", "Forwarding"),  # sysctl net.ipv4.ip_forward as SNMP ipForwarding: 1 forwarding, 2 not
        ("Ip", "DefaultTTL"),  # sysctl net.ipv4.ip_default_ttl
        ("Tcp", "RtoAlgorithm"),  # constant 1 ("other")
        ("Tcp", "RtoMin"),  # ms, constant TCP_RTO_MIN
        ("Tcp", "RtoMax"),  # ms, constant TCP_RTO_MAX
        ("Tcp", "MaxConn"),  # constant -1: no fixed limit
        ("Tcp", "CurrEstab"),  # sockets now in ESTABLISHED or CLOSE_WAIT
        ("MPTcpExt", "MPCurrEstab"),  # MPTCP connections now established (kernel >= 6.10)
        ("Sctp", "SctpCurrEstab"),  # SCTP associations now established (/proc/net/sctp/snmp)
    }
)

# Groups whose kernel printout leaves out zero entries (icmpmsg_put and snmp6_seq_show_icmpv6 print only the
# message types seen so far), so a name that first appears in a later sample went up from 0 since the last one.
_SPARSE = re.compile(r"(?:In|Out)Type\d+\Z")

# Readable words for the 80 counters an on-call engineer looks at first: drops, errors, resets, retransmits, queue
# overflows, SYN cookies, memory pressure. net-tools' statistics.c text where it has one (made into a phrase that
# stands alone where netstat prints it under a heading, e.g. "with invalid headers"; its "TCPLostRetransmits" never
# matched the kernel's TCPLostRetransmit), otherwise words in the same style.
LABELS: dict[tuple[str, str], str] = {
    ("Ip", "Forwarding"): "IP forwarding (1 = on, 2 = off)",
    ("Ip", "InReceives"): "total packets received",
    ("Ip", "InHdrErrors"): "packets received with invalid headers",
    ("Ip", "InAddrErrors"): "packets received with invalid addresses",
    ("Ip", "ForwDatagrams"): "packets forwarded",
    ("Ip", "InDiscards"): "incoming packets discarded",
    ("Ip", "InDelivers"): "incoming packets delivered",
    ("Ip", "OutRequests"): "requests sent out",
    ("Ip", "OutDiscards"): "outgoing packets dropped",
    ("Ip", "OutNoRoutes"): "dropped because of missing route",
    ("Ip", "ReasmFails"): "packet reassemblies failed",
    ("Ip", "FragFails"): "outgoing packets failed fragmentation",
    ("Icmp", "InMsgs"): "ICMP messages received",
    ("Icmp", "InErrors"): "input ICMP message failed",
    ("Icmp", "InDestUnreachs"): "destination unreachable received",
    ("Icmp", "OutMsgs"): "ICMP messages sent",
    ("Icmp", "OutRateLimitGlobal"): "ICMP messages not sent: global rate limit",
    ("Icmp", "OutDestUnreachs"): "destination unreachable sent",
    ("Tcp", "ActiveOpens"): "active connection openings",
    ("Tcp", "PassiveOpens"): "passive connection openings",
    ("Tcp", "AttemptFails"): "failed connection attempts",
    ("Tcp", "EstabResets"): "connection resets received",
    ("Tcp", "CurrEstab"): "connections established",
    ("Tcp", "InSegs"): "segments received",
    ("Tcp", "OutSegs"): "segments sent out",
    ("Tcp", "RetransSegs"): "segments retransmitted",
    ("Tcp", "InErrs"): "bad segments received",
    ("Tcp", "OutRsts"): "resets sent",
    ("Udp", "InDatagrams"): "packets received",
    ("Udp", "NoPorts"): "packets to unknown port received",
    ("Udp", "InErrors"): "packet receive errors",
    ("Udp", "OutDatagrams"): "packets sent",
    ("Udp", "RcvbufErrors"): "receive buffer errors",
    ("Udp", "SndbufErrors"): "send buffer errors",
    ("Udp", "InCsumErrors"): "packets received with bad checksum",
    ("Udp", "MemErrors"): "packets dropped for lack of memory",
    ("TcpExt", "SyncookiesSent"): "SYN cookies sent",
    ("TcpExt", "SyncookiesRecv"): "SYN cookies received",
    ("TcpExt", "SyncookiesFailed"): "invalid SYN cookies received",
    ("TcpExt", "PruneCalled"): "packets pruned from receive queue because of socket buffer overrun",
    ("TcpExt", "TW"): "TCP sockets finished time wait in fast timer",
    ("TcpExt", "ListenOverflows"): "times the listen queue of a socket overflowed",
    ("TcpExt", "ListenDrops"): "SYNs to LISTEN sockets dropped",
    ("TcpExt", "TCPLostRetransmit"): "retransmits lost",
    ("TcpExt", "TCPFastRetrans"): "fast retransmits",
    ("TcpExt", "TCPSlowStartRetrans"): "retransmits in slow start",
    ("TcpExt", "TCPTimeouts"): "other TCP timeouts",
    ("TcpExt", "TCPSynRetrans"): "SYN and SYN-ACK retransmits",
    ("TcpExt", "TCPAbortOnData"): "connections reset due to unexpected data",
    ("TcpExt", "TCPAbortOnClose"): "connections reset due to early user close",
    ("TcpExt", "TCPAbortOnMemory"): "connections aborted due to memory pressure",
    ("TcpExt", "TCPAbortOnTimeout"): "connections aborted due to timeout",
    ("TcpExt", "TCPAbortFailed"): "times unable to send RST due to no memory",
    ("TcpExt", "TCPMemoryPressures"): "times TCP ran low on memory",
    ("TcpExt", "TCPRcvCollapsed"): "packets collapsed in receive queue due to low socket buffer",
    ("TcpExt", "TCPBacklogDrop"): "packets dropped because the socket backlog was full",
    ("TcpExt", "TCPRcvQDrop"): "packets dropped because the receive queue was out of memory",
    ("TcpExt", "TCPOFODrop"): "out-of-order packets dropped for lack of buffer",
    ("TcpExt", "TCPZeroWindowDrop"): "packets dropped because the receive window was zero",
    ("TcpExt", "TCPReqQFullDrop"): "SYNs dropped because the SYN queue was full",
    ("TcpExt", "TCPReqQFullDoCookies"): "SYN cookies sent because the SYN queue was full",
    ("TcpExt", "TCPTimeWaitOverflow"): "TIME_WAIT sockets not created: too many",
    ("TcpExt", "TCPKeepAlive"): "keepalive probes sent",
    ("IpExt", "InNoRoutes"): "packets received with no route",
    ("IpExt", "InTruncatedPkts"): "truncated packets received",
    ("IpExt", "InOctets"): "bytes received",
    ("IpExt", "OutOctets"): "bytes sent",
    ("MPTcpExt", "MPCurrEstab"): "MPTCP connections established",
    ("Ip6", "Ip6InReceives"): "total packets received",
    ("Ip6", "Ip6InDiscards"): "incoming packets discarded",
    ("Ip6", "Ip6InDelivers"): "incoming packets delivered",
    ("Ip6", "Ip6OutRequests"): "requests sent out",
    ("Ip6", "Ip6OutNoRoutes"): "dropped because of missing route",
    ("Icmp6", "Icmp6InMsgs"): "ICMP messages received",
    ("Icmp6", "Icmp6InErrors"): "input ICMP message failed",
    ("Icmp6", "Icmp6InDestUnreachs"): "destination unreachable received",
    ("Icmp6", "Icmp6InPktTooBigs"): "packets too big received",
    ("Udp6", "Udp6NoPorts"): "packets to unknown port received",
    ("Udp6", "Udp6InErrors"): "packet receive errors",
    ("Udp6", "Udp6RcvbufErrors"): "receive buffer errors",
}

# A value is a plain ASCII decimal, possibly negative (Tcp MaxConn is -1). int() alone would also take "1_000",
# "+5" and non-ASCII digits, which the kernel never prints: better to call such a line malformed.
_INT = re.compile(r"-?[0-9]+\Z")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# snmp6 names carry their group as a prefix ending in "6" before the next capital: Ip6, Icmp6, Udp6, UdpLite6.
_GROUP6 = re.compile(r"[A-Za-z]+?6(?=[A-Z])")
# Anything else (e.g. /proc/net/sctp/snmp's SctpCurrEstab): the leading capitalised word.
_GROUP_WORD = re.compile(r"[A-Za-z][a-z]*")


def parse_snmp(text: str, source: str = "/proc/net/snmp") -> tuple[list[RawCounter], list[str]]:
    """Parse the paired-line format of /proc/net/snmp and /proc/net/netstat; never raises.

    Each group is a line "Group: Name1 Name2 ..." followed by "Group: v1 v2 ...". A group may come in several
    pairs (IcmpMsg is split every 16 types). A pair whose counts differ or that holds a non-integer is skipped
    whole, since its names and values can no longer be matched up; a line whose group differs from the one
    before it is skipped alone, so one stray line does not shift every later pair. Returns the counters in the
    file's order and at most one warning for the file.
    """
    counters: list[RawCounter] = []
    lines = [line for line in text.splitlines() if line.strip()]
    skipped: list[str] = []
    i = 0
    while i < len(lines):
        head = lines[i].split()
        values = lines[i + 1].split() if i + 1 < len(lines) else []
        group = head[0] if head else ""
        if not group.endswith(":") or len(group) < 2 or not values or values[0] != group:
            skipped.append(lines[i])  # a lone line: resynchronise on the next one
            i += 1
            continue
        names, numbers = head[1:], values[1:]
        if (
            len(names) != len(numbers)
            or not all(_NAME.match(name) for name in names)
            or not all(_INT.match(number) for number in numbers)
        ):
            skipped += lines[i : i + 2]
        else:
            counters.extend(RawCounter(group[:-1], n, int(v)) for n, v in zip(names, numbers, strict=True))
        i += 2
    return counters, skipped_lines_warning(source, skipped)


def parse_netstat(text: str, source: str = "/proc/net/netstat") -> tuple[list[RawCounter], list[str]]:
    """/proc/net/netstat (TcpExt, IpExt, MPTcpExt) has the same format as /proc/net/snmp."""
    return parse_snmp(text, source)


def parse_snmp6(text: str, source: str = "/proc/net/snmp6") -> tuple[list[RawCounter], list[str]]:
    """Parse "Name value" lines (/proc/net/snmp6, /proc/net/sctp/snmp); never raises.

    The group is the name's prefix: up to the first "6" followed by a capital (Ip6, Icmp6 for Icmp6InType133,
    Udp6, UdpLite6), else the leading capitalised word (Sctp for SctpCurrEstab). Malformed lines are skipped.
    """
    counters: list[RawCounter] = []
    skipped: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not _NAME.match(fields[0]) or not _INT.match(fields[1]):
            skipped.append(line)
            continue
        name = fields[0]
        counters.append(RawCounter(group_of_snmp6_name(name), name, int(fields[1])))
    return counters, skipped_lines_warning(source, skipped)


def group_of_snmp6_name(name: str) -> str:
    """Group of a snmp6-style name: Icmp6InType133 -> Icmp6, UdpLite6NoPorts -> UdpLite6, SctpCurrEstab -> Sctp."""
    match = _GROUP6.match(name) or _GROUP_WORD.match(name)
    return match.group(0) if match else name


# (relative path, parser, warning when the file is missing or None to stay quiet). Read in this order, which is
# the order of the groups in the snapshot: `netstat -s`'s, then `netstat -s -6`'s, then SCTP's.
_SOURCES = (
    ("net/snmp", parse_snmp, "IP, ICMP, TCP and UDP statistics are unavailable"),
    ("net/netstat", parse_netstat, "extended TCP and IP statistics (TcpExt, IpExt) are unavailable"),
    ("net/snmp6", parse_snmp6, "IPv6 statistics are unavailable (IPv6 is disabled or not built into the kernel)"),
    ("net/sctp/snmp", parse_snmp6, None),  # only there while the sctp module is loaded: nothing to warn about
)


class ProtocolStatsCollector:
    """Reads every protocol counter and works out how much each moved since the previous collect()."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        self._previous: dict[tuple[str, str], int] | None = None
        self._previous_at = 0.0
        self._lock = threading.Lock()  # collect() runs in a worker thread; two at once must not mix samples

    def collect(self) -> StatsSnapshot:
        """Read the files (blocking, about 2 ms for ~400 counters) and return one sample with deltas and rates.

        First sample: delta 0 and rate 0 everywhere. A counter below its previous value (reset, or a 32-bit
        wrap on old kernels: the two cannot be told apart) gets delta 0 and rate 0 for that sample; gauges get
        signed deltas. A counter not seen before gets delta 0, except the sparse ICMP type histograms, which
        the kernel prints only once they are non-zero, so all of their value is new.
        """
        with self._lock:
            raw, warnings = self._read_all()
            now = time.monotonic()
            previous = self._previous
            elapsed = now - self._previous_at if previous is not None else 0.0
            counters: list[ProtocolCounter] = []
            values: dict[tuple[str, str], int] = {}
            for group, name, value in raw:
                key = (group, name)
                if key in values:
                    continue  # a repeated name would give two different deltas: keep the kernel's first
                values[key] = value
                gauge = key in GAUGES
                delta = _delta(previous, key, value, gauge)
                rate = delta / elapsed if delta and elapsed > 0 else 0.0
                counters.append(ProtocolCounter(group, name, value, delta, rate, LABELS.get(key, ""), gauge))
            self._previous, self._previous_at = values, now
        return StatsSnapshot(taken_at=time.time(), counters=counters, warnings=warnings)

    def _read_all(self) -> tuple[list[RawCounter], list[str]]:
        raw: list[RawCounter] = []
        warnings: list[str] = []
        for relative, parse, missing in _SOURCES:
            path = os.path.join(self.proc_root, relative)
            text = read_proc_text(path, missing, warnings)
            if text is None:
                continue
            counters, problems = parse(text, path)
            raw.extend(counters)
            warnings.extend(problems)
        return raw, warnings


def _delta(previous: dict[tuple[str, str], int] | None, key: tuple[str, str], value: int, gauge: bool) -> int:
    if previous is None:
        return 0
    before = previous.get(key)
    if before is None:
        # New since the last sample. The ICMP histograms are printed only once non-zero, so they rose from 0;
        # anything else (e.g. a kernel module loaded meanwhile) has no history to compare with.
        return value if not gauge and value > 0 and _SPARSE.search(key[1]) else 0
    if gauge:
        return value - before
    return value - before if value >= before else 0
