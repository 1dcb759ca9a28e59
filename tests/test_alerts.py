"""Alerts: a real CLOSE_WAIT leak, a real listen queue overflow, real connections from one host; SYN floods and
the edges of hysteresis from hand-made snapshots.

The real tests run on a random 127.A.B.0/24 of their own and feed the engine the sockets of that network only
(the same collector, the snapshot narrowed with the filter `ip:NET/24`): other tests running on this machine at
the same time hold thousands of loopback sockets, and the engine shows only the biggest offenders.
"""

from __future__ import annotations

import errno
import random
import socket
import time
from collections.abc import Callable

from support import Controlled, VethPair

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket
from netscope.collectors.protostats import ProtocolCounter, ProtocolStatsCollector, StatsSnapshot
from netscope.collectors.session.alerts import LISTEN_HOLD, Alert, AlertEngine, Thresholds
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.insights import GroupCounter

# --- real peers (bound-client takes "close K" / "reset K" on stdin) --------------------------------------------


class Scoped:
    """Diffs of this machine's real sockets, narrowed to one test network."""

    def __init__(self, net: str) -> None:
        self.collector = ConnectionCollector()
        self.mine = parse_filter(f"ip:{net}.0/24").matches
        self.previous: Snapshot | None = None

    def next_diff(self) -> SnapshotDiff:
        full = self.collector.collect()
        snapshot = Snapshot(full.taken_at, {key: s for key, s in full.sockets.items() if self.mine(s)})
        diff = diff_snapshots(self.previous, snapshot)
        self.previous = snapshot
        return diff

    def until(self, engine: AlertEngine, condition: Callable[[Snapshot], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            diff = self.next_diff()
            engine.update(diff)
            if condition(diff.snapshot):
                return
            assert time.monotonic() < deadline, "the sockets never reached the expected state"
            time.sleep(0.05)


def private_net() -> str:
    return f"127.{random.randint(100, 254)}.{random.randint(1, 254)}"


def states_of(snapshot: Snapshot, pid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for sock in snapshot.sockets.values():
        if sock.pid == pid:
            found[sock.counter_name] = found.get(sock.counter_name, 0) + 1
    return found


def of_kind(alerts: list[Alert], kind: str) -> list[Alert]:
    return [alert for alert in alerts if alert.kind == kind]


# --- real ------------------------------------------------------------------------------------------------------


def test_close_wait_leak_of_a_real_server(spawn: Callable[..., Controlled]) -> None:
    net = private_net()
    # peers.py's server accepts and never closes: when a client closes, the server's end waits in CLOSE_WAIT.
    server = spawn("server", "--host", f"{net}.1", "--name", "ns-leaky")
    clients = spawn("bound-client", str(server.port), "--host", f"{net}.1", "--bind", f"{net}.2", "--count", "40")
    engine = AlertEngine(Thresholds(close_wait=12, close_wait_refreshes=3))
    source = Scoped(net)
    source.until(engine, lambda s: states_of(s, server.pid) == {"LISTEN": 1, "ESTABLISHED": 40})

    raised_at: int | None = None
    since = 0.0
    for refresh in range(1, 7):
        assert clients.send("close 5") == f"ok {40 - 5 * refresh}"
        time.sleep(0.1)  # slack: loopback delivers the FIN before close() returns, nearly always
        diff = source.next_diff()
        leaks = of_kind(engine.update(diff), "close_wait_leak")
        held = states_of(diff.snapshot, server.pid).get("CLOSE_WAIT", 0)
        if refresh <= 3:
            # Three rising steps need four refreshes with CLOSE_WAIT sockets: never sooner, whatever the count.
            assert not leaks, (refresh, held)
            continue
        if leaks and raised_at is None:
            raised_at, since = refresh, diff.snapshot.taken_at
        if raised_at is not None:
            (leak,) = leaks
            assert leak.severity == "warning" and leak.since == since
            assert leak.title == f"CLOSE_WAIT leak? ns-leaky (pid {server.pid}) holds {held} CLOSE_WAIT sockets"
            assert leak.filter_text == f"pid:{server.pid} state:close_wait"
            assert leak.detail.startswith("Rising for 3 refreshes")
            # The filter shows exactly the leaking sockets.
            shown = parse_filter(leak.filter_text)
            assert sum(1 for s in diff.snapshot.sockets.values() if shown.matches(s)) == held
    assert raised_at is not None and raised_at <= 5

    # The server exits: its CLOSE_WAIT sockets go with it, and so does the alert.
    server.stop()
    source.until(engine, lambda s: not states_of(s, server.pid))
    assert not of_kind(engine.active, "close_wait_leak")


def test_listen_queue_overflow_of_a_real_listener(spawn: Callable[..., Controlled]) -> None:
    net = private_net()
    stuck = spawn("stuck-listener", "--host", f"{net}.1", "--backlog", "2", "--name", "ns-stuck")
    engine = AlertEngine()
    source = Scoped(net)
    engine.update(source.next_diff())
    stats = ProtocolStatsCollector()
    before = stats.collect()
    engine.update_counters(before)
    assert not engine.active

    # Twelve connection attempts on a listener that never accepts: the accept queue takes backlog + 1, then the
    # kernel drops the SYNs (TcpExt ListenOverflows and ListenDrops go up).
    clients = []
    try:
        for _ in range(12):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setblocking(False)
            client.bind((f"{net}.2", 0))
            assert client.connect_ex((f"{net}.1", stuck.port)) in (0, errno.EINPROGRESS)
            clients.append(client)
        source.until(
            engine, lambda s: any(sock.state == "LISTEN" and sock.recv_q == 3 for sock in s.sockets.values())
        )
        after = stats.collect()
        engine.update_counters(after)
    finally:
        for client in clients:
            client.close()

    def value(sample: StatsSnapshot, name: str) -> int:
        return next(c.value for c in sample.counters if (c.group, c.name) == ("TcpExt", name))

    assert value(after, "ListenOverflows") > value(before, "ListenOverflows")
    (overflow,) = of_kind(engine.active, "listen_overflow")
    dropped = max(value(after, name) - value(before, name) for name in ("ListenOverflows", "ListenDrops"))
    assert overflow.severity == "error" and overflow.since == after.taken_at
    assert overflow.title == f"Listen queue overflow: {dropped} connection attempts dropped"
    assert f"{net}.1:{stuck.port} ns-stuck (pid {stuck.pid}): 3 waiting" in overflow.detail
    assert (
        f"ListenOverflows +{value(after, 'ListenOverflows') - value(before, 'ListenOverflows')}" in overflow.detail
    )
    assert overflow.filter_text == f"state:listen lport:{stuck.port}"

    # Quiet samples: it holds for a while (no flapping between two overflows), then clears. Another program's
    # overflow meanwhile would only hold it longer; so wait for it to clear, within reason.
    engine.update_counters(stats.collect())
    assert of_kind(engine.active, "listen_overflow")
    for _ in range(20):
        if not of_kind(engine.active, "listen_overflow"):
            break
        time.sleep(0.1)
        engine.update_counters(stats.collect())
    assert not of_kind(engine.active, "listen_overflow")


def test_many_connections_with_one_remote_host(spawn: Callable[..., Controlled], veth_pair: VethPair) -> None:
    # A real remote host: the clients run in their own network namespace and reach the server over a veth pair.
    net = veth_pair.host_address.rsplit(".", 1)[0]
    server = spawn("server", "--host", veth_pair.host_address, "--name", "ns-popular")
    clients = spawn("bound-client", str(server.port), "--host", veth_pair.host_address, "--bind",
                    veth_pair.peer_address, "--count", "20", namespace=veth_pair.namespace)
    engine = AlertEngine(Thresholds(per_remote_ip=10))
    source = Scoped(net)
    source.until(engine, lambda s: states_of(s, server.pid) == {"LISTEN": 1, "ESTABLISHED": 20})
    hosts = {alert.filter_text: alert for alert in of_kind(engine.active, "remote_host")}
    # Only the server's 20 ends are in this namespace; their peer is the client's address.
    assert set(hosts) == {f"rip:{veth_pair.peer_address}"}
    client_side = hosts[f"rip:{veth_pair.peer_address}"]
    peer = veth_pair.peer_address
    assert client_side.title == f"{peer}: 20 connections" and client_side.severity == "warning"
    assert client_side.detail == f"20 sockets have {peer} as their peer (the alert is at 10). Filter: rip:{peer}"
    since = client_side.since

    # Resets take both ends out of the tables at once. 8 left: under 10, but not under half of it: still on.
    assert clients.send("reset 12") == "ok 8"
    source.until(engine, lambda s: states_of(s, server.pid) == {"LISTEN": 1, "ESTABLISHED": 8})
    hosts = {alert.filter_text: alert for alert in of_kind(engine.active, "remote_host")}
    assert hosts[f"rip:{peer}"].title == f"{peer}: 8 connections" and hosts[f"rip:{peer}"].since == since
    # 4 left: under half of the threshold, cleared.
    assert clients.send("reset 4") == "ok 4"
    source.until(engine, lambda s: states_of(s, server.pid) == {"LISTEN": 1, "ESTABLISHED": 4})
    assert not of_kind(engine.active, "remote_host")


# --- by hand ---------------------------------------------------------------------------------------------------


def half_open(source: str, port: int, state: str = "SYN_RECV", local: str = "10.0.0.1", lport: int = 80) -> Socket:
    proto = "tcp6" if ":" in source else "tcp"
    local = f"::ffff:{local}" if proto == "tcp6" else local
    return Socket(proto, local, lport, source, port, state, 0, 0, 0, 0)


def owned(remote_port: int, state: str, pid: int, program: str = "worker") -> Socket:
    return Socket("tcp", "10.0.0.1", 8080, "10.0.0.50", remote_port, state, 0, 0, 5000 + remote_port, 0, "", pid,
                  program)  # fmt: skip


LISTENER = Socket("tcp", "0.0.0.0", 80, "0.0.0.0", 0, "LISTEN", 0, 0, 42, 0, "", 7, "nginx")


class Frames:
    """Hand-made snapshots one second apart, diffed as the collector diffs them."""

    def __init__(self) -> None:
        self.previous: Snapshot | None = None
        self.taken_at = 1_000_000.0

    def __call__(self, *sockets: Socket) -> SnapshotDiff:
        self.taken_at += 1
        snapshot = Snapshot(self.taken_at, {sock.key: sock for sock in (LISTENER, *sockets)})
        diff = diff_snapshots(self.previous, snapshot)
        self.previous = snapshot
        return diff


def flood(by_source: dict[str, int]) -> list[Socket]:
    """Half-open connections: so many from each source address."""
    sockets = []
    for address, count in by_source.items():
        for index in range(count):
            # Every other one as the kernel's NEW_SYN_RECV, which counts as SYN_RECV.
            sockets.append(half_open(address, 10_000 + index, "NEW_SYN_RECV" if index % 2 else "SYN_RECV"))
    return sockets


def test_syn_flood_names_its_sources_and_clears_with_hysteresis() -> None:
    engine = AlertEngine(Thresholds(syn_recv=100, syn_recv_rise=50))
    frames = Frames()
    assert engine.update(frames(*flood({"10.0.0.5": 5}))) == []  # a few half-open: normal
    others = [half_open(f"192.0.2.{i}", 20_000 + i) for i in range(20)]
    # The source written ::ffff:10.0.0.9 (a dual-stack listener's) counts as 10.0.0.9.
    mapped = [half_open("::ffff:10.0.0.9", 30_000 + i) for i in range(60)]
    peak = [*flood({"10.0.0.5": 120, "10.0.0.7": 40}), *mapped, *others]
    (alert,) = engine.update(frames(*peak))
    assert alert.kind == "syn_flood" and alert.severity == "error"
    assert alert.title == "SYN flood? 240 half-open connections (+235)"
    assert alert.detail == (
        "Top sources: 10.0.0.5 (120), 10.0.0.9 (60), 10.0.0.7 (40) of 23 addresses; to port 80 (240). "
        "Filter: state:syn_recv"
    )
    assert alert.filter_text == "state:syn_recv" and alert.since == frames.taken_at
    since = alert.since

    # Under the threshold but at least half of it (the lower of the peak and the threshold): still a flood.
    (alert,) = engine.update(frames(*peak[:60]))
    assert alert.title == "SYN flood? 60 half-open connections (-180)" and alert.severity == "warning"
    assert alert.since == since
    assert engine.update(frames(*peak[:50]))  # 50 of 100: on
    assert engine.update(frames(*peak[:49])) == []  # under half: over
    assert engine.update(frames(*peak[:55])) == []  # a small rise is no flood
    assert engine.update(frames(*peak[:40])) == []

    # A sudden rise alone, under the threshold: a warning, kept while at least half of that peak.
    rise = flood({"10.0.0.8": 98})
    (alert,) = engine.update(frames(*rise))
    assert alert.severity == "warning" and alert.title == "SYN flood? 98 half-open connections (+58)"
    assert alert.detail.startswith("Top sources: 10.0.0.8 (98); to port 80 (98).")
    assert alert.since == frames.taken_at != since
    assert engine.update(frames(*rise[:49]))
    assert engine.update(frames(*rise[:48])) == []


def test_a_spread_out_flood_says_the_sources_are_probably_spoofed() -> None:
    engine = AlertEngine()
    frames = Frames()
    engine.update(frames())
    spoofed = [half_open(f"198.51.{i // 250}.{i % 250}", 40_000 + i, lport=443) for i in range(400)]
    (alert,) = engine.update(frames(*spoofed))
    assert "of 400 addresses; to port 443 (400)" in alert.detail
    assert alert.detail.endswith("likely spoofed; check that net.ipv4.tcp_syncookies is on")


def test_close_wait_leak_hysteresis_and_what_does_not_count() -> None:
    engine = AlertEngine(Thresholds(close_wait=10, close_wait_refreshes=3))
    frames = Frames()
    held: list[Socket] = []

    def step(count: int, pid: int = 300) -> list[Alert]:
        while len(held) < count:
            held.append(owned(len(held) + 1, "CLOSE_WAIT", pid))
        del held[count:]
        return of_kind(engine.update(frames(*held)), "close_wait_leak")

    # Many already, but flat: no leak; then a fall, and rises that come too soon after it.
    assert [bool(step(n)) for n in (30, 30, 30, 30, 29, 30, 31)] == [False] * 7
    (leak,) = step(32)  # 29 -> 30 -> 31 -> 32: three refreshes without a fall, and it grew
    assert leak.title == "CLOSE_WAIT leak? worker (pid 300) holds 32 CLOSE_WAIT sockets"
    assert leak.since == frames.taken_at
    assert leak.detail.startswith("Rising for 3 refreshes (+3): it is not closing")
    since = leak.since
    # It stays while the process holds at least half of the threshold, whatever the trend says.
    assert "Rising for 3 refreshes (+2)" in step(32)[0].detail
    assert "Rising for 3 refreshes (+1)" in step(32)[0].detail
    (leak,) = step(32)
    assert leak.detail.startswith("None closed in 3 refreshes") and leak.since == since
    (leak,) = step(5)
    assert leak.detail.startswith("Down 27 in 3 refreshes")
    assert step(4) == []  # under 5: cleared
    assert [bool(step(n)) for n in (5, 6, 7, 8)] == [False] * 4  # rising, but under the threshold
    (leak,) = step(10)  # 6 -> 7 -> 8 -> 10: a leak again, raised anew
    assert leak.since == frames.taken_at > since

    # Sockets without an owner (unknown PID) have no process to blame.
    engine = AlertEngine(Thresholds(close_wait=2, close_wait_refreshes=1))
    frames = Frames()
    engine.update(frames())
    orphans = [Socket("tcp", "10.0.0.1", 8080, "10.0.0.50", p, "CLOSE_WAIT", 0, 0, 0, 0) for p in range(1, 7)]
    assert engine.update(frames(*orphans[:5])) == []
    assert engine.update(frames(*orphans)) == []
    # The same with an owner: a leak.
    assert engine.update(frames(*(owned(p, "CLOSE_WAIT", 8) for p in range(1, 6)))) == []
    (leak,) = engine.update(frames(*(owned(p, "CLOSE_WAIT", 8) for p in range(1, 7))))
    assert leak.filter_text == "pid:8 state:close_wait"


def test_thresholds_of_zero_turn_alerts_off_and_can_change_on_the_fly() -> None:
    engine = AlertEngine(Thresholds(syn_recv=0, syn_recv_rise=0, per_remote_ip=0))
    frames = Frames()
    engine.update(frames())
    many = flood({"10.0.0.5": 600})
    assert engine.update(frames(*many)) == []
    # Thresholds changed between refreshes: every host is looked at again, not only those that moved.
    engine.thresholds.per_remote_ip = 500
    (host,) = engine.update(frames(*many))
    assert host.kind == "remote_host" and host.title == "10.0.0.5: 600 connections"
    assert host.detail.startswith(
        "600 sockets have 10.0.0.5 as their peer (the alert is at 500), 600 of them half"
    )


def test_a_first_diff_starts_over() -> None:
    engine = AlertEngine(Thresholds(syn_recv=100, syn_recv_rise=10))
    frames = Frames()
    engine.update(frames(*flood({"10.0.0.5": 5})))
    (alert,) = engine.update(frames(*flood({"10.0.0.5": 60})))  # a rise of 55
    first_since = alert.since
    # A replay sought elsewhere (or a restarted collector): a first diff. 60 half-open is no rise from nothing,
    # and under the threshold: no alert. Over the threshold it alerts at once, with a new `since`.
    replay = Frames()
    replay.taken_at = 5_000_000.0
    assert engine.update(replay(*flood({"10.0.0.5": 60}))) == []
    replay.previous = None
    (alert,) = engine.update(replay(*flood({"10.0.0.5": 150})))
    assert alert.title == "SYN flood? 150 half-open connections (+0)" and alert.since != first_since


def test_a_filtered_group_counter_changes_nothing() -> None:
    frames = Frames()
    diffs = [frames(*flood({"10.0.0.5": 5})), frames(*flood({"10.0.0.5": 150}))]
    plain, given = AlertEngine(), AlertEngine()
    filtered = GroupCounter(parse_filter(":22").matches)  # what the UI might pass: it sees none of these
    for diff in diffs:
        filtered.apply_diff(diff)
        assert plain.update(diff) == given.update(diff, filtered)
    assert plain.active and plain.active[0].kind == "syn_flood"


def counters(taken_at: float, overflows: int, drops: int) -> StatsSnapshot:
    return StatsSnapshot(
        taken_at,
        [
            ProtocolCounter("Tcp", "ActiveOpens", 5, 0, 0.0),
            ProtocolCounter("TcpExt", "ListenOverflows", overflows, 0, 0.0),
            ProtocolCounter("TcpExt", "ListenDrops", drops, 0, 0.0),
        ],
    )


def test_listen_overflow_from_counters() -> None:
    engine = AlertEngine(Thresholds(listen_drops=5))
    frames = Frames()
    waiting = [
        Socket("tcp", "10.0.0.1", 8080, "0.0.0.0", 0, "LISTEN", 129, 0, 43, 0, "", 9, "api", backlog=128),
        Socket("tcp6", "::", 8443, "::", 0, "LISTEN", 12, 0, 44, 0, "", 10, "proxy"),
    ]
    engine.update(frames(*waiting))
    engine.update_counters(counters(10.0, 1000, 1000))
    assert engine.active == []  # the first sample is only a baseline
    engine.update_counters(counters(11.0, 1003, 1004))
    assert engine.active == []  # moved by 4, under 5
    engine.update_counters(counters(12.0, 1010, 1012))
    (alert,) = engine.active
    assert (alert.kind, alert.severity, alert.since) == ("listen_overflow", "error", 12.0)
    assert alert.title == "Listen queue overflow: 8 connection attempts dropped"
    assert alert.detail.startswith(
        "ListenOverflows +7, ListenDrops +8. Not accepted fast enough: 10.0.0.1:8080 api (pid 9): 129 waiting "
        "of a backlog of 128; [::]:8443 proxy (pid 10): 12 waiting."
    )
    assert alert.filter_text == "state:listen lport:8080,8443"
    # Quiet samples: held for LISTEN_HOLD of them, `since` kept when it moves again meanwhile.
    engine.update_counters(counters(13.0, 1010, 1012))
    engine.update_counters(counters(14.0, 1020, 1022))
    assert engine.active[0].since == 12.0 and "ListenOverflows +10" in engine.active[0].detail
    for second in range(LISTEN_HOLD - 1):
        engine.update_counters(counters(15.0 + second, 1020, 1022))
        assert engine.active
    engine.update_counters(counters(20.0, 1020, 1022))
    assert engine.active == []
    # A counter that went down was reset: no movement. A sample without the counters changes nothing.
    engine.update_counters(counters(21.0, 3, 3))
    engine.update_counters(StatsSnapshot(22.0, []))
    engine.update_counters(counters(23.0, 3, 3))
    assert engine.active == []

    # No listener has anything waiting (the queue emptied between refreshes): say so, show all listeners.
    calm = AlertEngine()
    calm.update(Frames()())
    calm.update_counters(counters(1.0, 0, 0))
    calm.update_counters(counters(2.0, 2, 2))
    (alert,) = calm.active
    assert alert.filter_text == "listen" and "no listening socket has connections waiting now" in alert.detail


def test_alerts_are_sorted_errors_first() -> None:
    engine = AlertEngine(Thresholds(per_remote_ip=50, close_wait=3, close_wait_refreshes=1))
    frames = Frames()
    engine.update(frames())
    engine.update_counters(counters(1.0, 0, 0))
    engine.update_counters(counters(2.0, 1, 1))
    leaking = [owned(port, "CLOSE_WAIT", 77, "leaky") for port in range(1, 5)]
    engine.update(frames(*flood({"10.0.0.5": 150}), *leaking[:3]))
    alerts = engine.update(frames(*flood({"10.0.0.5": 150}), *leaking))
    assert [alert.kind for alert in alerts] == ["syn_flood", "listen_overflow", "close_wait_leak", "remote_host"]
    assert [alert.severity for alert in alerts] == ["error", "error", "warning", "warning"]
    assert alerts == engine.active


def test_loopback_peers_never_raise_the_remote_host_alert(spawn: Callable[..., Controlled]) -> None:
    # The machine talking to itself (a local proxy, a database on localhost) is not a remote host.
    net = private_net()
    server = spawn("server", "--host", f"{net}.1", "--name", "ns-local")
    spawn("bound-client", str(server.port), "--host", f"{net}.1", "--bind", f"{net}.2", "--count", "20")
    engine = AlertEngine(Thresholds(per_remote_ip=10))
    Scoped(net).until(engine, lambda s: states_of(s, server.pid) == {"LISTEN": 1, "ESTABLISHED": 20})
    assert not of_kind(engine.active, "remote_host")
