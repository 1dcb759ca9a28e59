"""Fixed data for views 2-5, for SVG snapshots: the same interfaces, routes, counters and groups every run."""

from __future__ import annotations

import os

from fixed_data import T0, snapshots

from netscope.collectors.interfaces import Interface, InterfaceCounters, InterfaceSnapshot
from netscope.collectors.multicast import Membership, MulticastSnapshot
from netscope.collectors.protostats import ProtocolCounter, StatsSnapshot
from netscope.collectors.routes import Route, RouteSnapshot
from netscope.collectors.view_data import ViewData, ViewSourceDefaults


def wave(peak: float, length: int = 120) -> list[float]:
    return [peak * (0.3 + 0.7 * ((index * 7) % 23) / 22) for index in range(length)]


def interfaces() -> InterfaceSnapshot:
    eth0 = Interface(
        name="eth0", index=2, up=True, running=True, mtu=1500, flags="BMRU", speed_mbps=10000,
        mac="52:54:00:12:34:56", ipv4=["192.0.2.2/24"], ipv6=["2001:db8::2/64", "fe80::5054:ff:fe12:3456/64"],
        counters=InterfaceCounters(rx_bytes=9_876_543_210, rx_packets=12_345_678, rx_errors=3, rx_dropped=41,
                                   tx_bytes=1_234_567_890, tx_packets=4_567_890, tx_dropped=2),
        rx_bytes_per_s=48_200_000, tx_bytes_per_s=3_100_000, rx_packets_per_s=35_100, tx_packets_per_s=21_800,
        rx_history=wave(48_200_000), tx_history=wave(3_100_000),
    )
    lo = Interface(
        name="lo", index=1, up=True, running=True, mtu=65536, flags="LRU", speed_mbps=None, mac="",
        ipv4=["127.0.0.1/8"], ipv6=["::1/128"],
        counters=InterfaceCounters(
            rx_bytes=54_271_503, rx_packets=986_830, tx_bytes=54_271_503, tx_packets=986_830
        ),
        rx_bytes_per_s=1200, tx_bytes_per_s=1200, rx_packets_per_s=14, tx_packets_per_s=14,
        rx_history=wave(1500), tx_history=wave(1500),
    )
    docker0 = Interface(
        name="docker0", index=3, up=False, running=False, mtu=1500, flags="BM", speed_mbps=None,
        mac="02:42:ac:11:00:01", ipv4=["172.17.0.1/16"], ipv6=[], counters=InterfaceCounters(),
    )
    return InterfaceSnapshot(taken_at=T0, interfaces=[docker0, eth0, lo])


def routes() -> RouteSnapshot:
    return RouteSnapshot(
        taken_at=T0,
        source="netlink",
        routes=[
            Route(4, "0.0.0.0/0", "192.0.2.1", "eth0", "UG", 100, "dhcp", "global", "main", "192.0.2.2"),
            Route(4, "192.0.2.0/24", "", "eth0", "U", 100, "kernel", "link", "main", "192.0.2.2"),
            Route(4, "172.17.0.0/16", "", "docker0", "U", 0, "kernel", "link", "main", "172.17.0.1"),
            Route(4, "198.51.100.0/24", "192.0.2.254", "eth0", "UG", 7, "static", "global", "100"),
            Route(4, "203.0.113.0/24", "", "", "!", 0, "boot", "global", "main", "", "unreachable"),
            Route(6, "::/0", "fe80::1", "eth0", "UG", 1024, "ra", "global", "main"),
            Route(6, "2001:db8::/64", "", "eth0", "U", 256, "kernel", "global", "main"),
            Route(6, "fe80::/64", "", "eth0", "U", 256, "kernel", "global", "main"),
        ],
    )


def statistics() -> StatsSnapshot:
    rows = [
        ("Ip", "Forwarding", 1, 0, "forwarding", True),
        ("Ip", "InReceives", 12_345_678, 35_120, "total packets received", False),
        ("Ip", "InDiscards", 0, 0, "incoming packets discarded", False),
        ("Tcp", "ActiveOpens", 45_678, 12, "active connection openings", False),
        ("Tcp", "PassiveOpens", 987_654, 231, "passive connection openings", False),
        ("Tcp", "AttemptFails", 1_234, 0, "failed connection attempts", False),
        ("Tcp", "CurrEstab", 3_456, -12, "connections established", True),
        ("Tcp", "RetransSegs", 56_789, 48, "segments retransmitted", False),
        ("Tcp", "OutRsts", 7_890, 3, "resets sent", False),
        ("Udp", "NoPorts", 321, 0, "packets to unknown port received", False),
        ("Udp", "RcvbufErrors", 17, 0, "receive buffer errors", False),
        ("TcpExt", "ListenOverflows", 1_204, 97, "times the listen queue of a socket overflowed", False),
        ("TcpExt", "ListenDrops", 1_204, 97, "SYNs to LISTEN sockets dropped", False),
        ("TcpExt", "SyncookiesSent", 0, 0, "SYN cookies sent", False),
        ("Ip6", "Ip6InReceives", 98_765, 20, "", False),
    ]
    counters = [
        ProtocolCounter(group, name, value, delta, float(delta), label, gauge)
        for group, name, value, delta, label, gauge in rows
    ]
    return StatsSnapshot(taken_at=T0, counters=counters)


def multicast() -> MulticastSnapshot:
    return MulticastSnapshot(
        taken_at=T0,
        memberships=[
            Membership("eth0", 4, "224.0.0.1", 1),
            Membership("eth0", 4, "239.255.255.250", 2),
            Membership("eth0", 6, "ff02::1", 1),
            Membership("eth0", 6, "ff02::1:ff12:3456", 1),
            Membership("lo", 4, "224.0.0.1", 1),
            Membership("lo", 6, "ff02::1", 1),
        ],
    )


class FixedViews(ViewSourceDefaults):
    def collect(self, active_view: str) -> ViewData:
        return ViewData(interfaces(), routes(), statistics(), multicast())


def record_fixed(path: str | os.PathLike[str]) -> None:
    """A recording of the fixed refreshes (fixed_data.snapshots()) with the fixed views read at each: replayed
    (ReplaySource, RecordedViews) it shows views 2-5 as FixedViews gives them live."""
    from netscope.collectors.diff import diff_snapshots
    from netscope.collectors.recording import RecordingWriter

    previous = None
    with RecordingWriter(path) as writer:
        for snapshot in snapshots():
            writer.write(diff_snapshots(previous, snapshot))
            writer.write_views(snapshot.taken_at, FixedViews().collect("connections"))
            previous = snapshot
