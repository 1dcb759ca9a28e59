"""Protocol statistics (`netstat -s`): every counter of /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6."""

from __future__ import annotations

from dataclasses import dataclass, field


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
