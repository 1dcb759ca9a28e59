"""Routing tables: netlink against iproute2 on this machine, the /proc fallback against netlink, routes added in a
private network namespace, the /proc parsers on captured and malformed text, and the netlink layer's errors."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netscope.collectors import netlink
from netscope.collectors.routes import (
    BUILTIN_PROTOCOLS,
    Route,
    RouteCollector,
    RouteSnapshot,
    _InterfaceNames,
    _multipath_hops,
    load_names,
    parse_name_file,
    parse_proc_ipv6_route,
    parse_proc_route,
)

IP = shutil.which("ip")
needs_ip = pytest.mark.skipif(IP is None, reason="iproute2's `ip` command is not installed")

# What both sides are compared on (every field iproute2 prints with -d; it omits none of these but the metric of
# IPv4 routes without one, and prefsrc / gateway / dev when there are none).
Row = tuple[int, str, str, str, str, str, str, int, str, str]


def route_row(route: Route) -> Row:
    return (
        route.family,
        route.destination,
        route.gateway,
        route.interface,
        route.table,
        route.protocol,
        route.scope,
        route.metric,
        route.type,
        route.preferred_source,
    )


def ip_rows(entries: list[dict[str, Any]], family: int) -> Counter[Row]:
    """`ip -d -j route show table all` entries as rows: one per nexthop, destinations with their /len."""
    rows: Counter[Row] = Counter()
    host_len = 32 if family == 4 else 128
    for entry in entries:
        dst = entry["dst"]
        if dst == "default":
            dst = "0.0.0.0/0" if family == 4 else "::/0"
        elif "/" not in dst:
            dst = f"{dst}/{host_len}"
        hops = entry.get("nexthops") or [entry]
        for hop in hops:
            gateway = hop.get("gateway") or hop.get("via", {}).get("host", "")
            rows[
                (
                    family,
                    dst,
                    gateway,
                    hop.get("dev", ""),
                    str(entry["table"]),
                    str(entry["protocol"]),
                    entry["scope"],
                    entry.get("metric", 0),
                    entry["type"],
                    entry.get("prefsrc", ""),
                )
            ] += 1
    return rows


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    assert IP is not None
    command = [IP, *(["-n", netns] if netns else []), "-d", "-j", *args]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout or "[]")


def ip_all_rows(netns: str | None = None) -> Counter[Row]:
    return ip_rows(ip_json("-4", "route", "show", "table", "all", netns=netns), 4) + ip_rows(
        ip_json("-6", "route", "show", "table", "all", netns=netns), 6
    )


def settled(read: Callable[[], Any], collect: Callable[[], Any], attempts: int = 20) -> tuple[Any, Any]:
    """(read(), collect()) taken while nothing changed: other tests may add and remove interfaces (and so
    routes) on this machine at any moment, so retry until read() gives the same before and after collect()."""
    before = after = collected = None
    for _ in range(attempts):
        before = read()
        collected = collect()
        after = read()
        if before == after:
            return after, collected
        time.sleep(0.05)
    return after, collected


# --- This machine: netlink against iproute2, /proc against netlink ---


@needs_ip
def test_netlink_routes_equal_iproute2() -> None:
    collector = RouteCollector()
    expected, snapshot = settled(ip_all_rows, collector.collect)
    assert snapshot.source == "netlink", snapshot.warnings
    assert snapshot.warnings == []
    got = Counter(route_row(route) for route in snapshot.routes)
    assert got == expected, f"only ours: {got - expected}; only ip's: {expected - got}"
    assert any(route.table == "local" for route in snapshot.routes)  # every table, not just main


def proc_rows(routes: list[Route], family: int) -> Counter[tuple[str, str, str, int]]:
    return Counter((r.destination, r.gateway, r.interface, r.metric) for r in routes if r.family == family)


def comparable_with_proc(netlink_routes: list[Route], proc_routes: list[Route]) -> tuple[list[Route], list[Route]]:
    """(netlink routes, /proc routes) limited to what /proc can show: for IPv4 the main table without broadcast
    and multicast routes (the kernel leaves them out of /proc/net/route), only the first nexthop of a multipath
    route, and no route via an IPv6 gateway (printed as 00000000); every IPv6 route of every table."""
    via_ipv6 = {r.destination for r in netlink_routes if r.family == 4 and ":" in r.gateway}
    expected = [
        r
        for r in netlink_routes
        if r.family == 6
        or (
            (r.table == "main" and r.type not in ("broadcast", "multicast") and r.nexthop <= 1)
            and r.destination not in via_ipv6
        )
    ]
    return expected, [r for r in proc_routes if not (r.family == 4 and r.destination in via_ipv6)]


def test_proc_fallback_equals_netlink() -> None:
    netlink_collector = RouteCollector()
    proc_collector = RouteCollector(use_netlink=False)

    def read() -> list[Route]:
        return netlink_collector.collect().routes

    netlink_routes, proc = settled(read, proc_collector.collect)
    assert proc.source == "/proc"
    assert any("netlink is turned off" in warning for warning in proc.warnings)
    expected, got = comparable_with_proc(netlink_routes, proc.routes)
    for family in (4, 6):
        assert proc_rows(got, family) == proc_rows(expected, family), f"IPv{family}"
    assert any(route.family == 4 for route in proc.routes)  # this machine has IPv4 routes: the test means it
    assert all(route.table == "main" for route in proc.routes if route.family == 4)


def test_collect_is_sorted_and_keys_are_unique() -> None:
    for snapshot in (RouteCollector().collect(), RouteCollector(use_netlink=False).collect()):
        assert_sorted(snapshot.routes)
        keys = [route.key for route in snapshot.routes]
        assert len(keys) == len(set(keys)), snapshot.source


def assert_sorted(routes: list[Route]) -> None:
    """Main table first, then tables by number; in each, default routes first, then IPv4 before IPv6, then the
    destination numerically, then metric."""
    numbers = {"main": -1, "": -1, "default": 253, "local": 255}

    def order(route: Route) -> tuple[int, bool, int, int, int, int, int]:
        network = ipaddress.ip_network(route.destination)
        table = numbers.get(route.table)
        return (
            int(route.table) if table is None else table,
            network.prefixlen != 0,
            route.family,
            int(network.network_address),
            network.prefixlen,
            route.metric,
            route.nexthop,
        )

    keys = [order(route) for route in routes]
    assert keys == sorted(keys)


# --- A private network namespace with routes of every kind ---

SNIPPET = """
import dataclasses, json, sys
from netscope.collectors.routes import RouteCollector
snapshot = RouteCollector(use_netlink=sys.argv[1] == "netlink").collect()
print(json.dumps({"source": snapshot.source, "warnings": snapshot.warnings,
                  "routes": [dataclasses.astuple(route) for route in snapshot.routes]}))
"""

# Addresses only from private and documentation ranges, on veth pairs whose both ends are inside the namespace.
NETNS_SETUP = [
    "link set lo up",
    "link add va type veth peer name vb",
    "link add vc type veth peer name vd",
    "link set va up",
    "link set vb up",
    "link set vc up",
    "link set vd up",
    "addr add 10.213.1.1/24 dev va",
    "addr add 10.213.2.1/24 dev vc",
    "-6 addr add fd13:213::1/64 dev va nodad",
    "route add default via 10.213.1.2 dev va",
    "route add 198.51.100.0/24 via 10.213.1.2 dev va proto static metric 7 table 100",
    "route add 198.51.100.64/26 via 10.213.1.3 dev va table 100",  # deleted by a test
    "route add unreachable 203.0.113.0/24",
    "route add prohibit 203.0.114.0/24",
    "route add blackhole 203.0.113.128/25 table 100",
    "route add throw 203.0.115.0/24 table 100",
    "route add 192.0.2.0/24 nexthop via 10.213.1.2 dev va weight 2 nexthop via 10.213.2.2 dev vc",
    "route add 198.51.100.7 dev va scope link src 10.213.1.1 table 5000",  # table id > 255: RTA_TABLE only
    "route add 10.213.1.77 dev va",
    "route add 10.213.9.0/24 via 10.213.1.2 metric 50",
    "route add 198.51.100.128/25 dev va proto 77",  # a protocol number with no name
    "route add 198.51.100.192/26 via inet6 fd13:213::2 dev va",  # RTA_VIA: an IPv4 route via an IPv6 gateway
    "-6 route add default via fd13:213::9 dev va",
    "-6 route add 2001:db8:213::/64 via fd13:213::2 dev va metric 300",
    "-6 route add 2001:db8:e::/64 via fd13:213::9 dev va expires 600",
    "-6 route add unreachable 2001:db8:dead::/48",
    "-6 route add blackhole 2001:db8:beef::/48",
    "-6 route add prohibit 2001:db8:bad::/48 table 100",
    "-6 route add 2001:db8:1::/64 nexthop via fd13:213::2 dev va nexthop via fd13:213::3 dev va",
    "-6 route add local 2001:db8:5::5 dev va",
]


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name

    def ip(self, *args: str) -> None:
        assert IP is not None
        result = subprocess.run([IP, "-n", self.name, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise AssertionError(f"ip -n {self.name} {' '.join(args)}: {result.stderr.strip()}")

    def collect(self, source: str = "netlink") -> RouteSnapshot:
        assert IP is not None
        result = subprocess.run(
            [IP, "netns", "exec", self.name, sys.executable, "-c", SNIPPET, source],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        return RouteSnapshot(0.0, [Route(*fields) for fields in data["routes"]], data["source"], data["warnings"])


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if IP is None:
        pytest.skip("iproute2's `ip` command is not installed")
    name = f"netscope-rt-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    created = subprocess.run([IP, "netns", "add", name], capture_output=True, text=True)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    try:
        ns = Netns(name)
        for command in NETNS_SETUP:
            ns.ip(*command.split())
        yield ns
    finally:
        subprocess.run([IP, "netns", "del", name], capture_output=True)


def find(routes: list[Route], destination: str, table: str = "main") -> list[Route]:
    return [route for route in routes if route.destination == destination and route.table == table]


def test_netns_routes_have_their_fields(netns: Netns) -> None:
    snapshot = netns.collect()
    assert snapshot.source == "netlink" and snapshot.warnings == []
    routes = snapshot.routes
    R = Route
    assert find(routes, "198.51.100.0/24", "100") == [
        R(4, "198.51.100.0/24", "10.213.1.2", "va", "UG", 7, "static", "global", "100", "", "unicast")
    ]
    assert find(routes, "203.0.113.0/24") == [
        R(4, "203.0.113.0/24", "", "", "!", 0, "boot", "global", "main", "", "unreachable")
    ]
    assert find(routes, "203.0.114.0/24")[0].flags == "!"
    assert find(routes, "203.0.113.128/25", "100")[0].type == "blackhole"
    assert find(routes, "203.0.113.128/25", "100")[0].flags == "!"
    assert find(routes, "203.0.115.0/24", "100")[0].type == "throw"
    assert find(routes, "198.51.100.7/32", "5000") == [
        R(4, "198.51.100.7/32", "", "va", "UH", 0, "boot", "link", "5000", "10.213.1.1", "unicast")
    ]
    assert find(routes, "10.213.1.0/24") == [
        R(4, "10.213.1.0/24", "", "va", "U", 0, "kernel", "link", "main", "10.213.1.1", "unicast")
    ]
    assert find(routes, "10.213.9.0/24")[0].metric == 50
    assert find(routes, "198.51.100.128/25")[0].protocol == "77"
    assert find(routes, "198.51.100.192/26")[0].gateway == "fd13:213::2"
    assert find(routes, "0.0.0.0/0")[0].is_default
    # One Route per nexthop of a multipath route, numbered, each with its own gateway and device.
    assert [(r.gateway, r.interface, r.flags, r.nexthop) for r in find(routes, "192.0.2.0/24")] == [
        ("10.213.1.2", "va", "UG", 1),
        ("10.213.2.2", "vc", "UG", 2),
    ]
    assert [(r.gateway, r.interface, r.metric, r.nexthop) for r in find(routes, "2001:db8:1::/64")] == [
        ("fd13:213::2", "va", 1024, 1),
        ("fd13:213::3", "va", 1024, 2),
    ]
    # The local table, with the types and IPv6 flags net-tools prints.
    assert find(routes, "10.213.1.1/32", "local")[0].type == "local"
    assert find(routes, "10.213.1.255/32", "local")[0].type == "broadcast"
    assert find(routes, "fd13:213::1/128", "local")[0].flags == "UHn"  # the address's own route: no nexthop
    assert find(routes, "2001:db8:5::5/128", "local")[0].flags == "UH"  # a local route added by hand
    assert find(routes, "ff00::/8", "local")[0].type == "multicast"
    assert find(routes, "2001:db8:213::/64") == [
        R(6, "2001:db8:213::/64", "fd13:213::2", "va", "UG", 300, "boot", "global", "main", "", "unicast")
    ]
    assert find(routes, "2001:db8:e::/64")[0].flags == "UGe"
    unreachable = find(routes, "2001:db8:dead::/48")[0]
    assert (unreachable.type, unreachable.flags, unreachable.interface) == ("unreachable", "!n", "lo")
    assert find(routes, "2001:db8:bad::/48", "100")[0].type == "prohibit"


def test_netns_routes_equal_iproute2(netns: Netns) -> None:
    expected, snapshot = settled(lambda: ip_all_rows(netns.name), netns.collect)
    got = Counter(route_row(route) for route in snapshot.routes)
    assert got == expected, f"only ours: {got - expected}; only ip's: {expected - got}"


def test_netns_proc_fallback_equals_netlink(netns: Netns) -> None:
    by_netlink = netns.collect("netlink").routes
    proc = netns.collect("proc")
    assert proc.source == "/proc"
    expected, got = comparable_with_proc(by_netlink, proc.routes)
    for family in (4, 6):
        assert proc_rows(got, family) == proc_rows(expected, family), f"IPv{family}"

    # Same flags from either source (blackhole and throw, which only netlink marks "!", are in table 100 here,
    # which /proc/net/route does not list).
    def flags(routes: list[Route]) -> Counter[tuple[int, str, str, str, int, str]]:
        return Counter((r.family, r.destination, r.gateway, r.interface, r.metric, r.flags) for r in routes)

    assert flags(got) == flags(expected)
    assert any("!" in route.flags for route in proc.routes if route.family == 4)
    assert any(route.flags == "!n" for route in proc.routes if route.family == 6)
    assert not find(proc.routes, "::/0", "")[0].flags.startswith("!")  # the kernel's null entry is left out


def test_netns_sort_order(netns: Netns) -> None:
    routes = netns.collect().routes
    assert_sorted(routes)
    assert (routes[0].destination, routes[0].table) == ("0.0.0.0/0", "main")
    assert (routes[1].destination, routes[1].table) == ("::/0", "main")
    tables = list(dict.fromkeys(route.table for route in routes))
    assert tables == ["main", "100", "local", "5000"]


def test_netns_deleted_route_disappears(netns: Netns) -> None:
    assert find(netns.collect().routes, "198.51.100.64/26", "100")
    netns.ip("route", "del", "198.51.100.64/26", "table", "100")
    routes = netns.collect().routes
    assert not find(routes, "198.51.100.64/26", "100")
    assert find(routes, "198.51.100.0/24", "100")  # its neighbour stays


# --- /proc parsers on captured text ---

# Captured from a network namespace set up as above (x86-64, little-endian; trailing blanks as the kernel writes).
CAPTURED_ROUTE = "\n".join(
    [
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT" + " " * 55,
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0" + " " * 79,
        "va\t0001D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0" + " " * 81,
        "va\t4D01D50A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0" + " " * 81,
        "va\t0009D50A\t0201D50A\t0003\t0\t0\t50\t00FFFFFF\t0\t0\t0" + " " * 80,
        "va\t806433C6\t00000000\t0003\t0\t0\t0\t80FFFFFF\t0\t0\t0" + " " * 81,
        "*\t007100CB\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0" + " " * 82,
    ]
)

CAPTURED_IPV6_ROUTE = """\
20010db80bad00000000000000000000 30 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00200200       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 fd130213000000000000000000000002 00000400 00000002 00000000 00000003       va
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 fd130213000000000000000000000003 00000400 00000001 00000000 00000003       va
20010db8000e00000000000000000000 40 00000000000000000000000000000000 00 fd130213000000000000000000000009 00000400 00000001 00000000 00400003       va
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001       vb
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001       va
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo
20010db8000500000000000000000005 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 80000001       va
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000005 00000000 00000001       vb
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
"""  # noqa: E501


@pytest.mark.skipif(sys.byteorder != "little", reason="captured on a little-endian machine")
def test_parse_captured_proc_route() -> None:
    R = Route
    assert parse_proc_route(CAPTURED_ROUTE) == [
        R(4, "0.0.0.0/0", "192.0.2.1", "eth0", "UG", 0, table="main"),
        R(4, "10.213.1.0/24", "", "va", "U", 0),
        R(4, "10.213.1.77/32", "", "va", "UH", 0),
        R(4, "10.213.9.0/24", "10.213.1.2", "va", "UG", 50),
        R(4, "198.51.100.128/25", "", "va", "UG", 0),  # an IPv6 gateway, which the file prints as 00000000
        R(4, "203.0.113.0/24", "", "", "!", 0, type="reject"),
    ]


def test_parse_captured_proc_ipv6_route() -> None:
    R = Route
    assert parse_proc_ipv6_route(CAPTURED_IPV6_ROUTE) == [
        R(6, "::1/128", "", "lo", "UHn", 0, table="", type="local"),
        R(6, "2001:db8:1::/64", "fd13:213::2", "va", "UG", 1024, table=""),
        R(6, "2001:db8:1::/64", "fd13:213::3", "va", "UG", 1024, table="", nexthop=1),  # ECMP: same key otherwise
        R(6, "2001:db8:5::5/128", "", "va", "UH", 1024, table="", type="local"),
        R(6, "2001:db8:e::/64", "fd13:213::9", "va", "UGe", 1024, table=""),
        R(6, "2001:db8:bad::/48", "", "lo", "!n", 1024, table="", type="reject"),
        R(6, "fe80::/64", "", "vb", "U", 256, table=""),
        R(6, "fe80::/64", "", "va", "U", 256, table=""),
        R(6, "ff00::/8", "", "vb", "U", 256, table=""),
    ]  # the two null entries (::/0 reject, metric 0xffffffff) are the kernel's, not routes


def test_proc_routes_sharing_a_key_are_numbered() -> None:
    """The file has no table column: the same route in two tables must still give two distinct keys."""
    line = (
        "fd130213000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001       va"
    )
    routes = parse_proc_ipv6_route(f"{line}\n{line}\n{line}")
    assert [route.nexthop for route in routes] == [0, 1, 2]
    assert len({route.key for route in routes}) == 3


IPV6_GOOD = (
    "20010db8021300000000000000000000 40 00000000000000000000000000000000 00 "
    "fd130213000000000000000000000002 0000012c 00000003 00000000 00000003       va"
)


@pytest.mark.parametrize(
    "bad_line",
    [
        "",
        "va",
        "va\t0001D50A\t00000000\t0001",  # too few fields
        "va\t0001D50X\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",  # not hex
        "va\t001D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",  # 7 digits
        "va\t0001D50A\t00000000\t0001\t0\t0\tseven\t00FFFFFF\t0\t0\t0",  # metric not a number
        "va\t0001D50A\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0",  # non-contiguous mask
        "\x00\xff garbage \x01",
        IPV6_GOOD,  # an IPv6 line in the IPv4 file
    ],
)
def test_malformed_proc_route_lines_are_skipped(bad_line: str) -> None:
    good = "va\t0001D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0"
    routes = parse_proc_route(f"Iface\tDestination\n{bad_line}\n{good}\n")
    assert [route.interface for route in routes] == ["va"]


@pytest.mark.parametrize(
    "bad_line",
    [
        "",
        "20010db8021300000000000000000000 40",
        IPV6_GOOD.replace("20010db8", "20010dbx"),
        IPV6_GOOD.replace("20010db8", "20010d8"),  # 31 digits
        IPV6_GOOD.replace(" 40 ", " 99 "),  # prefix length 153
        IPV6_GOOD.replace("0000012c", "zzzzzzzz"),
        IPV6_GOOD.replace("00000003       va", "0000000g       va"),
        "va\t0001D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",  # an IPv4 line in the IPv6 file
    ],
)
def test_malformed_proc_ipv6_route_lines_are_skipped(bad_line: str) -> None:
    routes = parse_proc_ipv6_route(f"{bad_line}\n{IPV6_GOOD}\n")
    assert [route.destination for route in routes] == ["2001:db8:213::/64"]


def test_proc_files_missing_or_partial(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "route").write_text(
        CAPTURED_ROUTE.replace("eth0\t00000000\t010200C0", "eth0\t00000000\t0")
    )
    snapshot = RouteCollector(proc_root=str(tmp_path), use_netlink=False).collect()
    assert snapshot.source == "/proc"
    assert len(snapshot.routes) == 5  # the damaged default route line is skipped
    assert any(
        "ipv6_route does not exist" in warning and "IPv6 is disabled" in warning for warning in snapshot.warnings
    )

    empty = RouteCollector(proc_root=str(tmp_path / "nowhere"), use_netlink=False).collect()
    assert empty.routes == []
    assert sum("does not exist" in warning for warning in empty.warnings) == 2


# --- Names ---


def test_name_files(tmp_path: Path) -> None:
    text = "# reserved\n255\tlocal\n254 main # the main one\n0x10\tsixteen\nbogus line\n300\n1000 bgp-peers\n"
    assert parse_name_file(text) == {255: "local", 254: "main", 16: "sixteen", 1000: "bgp-peers"}
    (tmp_path / "rt_tables").write_text("100 transit\n")
    (tmp_path / "rt_tables.d").mkdir()
    (tmp_path / "rt_tables.d" / "extra.conf").write_text("100 uplink\n5000 big\n")
    (tmp_path / "rt_tables.d" / "ignored.txt").write_text("7 seven\n")
    tables = load_names("rt_tables", {254: "main"}, dirs=[str(tmp_path), str(tmp_path / "absent")])
    assert tables == {254: "main", 100: "uplink", 5000: "big"}  # drop-ins override, only *.conf counts
    assert load_names("rt_protos", BUILTIN_PROTOCOLS, dirs=[])[186] == "bgp"


def test_interface_names_fall_back_to_the_number() -> None:
    names = _InterfaceNames({})
    assert names[socket.if_nametoindex("lo")] == "lo"  # not in the dump: asked of the kernel
    unused = max(index for index, _ in socket.if_nameindex()) + 100_000
    assert names[unused] == str(unused)  # no such interface (any more): its number
    assert names[0] == ""


# --- The netlink layer ---

RTMSG = struct.Struct("=BBBBBBBBI")


def test_netlink_error_reply_raises_a_clear_exception() -> None:
    with netlink.NetlinkSocket(strict=True) as sock:
        # Under strict checking the kernel refuses a route dump whose header asks for a destination length.
        bad = RTMSG.pack(socket.AF_INET, 8, 0, 0, 0, 0, 0, 0, 0)
        with pytest.raises(netlink.NetlinkError) as caught:
            list(sock.dump(netlink.RTM_GETROUTE, bad, "dumping routes with a bad header"))
        assert caught.value.errno == errno.EINVAL
        assert "dumping routes with a bad header failed: Invalid argument" in str(caught.value)
        assert caught.value.kernel_message  # the kernel's extended ACK text, e.g. "Invalid values in header ..."
        assert caught.value.kernel_message in str(caught.value)
        # The kernel ended that request: the same socket serves the next dump.
        good = RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        assert any(message.type == netlink.RTM_NEWROUTE for message in sock.dump(netlink.RTM_GETROUTE, good))


def test_netlink_unknown_request_raises() -> None:
    with netlink.NetlinkSocket() as sock, pytest.raises(netlink.NetlinkError) as caught:
        list(sock.dump(0x7FF0, b"\0" * 4))  # beyond RTM_MAX
    assert caught.value.errno == errno.EOPNOTSUPP


def test_netlink_reply_larger_than_the_buffer_is_truncated() -> None:
    sock = netlink.NetlinkSocket(recv_size=32)
    with pytest.raises(netlink.NetlinkTruncated, match="did not fit the 32 byte receive buffer"):
        list(sock.dump(netlink.RTM_GETLINK, struct.pack("=BxHiII", 0, 0, 0, 0, 0)))
    assert sock.closed  # the rest of that dump is unreadable: the socket is not reused


def header(length: int, msg_type: int = netlink.RTM_NEWROUTE, flags: int = 0, seq: int = 1) -> bytes:
    return netlink.HEADER.pack(length, msg_type, flags, seq, 0)


def test_truncated_messages_raise() -> None:
    whole = header(20) + b"\1\2\3\4"
    assert [(m.type, m.data[m.start : m.end]) for m in netlink.iter_messages(whole)] == [
        (netlink.RTM_NEWROUTE, b"\1\2\3\4")
    ]
    with pytest.raises(netlink.NetlinkTruncated, match="claims 100 bytes, 24 are there"):
        list(netlink.iter_messages(whole + header(100) + b"\0" * 8))
    with pytest.raises(netlink.NetlinkTruncated, match="fewer than a message header"):
        list(netlink.iter_messages(whole + b"\0" * 6))
    with pytest.raises(netlink.NetlinkTruncated, match="claims 3 bytes"):
        list(netlink.iter_messages(header(3)))


def test_malformed_attributes_stop_the_walk() -> None:
    good = netlink.pack_attr(1, b"\xc0\x00\x02\x01")
    assert len(netlink.pack_attr(3, b"abcde")) == 12  # padded to 4 bytes
    data = good + netlink.pack_attr(3, b"eth0\0") + netlink.ATTR.pack(2, 7) + good
    assert netlink.parse_attrs(data, 0, len(data)) == {1: b"\xc0\x00\x02\x01", 3: b"eth0\0"}
    running_past = good + netlink.ATTR.pack(40, 5) + b"\0" * 8
    assert [t for t, _, _ in netlink.iter_attrs(running_past, 0, len(running_past))] == [1]
    assert netlink.parse_attrs(b"\1\0", 0, 2) == {}


def test_truncated_multipath_keeps_the_whole_nexthops() -> None:
    hop = struct.Struct("=HBBi")
    gateway = netlink.pack_attr(5, bytes([10, 213, 1, 2]))
    first = hop.pack(hop.size + len(gateway), 0, 0, 3) + gateway
    cut = hop.pack(hop.size + len(gateway), 0, 0, 4) + gateway[:5]  # claims more than is left
    assert _multipath_hops(first + cut, 0, len(first + cut), {}) == [("10.213.1.2", 3)]


def test_error_reply_with_extended_ack_is_decoded() -> None:
    """An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK: errno, the echoed header, then the text."""
    payload = (
        struct.pack("=i", -errno.ENOENT) + header(32, netlink.RTM_GETROUTE) + netlink.pack_attr(1, b"No route\0")
    )
    data = header(16 + len(payload), netlink.NLMSG_ERROR, netlink.NLM_F_CAPPED | netlink.NLM_F_ACK_TLVS) + payload
    message = next(netlink.iter_messages(data))
    error = netlink.error_from(message, "asking")
    assert error is not None
    assert (error.errno, error.kernel_message) == (errno.ENOENT, "No route")
    assert str(error) == "asking failed: No such file or directory (errno 2); the kernel says: No route"
    ack = header(36, netlink.NLMSG_ERROR) + struct.pack("=i", 0) + header(16)
    assert netlink.error_from(next(netlink.iter_messages(ack)), "asking") is None
