"""Network interfaces (`netstat -i`, `netstat -e`): state, MTU, flags, addresses, counters, rates and history."""

from __future__ import annotations

from dataclasses import dataclass, field

# Samples of RX/TX rate kept per interface: at the default 1 s interval, the last five minutes.
HISTORY_LENGTH = 300


@dataclass(slots=True)
class InterfaceCounters:
    """Totals since the interface was created, as /proc/net/dev gives them. RX-OVR/TX-OVR are the fifo columns."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    rx_fifo: int = 0  # netstat's RX-OVR
    rx_frame: int = 0
    rx_multicast: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0
    tx_fifo: int = 0  # netstat's TX-OVR
    tx_collisions: int = 0
    tx_carrier: int = 0


@dataclass(slots=True)
class Interface:
    name: str
    index: int  # ifindex, 0 if unknown
    up: bool  # administratively up (IFF_UP)
    running: bool  # IFF_RUNNING: the link has carrier
    mtu: int
    flags: str  # netstat -i's letters, e.g. "BMRU", "LRU"
    speed_mbps: int | None  # None when the driver does not say (virtual interfaces, link down)
    mac: str  # "" if none
    ipv4: list[str]  # "192.0.2.2/24"
    ipv6: list[str]  # "fe80::1/64"
    counters: InterfaceCounters
    # Per second over the last interval; 0.0 on the first sample and whenever a counter went backwards.
    rx_bytes_per_s: float = 0.0
    tx_bytes_per_s: float = 0.0
    rx_packets_per_s: float = 0.0
    tx_packets_per_s: float = 0.0
    # Bytes per second, oldest first, at most HISTORY_LENGTH samples.
    rx_history: list[float] = field(default_factory=list)
    tx_history: list[float] = field(default_factory=list)


@dataclass(slots=True)
class InterfaceSnapshot:
    taken_at: float
    interfaces: list[Interface]  # sorted by name
    appeared: list[str] = field(default_factory=list)  # names new since the previous sample
    disappeared: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
