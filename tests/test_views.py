"""Views 2-5 (interfaces, routes, statistics, multicast) driven through Pilot against this machine's real kernel,
with a private network namespace and veth pair where interfaces and routes must be controlled."""

from __future__ import annotations

import socket
import struct
import subprocess

from support import VethPair, wait_for
from textual.widgets import Input

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.interfaces import Interface
from netscope.collectors.protostats import ProtocolCounter
from netscope.collectors.routes import Route

SIZE = (160, 45)


def send_udp(address: str, count: int, size: int = 1000) -> None:
    """Bounded traffic to our own test namespace: `count` datagrams, nothing listening (they still cross)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(count):
            sender.sendto(b"x" * size, (address, 9))


async def test_number_keys_switch_views_and_scope_the_keys() -> None:
    app = NetscopeApp(interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        for key, view in (("2", "interfaces"), ("3", "routes"), ("4", "statistics"), ("5", "multicast")):
            await pilot.press(key)
            assert app.active_view == view
        # The connection table's keys do nothing elsewhere: `s` does not change its sort.
        await pilot.press("3", "s")
        assert app.table.sort_column == "program"
        await pilot.press("1", "s")
        assert app.active_view == "connections" and app.table.sort_column == "user"


async def test_interfaces_show_traffic_across_a_veth_within_two_refreshes(veth_pair: VethPair) -> None:
    app = NetscopeApp(interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        view = app.interfaces_view

        def host_side() -> Interface | None:
            snapshot = view.snapshot
            if snapshot is None:
                return None
            return next((i for i in snapshot.interfaces if i.name == veth_pair.host_interface), None)

        await wait_for(pilot, lambda: host_side() is not None)
        interface = host_side()
        assert interface is not None and interface.up and "U" in interface.flags
        assert f"{veth_pair.host_address}/30" in interface.ipv4
        before = interface.counters.tx_bytes
        send_udp(veth_pair.peer_address, 2000)
        # (How soon is a speed question for benchmarks/; on an idle machine it shows within two refreshes.)
        await wait_for(pilot, lambda: (host_side() or interface).tx_bytes_per_s > 100_000)
        now = host_side()
        assert now is not None and now.counters.tx_bytes - before >= 2000 * 1000
        # The table row and the traffic panel on the connections screen show it too.
        row = app.interfaces_view.table.get_row(repr(veth_pair.host_interface))
        assert str(row[0]) == veth_pair.host_interface
        assert any(i.name == veth_pair.host_interface for i in app.connections.traffic.busiest)


async def test_an_added_route_appears_highlighted_and_a_deleted_one_goes(veth_pair: VethPair) -> None:
    app = NetscopeApp(interval=0.5, flash_seconds=5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        view = app.routes_view
        await wait_for(pilot, lambda: view.snapshot is not None)
        destination = "198.51.100.0/24"
        subprocess.run(
            ["ip", "route", "add", destination, "via", veth_pair.peer_address, "dev", veth_pair.host_interface,
             "metric", "77", "proto", "static"],
            check=True, capture_output=True, timeout=10,
        )
        try:

            def added() -> Route | None:
                snapshot = view.snapshot
                routes = snapshot.routes if snapshot else []
                return next((r for r in routes if r.destination == destination and r.metric == 77), None)

            await wait_for(pilot, lambda: added() is not None)
            route = added()
            assert route is not None
            assert (route.gateway, route.interface, route.protocol, route.table) == (
                veth_pair.peer_address, veth_pair.host_interface, "static", "main"
            )
            assert "G" in route.flags and "U" in route.flags
            assert view.table.flash_of(route.key) == "added"
        finally:
            subprocess.run(["ip", "route", "del", destination, "metric", "77"], capture_output=True, timeout=10)
        await wait_for(pilot, lambda: added() is None)
        assert view.table.flash_of(route.key) == "removed"  # it lingers, marked


async def test_statistics_show_moving_counters_and_filter_them() -> None:
    app = NetscopeApp(interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        view = app.statistics_view
        await wait_for(pilot, lambda: view.snapshot is not None)
        groups = {counter.group for counter in view.snapshot.counters}
        assert {"Ip", "Icmp", "Tcp", "Udp", "TcpExt"} <= groups
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            for _ in range(20):
                socket.create_connection(listener.getsockname()).close()
                listener.accept()[0].close()

            def active_opens() -> ProtocolCounter:
                return next(c for c in view.snapshot.counters if (c.group, c.name) == ("Tcp", "ActiveOpens"))

            await wait_for(pilot, lambda: active_opens().delta >= 20)
            assert active_opens().rate > 0
        finally:
            listener.close()
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"ActiveOpens")
        await wait_for(pilot, lambda: view.table.row_count == 1)
        await pilot.press("enter")  # back to the table
        assert app.focused is view.table
        app.query_one("#stats-filter", Input).value = ""
        await wait_for(pilot, lambda: view.table.row_count == len(view.snapshot.counters))
        await pilot.press("z")
        await wait_for(pilot, lambda: view.table.row_count == sum(1 for c in view.snapshot.counters if c.value))


async def test_multicast_membership_appears_and_goes() -> None:
    app = NetscopeApp(interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        view = app.multicast_view
        await wait_for(pilot, lambda: view.snapshot is not None)
        group = "239.77.77.77"
        member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        member.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton(group),
                                                                      socket.inet_aton("127.0.0.1"))
        )
        try:
            await wait_for(pilot, lambda: any(m.group == group for m in view.snapshot.memberships))
            membership = next(m for m in view.snapshot.memberships if m.group == group)
            assert membership.interface == "lo" and membership.family == 4 and membership.users >= 1
        finally:
            member.close()
        await wait_for(pilot, lambda: not any(m.group == group for m in view.snapshot.memberships))
