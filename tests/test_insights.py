"""Grouping sockets for the "top" view, on real loopback connections between real child processes.

Each test uses its own random 127.A.B.0/24 (all of 127/8 is loopback on Linux), so sockets that other tests or
programs hold on this machine at the same time never land in the groups whose counts are asserted exactly.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections import Counter
from collections.abc import Callable

import pytest
from support import Controlled

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.insights import GROUPING_LABELS, GROUPINGS, NO_OWNER, Group, GroupCounter

# --- real peers ------------------------------------------------------------------------------------------------


def private_net() -> str:
    """A /24 of loopback addresses nobody else uses: 127.0.x.x is where other tests and programs live."""
    return f"127.{random.randint(100, 254)}.{random.randint(1, 254)}"


# --- an independent reference: what each grouping should hold, straight from the definitions -----------------


def reference_key(grouping: str, sock: Socket) -> str | None:
    if grouping in ("remote_ip", "remote_net"):
        address = ipaddress.ip_address(sock.remote_ip)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_unspecified:
            return None
        if grouping == "remote_ip":
            return str(address)
        prefix = 24 if address.version == 4 else 64
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    if grouping == "local_port":
        return str(sock.local_port)
    return NO_OWNER if sock.pid is None else f"{sock.program or '?'} ({sock.pid})"


def reference_groups(sockets: list[Socket], grouping: str) -> dict[str, list[Socket]]:
    members: dict[str, list[Socket]] = {}
    for sock in sockets:
        key = reference_key(grouping, sock)
        if key is not None:
            members.setdefault(key, []).append(sock)
    return members


def as_counts(groups: list[Group]) -> dict[str, tuple[int, dict[str, int]]]:
    """Groups by key, the ones that emptied this refresh (total 0, kept for their change) left out."""
    return {group.key: (group.total, group.states) for group in groups if group.total}


def reference_counts(sockets: list[Socket], grouping: str) -> dict[str, tuple[int, dict[str, int]]]:
    return {
        key: (len(members), dict(Counter(sock.counter_name for sock in members)))
        for key, members in reference_groups(sockets, grouping).items()
    }


def assert_matches_reference(counter: GroupCounter, sockets: list[Socket]) -> None:
    for grouping in GROUPINGS:
        assert as_counts(counter.groups(grouping)) == reference_counts(sockets, grouping), grouping


def assert_filters_exact(counter: GroupCounter, sockets: list[Socket], must_check: set[str]) -> int:
    """Each group's filter_text selects exactly its sockets. Every group in `must_check` and the no-owner group
    are checked, plus the 25 biggest and 10 smallest of each grouping (a filter over every socket of a busy
    machine for thousands of one-socket port groups would take minutes). Returns how many were checked."""
    checked = 0
    for grouping in GROUPINGS:
        members = reference_groups(sockets, grouping)
        groups = [group for group in counter.groups(grouping) if group.total]
        chosen = {id(group) for group in groups[:25] + groups[-10:]}
        for group in groups:
            if id(group) not in chosen and group.key not in must_check and group.key != NO_OWNER:
                continue
            selected = parse_filter(group.filter_text)
            found = sorted(sock.key for sock in sockets if selected.matches(sock))
            assert found == sorted(sock.key for sock in members[group.key]), (grouping, group)
            checked += 1
    return checked


def feed(collector: ConnectionCollector, *counters: GroupCounter) -> SnapshotDiff:
    diff = collector.next_diff()
    for counter in counters:
        counter.apply_diff(diff)
    return diff


def feed_until(
    collector: ConnectionCollector,
    counters: tuple[GroupCounter, ...],
    condition: Callable[[Snapshot], bool],
    timeout: float = 10.0,
) -> SnapshotDiff:
    deadline = time.monotonic() + timeout
    while True:
        diff = feed(collector, *counters)
        if condition(diff.snapshot):
            return diff
        assert time.monotonic() < deadline, "the sockets never reached the expected state"
        time.sleep(0.05)


def owned_by(snapshot: Snapshot, pid: int) -> Counter[str]:
    return Counter(sock.counter_name for sock in snapshot.sockets.values() if sock.pid == pid)


def by_key(counter: GroupCounter, grouping: str) -> dict[str, Group]:
    return {group.key: group for group in counter.groups(grouping)}


# --- real connections ------------------------------------------------------------------------------------------


@pytest.fixture
def hosts(spawn: Callable[..., Controlled]) -> tuple[str, Controlled, Controlled, Controlled]:
    """A server on NET.1 with 20 connections from NET.2 (one client process) and 5 from NET.3 (another)."""
    net = private_net()
    server = spawn("server", "--host", f"{net}.1", "--name", "ns-top-server")
    port = str(server.port)
    many = spawn(
        "bound-client", port, "--host", f"{net}.1", "--bind", f"{net}.2", "--count", "20", "--name", "ns-top-many"
    )
    few = spawn(
        "bound-client", port, "--host", f"{net}.1", "--bind", f"{net}.3", "--count", "5", "--name", "ns-top-few"
    )
    assert many.first_line == few.first_line == "ready"
    return net, server, many, few


def all_accepted(server: Controlled, established: int) -> Callable[[Snapshot], bool]:
    """Until the server has accept()ed them, accepted connections have no owner (no file yet)."""
    return lambda snapshot: owned_by(snapshot, server.pid) == Counter(LISTEN=1, ESTABLISHED=established)


def test_groups_of_real_connections(hosts: tuple[str, Controlled, Controlled, Controlled]) -> None:
    net, server, many, few = hosts
    collector = ConnectionCollector()
    counter = GroupCounter()
    diff = feed_until(collector, (counter,), all_accepted(server, 25))
    sockets = list(diff.snapshot.sockets.values())

    # Each connection is two sockets on this machine. The server's end has the client's address as its remote:
    # 20 from NET.2 and 5 from NET.3. Each client's end has the server's address NET.1 as its remote: 25.
    remote = by_key(counter, "remote_ip")
    assert (remote[f"{net}.2"].total, remote[f"{net}.2"].states) == (20, {"ESTABLISHED": 20})
    assert (remote[f"{net}.3"].total, remote[f"{net}.3"].states) == (5, {"ESTABLISHED": 5})
    assert (remote[f"{net}.1"].total, remote[f"{net}.1"].states) == (25, {"ESTABLISHED": 25})
    assert remote[f"{net}.2"].filter_text == f"rip:{net}.2"
    # The listener has no peer (remote 0.0.0.0): in no remote group.
    assert not any(group.key in ("0.0.0.0", "::") for group in counter.groups("remote_ip"))

    # All three addresses are in one /24: the 50 connected sockets.
    network = by_key(counter, "remote_net")[f"{net}.0/24"]
    assert (network.total, network.states, network.filter_text) == (50, {"ESTABLISHED": 50}, f"rip:{net}.0/24")

    # The server's port holds the listener and the 25 connections it accepted (the clients' ends have ephemeral
    # ports of their own). Another program may hold the same port number on another address, so the exact
    # count is taken among the sockets on NET.1, by a second counter with that filter, fed the same diffs.
    port = by_key(counter, "local_port")[str(server.port)]
    assert port.filter_text == f"lport:{server.port}" and port.total >= 26
    on_server = GroupCounter(parse_filter(f"lip:{net}.1").matches)
    on_server.set_filter(parse_filter(f"lip:{net}.1").matches, diff.snapshot)
    assert as_counts(on_server.groups("local_port")) == {str(server.port): (26, {"LISTEN": 1, "ESTABLISHED": 25})}

    processes = by_key(counter, "process")
    assert processes[f"ns-top-server ({server.pid})"].states == {"LISTEN": 1, "ESTABLISHED": 25}
    assert processes[f"ns-top-many ({many.pid})"].states == {"ESTABLISHED": 20}
    assert processes[f"ns-top-few ({few.pid})"].filter_text == f"pid:{few.pid}"
    assert processes[f"ns-top-few ({few.pid})"].total == 5

    # Sorted by total, biggest first: NET.1 (25) before NET.2 (20) before NET.3 (5), whatever else is there.
    order = [group.key for group in counter.groups("remote_ip") if group.key.startswith(f"{net}.")]
    assert order == [f"{net}.1", f"{net}.2", f"{net}.3"]

    # Every group of the machine agrees with a count made from the definitions, and each filter is exact.
    assert_matches_reference(counter, sockets)
    mine = {f"{net}.1", f"{net}.2", f"{net}.3", f"{net}.0/24", str(server.port)}
    assert assert_filters_exact(counter, sockets, mine) >= len(mine)
    assert set(GROUPING_LABELS) == set(GROUPINGS)


def test_incremental_counts_equal_a_recount_as_clients_come_and_go(
    hosts: tuple[str, Controlled, Controlled, Controlled], spawn: Callable[..., Controlled]
) -> None:
    net, server, many, few = hosts
    collector = ConnectionCollector()
    counter = GroupCounter()
    feed_until(collector, (counter,), all_accepted(server, 25))

    def recount(diff: SnapshotDiff) -> GroupCounter:
        fresh = GroupCounter()
        fresh.apply_diff(diff_snapshots(None, diff.snapshot))
        return fresh

    def same_as_recount(diff: SnapshotDiff) -> None:
        fresh = recount(diff)
        for grouping in GROUPINGS:
            assert as_counts(counter.groups(grouping)) == as_counts(fresh.groups(grouping)), grouping

    # 8 of NET.2's connections closed normally: the server never closes, so its ends wait in CLOSE_WAIT and the
    # clients' ends in FIN_WAIT2; NET.3's 5 reset, which takes both ends out of the tables.
    assert many.send("close 8") == "ok 12"
    assert few.send("reset 5") == "ok 0"
    time.sleep(0.3)  # loopback delivers at once; this is slack so that it all lands in one refresh
    diff = feed(collector, counter)
    same_as_recount(diff)
    remote = by_key(counter, "remote_ip")
    assert remote[f"{net}.2"].states == {"ESTABLISHED": 12, "CLOSE_WAIT": 8}
    assert remote[f"{net}.2"].change == 0
    # NET.3 has gone: shown this once with total 0 and its change, so a sort by change still sees it.
    assert (remote[f"{net}.3"].total, remote[f"{net}.3"].states, remote[f"{net}.3"].change) == (0, {}, -5)
    assert (remote[f"{net}.1"].total, remote[f"{net}.1"].change) == (20, -5)
    assert remote[f"{net}.1"].states == {"ESTABLISHED": 12, "FIN_WAIT2": 8}
    assert by_key(counter, "process")[f"ns-top-server ({server.pid})"].change == -5
    assert f"ns-top-few ({few.pid})" in by_key(counter, "process")  # emptied, shown once more
    by_change = [g.key for g in counter.groups("remote_ip", sort="change") if g.key.startswith(f"{net}.")]
    assert by_change == [f"{net}.2", f"{net}.1", f"{net}.3"]  # 0, then the two -5s in address order

    diff = feed(collector, counter)
    same_as_recount(diff)
    assert f"{net}.3" not in by_key(counter, "remote_ip")  # and then it is gone
    # The last refresh's change is forgotten too (the same question as above, answered anew, not remembered).
    assert by_key(counter, "remote_ip")[f"{net}.1"].change == 0
    assert f"ns-top-few ({few.pid})" not in by_key(counter, "process")

    # A new client from NET.4 with 7 connections.
    late = spawn(
        "bound-client",
        str(server.port),
        "--host",
        f"{net}.1",
        "--bind",
        f"{net}.4",
        "--count",
        "7",
        "--name",
        "ns-top-late",
    )
    diff = feed_until(
        collector,
        (counter,),
        lambda s: owned_by(s, server.pid)["CLOSE_WAIT"] == 8 and owned_by(s, server.pid)["ESTABLISHED"] == 19,
    )
    same_as_recount(diff)
    assert by_key(counter, "remote_ip")[f"{net}.4"].total == 7
    assert by_key(counter, "process")[f"ns-top-late ({late.pid})"].states == {"ESTABLISHED": 7}

    # The 20-connection client exits: its 12 open connections close, the server's ends go to CLOSE_WAIT.
    many.stop()
    diff = feed_until(collector, (counter,), lambda s: owned_by(s, server.pid)["CLOSE_WAIT"] == 20)
    same_as_recount(diff)
    assert by_key(counter, "remote_ip")[f"{net}.2"].states == {"CLOSE_WAIT": 20}

    # The server exits: every socket it held goes (its ends to LAST_ACK and out; the clients' to TIME_WAIT).
    server.stop()
    diff = feed_until(
        collector,
        (counter,),
        lambda s: (
            not owned_by(s, server.pid) and not any(sock.remote_ip == f"{net}.2" for sock in s.sockets.values())
        ),
    )
    same_as_recount(diff)
    assert_matches_reference(counter, list(diff.snapshot.sockets.values()))


def test_filter_restricts_what_is_counted(hosts: tuple[str, Controlled, Controlled, Controlled]) -> None:
    net, server, many, _ = hosts
    collector = ConnectionCollector()
    # The server's address too: another program may have the same port number on another address.
    on_port = parse_filter(f"lip:{net}.1 lport:{server.port}")
    counter = GroupCounter(on_port.matches)
    diff = feed_until(collector, (counter,), all_accepted(server, 25))

    # Only the server's end of each connection is on its port: no NET.1 group, just the clients' addresses.
    remote = as_counts(counter.groups("remote_ip"))
    assert remote == {f"{net}.2": (20, {"ESTABLISHED": 20}), f"{net}.3": (5, {"ESTABLISHED": 5})}
    assert as_counts(counter.groups("local_port")) == {str(server.port): (26, {"LISTEN": 1, "ESTABLISHED": 25})}
    assert list(as_counts(counter.groups("process"))) == [f"ns-top-server ({server.pid})"]
    # With the filter typed before it, a group's filter_text selects exactly the group's sockets.
    sockets = list(diff.snapshot.sockets.values())
    for group in counter.groups("remote_ip"):
        both = parse_filter(f"{on_port.text} {group.filter_text}")
        assert sum(1 for sock in sockets if both.matches(sock)) == group.total

    # Changes under a filter stay right: closing moves the server's ends from ESTABLISHED to CLOSE_WAIT.
    assert many.send("close 4") == "ok 16"
    diff = feed_until(collector, (counter,), lambda s: owned_by(s, server.pid)["CLOSE_WAIT"] == 4)
    fresh = GroupCounter(on_port.matches)
    fresh.set_filter(on_port.matches, diff.snapshot)
    for grouping in GROUPINGS:
        assert as_counts(counter.groups(grouping)) == as_counts(fresh.groups(grouping))
    assert by_key(counter, "remote_ip")[f"{net}.2"].states == {"ESTABLISHED": 16, "CLOSE_WAIT": 4}

    # Dropping the filter recounts the last snapshot fed: now the clients' ends are there too.
    counter.set_filter(None, None)
    assert by_key(counter, "remote_ip")[f"{net}.1"].total == 25  # 16 ESTABLISHED + 4 FIN_WAIT2 + 5
    assert all(group.change == 0 for group in counter.groups("remote_ip"))
    assert_matches_reference(counter, list(diff.snapshot.sockets.values()))
    # And another filter, by state, on the same snapshot.
    counter.set_filter(parse_filter("state:close_wait").matches, diff.snapshot)
    assert as_counts(counter.groups("remote_ip")).get(f"{net}.2") == (4, {"CLOSE_WAIT": 4})
    assert f"{net}.1" not in by_key(counter, "remote_ip")

    # Recounted 3 sockets a part (a big filter in the app), the counts are those from before until the last part,
    # then those recounted at once; clearing the filter after takes back every socket's counts, kept aside since a
    # filter came on (no part to count).
    before = {grouping: as_counts(counter.groups(grouping)) for grouping in GROUPINGS}
    for matches in (on_port.matches, None):
        at_once = GroupCounter(parse_filter("state:close_wait").matches)
        at_once.apply_diff(diff)
        at_once.set_filter(matches, None)
        parts = counter.set_filter_in_parts(matches, None, part=3)
        steps = 0
        for _step in parts:
            steps += 1
            if matches is not None:
                assert {grouping: as_counts(counter.groups(grouping)) for grouping in GROUPINGS} == before
        assert steps == ((len(sockets) + 2) // 3 - 1 if matches is not None else 0)
        for grouping in GROUPINGS:
            assert as_counts(counter.groups(grouping)) == as_counts(at_once.groups(grouping))
    assert_matches_reference(counter, list(diff.snapshot.sockets.values()))


def test_ipv4_mapped_peers_group_with_their_ipv4_address(spawn: Callable[..., Controlled]) -> None:
    net = private_net()
    # A dual-stack (AF_INET6) server on the mapped form of NET.1: every socket it accepts is tcp6, and its peer
    # is written ::ffff:NET.4 even for an IPv4 client.
    server = spawn("server", "--host", f"::ffff:{net}.1", "--name", "ns-top-dual")
    port = str(server.port)
    six = spawn("bound-client", port, "--host", f"::ffff:{net}.1", "--bind", f"::ffff:{net}.4", "--count", "3")
    four = spawn("bound-client", port, "--host", f"{net}.1", "--bind", f"{net}.4", "--count", "2")
    loop6 = spawn("server", "--host", "::1", "--name", "ns-top-v6")
    v6_client = spawn("bound-client", str(loop6.port), "--host", "::1", "--bind", "::1", "--count", "2")
    assert six.first_line == four.first_line == v6_client.first_line == "ready"
    collector = ConnectionCollector()
    counter = GroupCounter()
    diff = feed_until(collector, (counter,), lambda s: all_accepted(server, 5)(s) and all_accepted(loop6, 2)(s))
    sockets = list(diff.snapshot.sockets.values())
    mapped = [sock for sock in sockets if sock.remote_ip == f"::ffff:{net}.4"]
    assert len(mapped) == 5 and all(sock.proto == "tcp6" for sock in mapped)

    remote = by_key(counter, "remote_ip")
    assert (remote[f"{net}.4"].total, remote[f"{net}.4"].filter_text) == (5, f"rip:{net}.4")
    # The clients' ends: three tcp6 with peer ::ffff:NET.1, two tcp with peer NET.1, one group.
    assert remote[f"{net}.1"].total == 5
    clients = {sock.remote_ip for sock in sockets if sock.pid in (six.pid, four.pid)}
    assert clients == {f"::ffff:{net}.1", f"{net}.1"}
    assert by_key(counter, "remote_net")[f"{net}.0/24"].total == 10
    assert f"::ffff:{net}.4" not in remote

    # IPv6 loopback: ::1 is a host of its own, in ::/64, whose filter leaves out the mapped addresses (grouped as
    # IPv4 above) and the wildcard :: (no peer), which `rip:::/64` alone would also match.
    assert remote["::1"].total >= 4  # both ends of both connections; other programs may hold more
    zero_net = by_key(counter, "remote_net")["::/64"]
    assert zero_net.filter_text == "rip:::/64 !rip:0.0.0.0/0 !rip:::"
    assert any(sock.remote_ip == "::" for sock in sockets)  # tcp6 listeners: :: would otherwise match
    assert_matches_reference(counter, sockets)
    assert_filters_exact(counter, sockets, {f"{net}.1", f"{net}.4", f"{net}.0/24", "::1", "::/64"})


# --- by hand: the edges real traffic seldom reaches ------------------------------------------------------------


def tcp(
    local: str,
    lport: int,
    remote: str,
    rport: int,
    state: str = "ESTABLISHED",
    pid: int | None = 100,
    program: str = "app",
    proto: str = "tcp",
    inode: int = 1,
) -> Socket:
    return Socket(proto, local, lport, remote, rport, state, 0, 0, inode if pid else 0, 0, "", pid, program)


def snapshot(taken_at: float, *sockets: Socket) -> Snapshot:
    return Snapshot(taken_at, {sock.key: sock for sock in sockets})


def test_edges_of_grouping_and_their_filters() -> None:
    sockets = [
        tcp("10.0.0.1", 80, "10.0.0.5", 1000),
        tcp("10.0.0.1", 80, "10.0.0.5", 1001, "TIME_WAIT", pid=None, program=""),
        tcp("10.0.0.1", 80, "0.0.0.0", 0, "LISTEN", inode=7),
        tcp("::", 80, "::", 0, "LISTEN", proto="tcp6", inode=8),
        tcp("::ffff:10.0.0.1", 80, "::ffff:10.0.0.5", 1002, proto="tcp6", pid=200, program="nginx"),
        tcp("0.0.0.0", 5353, "0.0.0.0", 0, "UNCONN", proto="udp", pid=300, program="avahi", inode=9),
        # A peer in 0.0.0.0/24 that is not the wildcard, and IPv6 peers in ::/64 and in another /64.
        tcp("10.0.0.1", 81, "0.0.0.7", 2000),
        tcp("::1", 81, "::1", 2001, proto="tcp6"),
        tcp("2001:db8::1", 443, "2001:db8::abcd:1", 3000, "SYN_RECV", proto="tcp6", pid=None, program=""),
        tcp("2001:db8::1", 443, "2001:db8:0:1::9", 3001, "NEW_SYN_RECV", proto="tcp6", pid=None, program=""),
    ]
    counter = GroupCounter()
    counter.apply_diff(diff_snapshots(None, snapshot(1.0, *sockets)))
    assert_matches_reference(counter, sockets)
    assert assert_filters_exact(counter, sockets, set()) == sum(
        len([g for g in counter.groups(grouping) if g.total]) for grouping in GROUPINGS
    )

    remote = by_key(counter, "remote_ip")
    assert remote["10.0.0.5"].total == 3 and remote["10.0.0.5"].states == {"ESTABLISHED": 2, "TIME_WAIT": 1}
    assert "0.0.0.0" not in remote and "::" not in remote
    nets = by_key(counter, "remote_net")
    assert nets["0.0.0.0/24"].filter_text == "rip:0.0.0.0/24 !rip:0.0.0.0"
    assert nets["2001:db8::/64"].states == {"SYN_RECV": 1}  # NEW_SYN_RECV counts as SYN_RECV
    assert nets["2001:db8:0:1::/64"].total == 1
    processes = by_key(counter, "process")
    assert processes[NO_OWNER].filter_text == "!pid:100,200,300"
    assert processes[NO_OWNER].total == 3
    assert by_key(counter, "local_port")["80"].states == {"ESTABLISHED": 2, "TIME_WAIT": 1, "LISTEN": 2}
    assert by_key(counter, "local_port")["5353"].states == {"UDP": 1}


def test_sorting_ties_and_limits() -> None:
    sockets = [
        tcp("10.0.0.1", 80, f"10.0.{i % 3}.{i}", 1000 + i, pid=i % 4 + 1, program=f"p{i % 4}")
        for i in range(1, 31)
    ]
    sockets += [tcp("10.0.0.1", 80, "10.0.2.99", 5000 + i, "SYN_RECV", pid=None, program="") for i in range(4)]
    counter = GroupCounter()
    counter.apply_diff(diff_snapshots(None, snapshot(1.0, *sockets)))
    nets = counter.groups("remote_net")
    assert [(g.key, g.total) for g in nets] == [("10.0.2.0/24", 14), ("10.0.0.0/24", 10), ("10.0.1.0/24", 10)]
    # Equal totals: by key, as addresses (10.0.0 before 10.0.1), not as text.
    assert [g.key for g in counter.groups("remote_net", sort="SYN_RECV")] == [
        "10.0.2.0/24",
        "10.0.0.0/24",
        "10.0.1.0/24",
    ]
    hosts = counter.groups("remote_ip", sort="key")
    keys = [ipaddress.ip_address(g.key) for g in hosts]
    assert keys == sorted(keys) and str(keys[0]) == "10.0.0.3"  # numeric: 10.0.0.3 < 10.0.0.12
    assert [g.key for g in counter.groups("remote_ip", limit=2)] == ["10.0.2.99", "10.0.0.3"]
    assert [g.key for g in counter.groups("remote_ip", sort="key", limit=3)] == [g.key for g in hosts[:3]]
    assert counter.groups("remote_ip", limit=0) == [] and counter.count("remote_ip") == 31
    ports = counter.groups("local_port", sort="key")
    assert [g.key for g in ports] == ["80"]
    procs = [g.key for g in counter.groups("process", sort="key")]
    assert procs == ["p0 (1)", "p1 (2)", "p2 (3)", "p3 (4)", NO_OWNER]
    assert all(g.change == 0 for grouping in GROUPINGS for g in counter.groups(grouping))  # a first diff
    with pytest.raises(ValueError, match="unknown grouping 'host'"):
        counter.groups("host")
    with pytest.raises(ValueError, match="unknown sort 'size'"):
        counter.groups("process", sort="size")


def test_change_is_per_refresh_and_emptied_groups_linger_once() -> None:
    a = tcp("10.0.0.1", 80, "10.0.0.5", 1000)
    b = tcp("10.0.0.1", 80, "10.0.0.5", 1001)
    c = tcp("10.0.0.1", 80, "10.0.0.6", 1002, pid=101, program="other")
    counter = GroupCounter()
    first = snapshot(1.0, a, b, c)
    counter.apply_diff(diff_snapshots(None, first))
    # The connection from .6 closes, one from .5 goes to TIME_WAIT (losing its owner), a new one from .7 arrives.
    b_closed = tcp("10.0.0.1", 80, "10.0.0.5", 1001, "TIME_WAIT", pid=None, program="")
    d = tcp("10.0.0.1", 80, "10.0.0.7", 1003)
    second = snapshot(2.0, a, b_closed, d)
    counter.apply_diff(diff_snapshots(first, second))
    remote = by_key(counter, "remote_ip")
    assert (remote["10.0.0.5"].total, remote["10.0.0.5"].change) == (2, 0)
    assert remote["10.0.0.5"].states == {"ESTABLISHED": 1, "TIME_WAIT": 1}
    assert (remote["10.0.0.6"].total, remote["10.0.0.6"].change) == (0, -1)
    assert (remote["10.0.0.7"].total, remote["10.0.0.7"].change) == (1, 1)
    assert [g.key for g in counter.groups("remote_ip", sort="change")] == ["10.0.0.7", "10.0.0.5", "10.0.0.6"]
    processes = by_key(counter, "process")
    changes = (processes["app (100)"].change, processes[NO_OWNER].change, processes["other (101)"].change)
    assert changes == (0, 1, -1)
    # Nothing moves: every change is back to 0 and the emptied groups are gone.
    third = snapshot(3.0, a, b_closed, d)
    counter.apply_diff(diff_snapshots(second, third))
    assert "10.0.0.6" not in by_key(counter, "remote_ip") and "other (101)" not in by_key(counter, "process")
    assert all(g.change == 0 for grouping in GROUPINGS for g in counter.groups(grouping))
    # A group that emptied and comes back in the next refresh counts its change from 0.
    fourth = snapshot(4.0, a, d)
    counter.apply_diff(diff_snapshots(third, fourth))
    assert (by_key(counter, "process")[NO_OWNER].total, by_key(counter, "process")[NO_OWNER].change) == (0, -1)
    fifth = snapshot(5.0, a, b_closed, d)
    counter.apply_diff(diff_snapshots(fourth, fifth))
    assert (by_key(counter, "process")[NO_OWNER].total, by_key(counter, "process")[NO_OWNER].change) == (1, 1)
    assert by_key(counter, "remote_ip")["10.0.0.5"].change == 1
