"""Recording views 2-5 (interfaces, routes, statistics, multicast): round trips of this machine's real views,
routing tables recorded whole once and then only their changes, version 1 files, damage, size over an hour, the
headless recorder, and replaying views in step with the sockets."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import math
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixed_views import FixedViews, record_fixed
from support import VethPair
from test_recording import Pump, assert_same_diff, frame_ends, synthetic

from netscope.app.printed.replay import recording_info
from netscope.collectors.connections import CollectionFailure, ConnectionCollector
from netscope.collectors.interfaces import Interface, InterfaceCounters, InterfaceSnapshot
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.multicast import Membership, MulticastSnapshot
from netscope.collectors.protostats import ProtocolCounter, StatsSnapshot
from netscope.collectors.recording import (
    FRAME_HEADER_SIZE,
    FRAME_HEADER_SIZE_V1,
    MAGIC,
    ROUTES_DELTA,
    ROUTES_KEYFRAME,
    SYNC,
    VIEWS_DELTA,
    RecordedViews,
    RecordingReader,
    RecordingTee,
    RecordingWriter,
    ReplaySource,
)
from netscope.collectors.routes import Route, RouteSnapshot
from netscope.collectors.view_data import SystemViews, ViewData

NETSCOPE = [sys.executable, "-m", "netscope"]

# An hour of a busy server's views, one write_views() a second (450 counters with 60 to 120 of them moving by
# random amounts, six interfaces with random traffic and five minutes of history, 40 routes read every 10 s and
# changed every 10 minutes) measured 2,513,975 bytes (collectors/recording/fileformat.py's docstring); the bound
# leaves room for another zlib build's choices, not for a regression.
HOUR_OF_VIEWS_BOUND = 2_800_000

# Made by netscope's version-1 writer (before views were recorded) from synthetic(6, n=4, churn=0.25) with
# keyframe_seconds=3.0: keyframes at frames 0 and 3, closed properly.
V1_SAMPLE = (
    "iU5FVFNDT1BFDQoaCgABAAAAeXsiZm9ybWF0IjoibmV0c2NvcGUgcmVjb3JkaW5nIiwidmVyc2lvbiI6MSwiY3JlYXRlZCI6MTc5"
    "NTQ4MzA3OS41ODI5NDQsImhvc3RuYW1lIjoidm0iLCJuZXRzY29wZSI6IjAuMS4wIiwiaW50ZXJ2YWwiOjEuMH3NSnYDiU5TRgAA"
    "AOFB2ki+mBAAAAGS+0o+jdHBasMwDADQf9FZNZIdZ3FuGyu0sFt3Kz2EJl0LIQm223SU/vsUb2yMrWP2RZaxn2RfIEC5XkPcDoDA"
    "pKZpAbPMyNJpxXkhmTyXlCPSCPPV8/3D03K1mD8CkkxL03Bo5EQ1yDWsKUMYXuO+7wxgd2xbpA3+RAr6MozSpAGNLSb5d8QUCfF9"
    "H5MicQj7+i/iWx9GMTOgtTZ3t4w7SsY4jrO6ilVypMzu5dCd/w2xYivNZIZvQ+79xXxTH0JS9MdiFhp/avwntkHYQRn9sUHoodxV"
    "bZBolG+TnS2UUgAJ565viU5TRgAAAEFB2ki+mFAAAAAPHUy4q1ZKxBqXZsbmlihus4TEpqEJDrcZGhgSik2g1RUgy9AThLGhkZGO"
    "obm5CRGhCTKkCGgIMDyRPAbxkZG5mYlxLQCJTlNGAAAALUHaSL6YkAAAAPgfEi+rVkokHJfAcDYEihlbWJjichrQLUSEAdDyCogb"
    "ioCUcSyy4yCuMjY0MbOoBQCJTlNGAAAA2EHaSL6Y0AAAAcsv2vid0V9LwzAQAPDvcs9nuD+5Ju2bsoGCb/Nt7KFsbgqlHbZSQfzu"
    "Xic6mBTE5OWSC/dLLu/QQ7Vew7A9AgJTmKYBZvJVKYGLHDQICaBajoqwXD1c39zfrW6XC0DyaeRDM6onX7puAGQhj/v+aedxKrSc"
    "TlAQQ9rgbytOZc8YMwOaWVFeYMoiXi/FLzLRiRzH8WpXD/WJ9Vu3h+f27T+usO9pznbpfj/S6/9JlFnRosqZ5JCy73lzeU40nWlr"
    "+9o0bmwQ9lDt66Z/ROh+otH/1FNbqByOuUj68QmJTlNGAAAAL0HaSL6ZEAAAAN2IBo+rVkrEGtFmxuaWyE4ytASGvomZsYkJTjeZ"
    "EXRTBcT+IiBlHIvsMIiLjI2NjM1rAYlOU0YAAAAtQdpIvplQAAAABzjQwKtWSsQa0eiBb24AdJKFkbkZLidZ4A0EhLsqIG4oAlJG"
    "sciOg7jKwMLQwrQWAIlOU0YAAAAAQdrBOXHlU7MCclCNgw=="
)


# --- data --------------------------------------------------------------------------------------------------------


def busy_views(
    seconds: int, *, seed: int = 7, t0: float = 1_763_900_000.0, counters: int = 450, moving: int = 60,
    interfaces: int = 6, routes: int = 40, routes_every: int = 10,
) -> Iterator[tuple[float, ViewData]]:  # fmt: skip
    """(time, ViewData) once a second of a busy server, built the way the collectors build them: every rate is a
    change over one elapsed time per sample, histories grow by each sample's rate, routes are read every
    `routes_every` seconds and one changes every ten minutes."""
    rng = random.Random(seed)
    groups = ["Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite", "TcpExt", "IpExt", "MPTcpExt", "Ip6", "Icmp6",
              "Udp6"]  # fmt: skip
    names = [(groups[i * len(groups) // counters], f"Counter{i}") for i in range(counters)]
    gauges = set(rng.sample(range(counters), 8))
    values = [rng.randint(0, 10**9) if rng.random() < 0.6 else 0 for _ in range(counters)]
    hot = rng.sample(range(counters), min(counters, moving * 2))
    steady, sometimes = set(hot[:moving]), set(hot[moving:])
    ifaces = [f"eth{i}" for i in range(interfaces)]
    totals = {name: [rng.randint(0, 10**12) for _ in range(14)] for name in ifaces}
    history = {name: (deque(maxlen=300), deque(maxlen=300)) for name in ifaces}
    table = [Route(4, f"10.{i // 250}.{i % 250}.0/24", "192.0.2.1", "eth0", "UG", 0, "static", "global", "main")
             for i in range(routes)]  # fmt: skip
    joined = [Membership(name, 4, "224.0.0.1", 1) for name in ifaces] + [
        Membership(name, 6, "ff02::1", 1) for name in ifaces
    ]
    for second in range(seconds):
        at = t0 + second
        elapsed = 1.0 + rng.uniform(-0.003, 0.003)  # one per sample, as ProtocolStatsCollector measures it
        stats = []
        for index, (group, name) in enumerate(names):
            delta = 0
            if second and (index in steady or (index in sometimes and rng.random() < 0.5)):
                delta = rng.randint(-20, 20) if index in gauges else rng.randint(1, 5000)
            values[index] += delta
            stats.append(ProtocolCounter(group, name, values[index], delta, delta / elapsed if delta else 0.0,
                                         "", index in gauges))  # fmt: skip
        elapsed = 1.0 + rng.uniform(-0.003, 0.003)  # InterfaceCollector's own clock
        items = []
        for index, name in enumerate(ifaces):
            before = list(totals[name])
            now = totals[name]
            if second:
                for field_index, low, high in ((0, 10**5, 10**8), (1, 100, 80_000), (7, 10**5, 10**8),
                                               (8, 100, 80_000)):  # fmt: skip
                    now[field_index] += rng.randint(low, high)
                if rng.random() < 0.05:
                    now[3] += 1
            rates = [(now[k] - before[k]) / elapsed if second else 0.0 for k in (0, 7, 1, 8)]
            if second:
                history[name][0].append(rates[0])
                history[name][1].append(rates[1])
            items.append(Interface(
                name, index + 2, True, True, 1500, "BMRU", 10000, f"52:54:00:00:00:{index:02x}",
                [f"192.0.2.{index + 2}/24"], ["fe80::1/64"], InterfaceCounters(*now), *rates,
                list(history[name][0]), list(history[name][1]), "up",
            ))  # fmt: skip
        data = ViewData(InterfaceSnapshot(at + 0.001, items), None, StatsSnapshot(at + 0.002, stats),
                        MulticastSnapshot(at + 0.003, list(joined)))  # fmt: skip
        if second % routes_every == 0:
            if second and second % 600 == 0:
                table = [*table[1:], Route(4, f"172.16.{second // 600}.0/24", "192.0.2.1", "eth0", "UG", 0,
                                           "static", "global", "main")]  # fmt: skip
            data.routes = RouteSnapshot(at + 0.004, list(table), "netlink")
        yield at + 0.005, data


def expected_at(recorded: list[tuple[float, ViewData]], when: float) -> ViewData:
    """What views_at(when) must give: each part the latest recorded at or before `when`."""
    latest = ViewData()
    for at, data in recorded:
        if at > when:
            break
        for name in ("interfaces", "routes", "statistics", "multicast"):
            if getattr(data, name) is not None:
                setattr(latest, name, getattr(data, name))
    return latest


def same_views(got: ViewData, want: ViewData) -> bool:
    return (got.interfaces, got.routes, got.statistics, got.multicast) == (
        want.interfaces, want.routes, want.statistics, want.multicast)  # fmt: skip


def assert_same_views(got: ViewData, want: ViewData) -> None:
    assert got.interfaces == want.interfaces
    assert got.routes == want.routes
    assert got.statistics == want.statistics
    assert got.multicast == want.multicast


def send_udp(address: str, count: int) -> None:
    """Loopback traffic so that counters and rates move: datagrams to a port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(count):
            sender.sendto(b"x" * 500, (address, 9))


def record_with_views(
    path: Path, frames: int, *, views_every: int = 1, **options: float
) -> tuple[list[SnapshotDiff], list[tuple[float, ViewData]]]:
    """Synthetic sockets a second, and synthetic views read a quarter of a second after each socket frame."""
    diffs = list(synthetic(frames, n=30, churn=0.1))
    views = list(busy_views(frames, t0=diffs[0].snapshot.taken_at, counters=80, moving=10, interfaces=3,
                            routes=12, routes_every=3))  # fmt: skip
    recorded: list[tuple[float, ViewData]] = []
    with RecordingWriter(path, **options) as writer:
        for index, diff in enumerate(diffs):
            writer.write(diff)
            if index % views_every == 0:
                at = diff.snapshot.taken_at + 0.25
                writer.write_views(at, views[index][1])
                recorded.append((at, views[index][1]))
    return diffs, recorded


def view_frame_ends(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, kind) of every frame, from the documented version 2 layout."""
    _, length = struct.unpack_from("!HI", data, len(MAGIC))
    pos = len(MAGIC) + 6 + length + 4
    found = []
    while pos < len(data):
        sync, size, _, kind = struct.unpack_from("!4sIdB", data, pos)
        assert sync == SYNC
        found.append((pos, pos + FRAME_HEADER_SIZE + size, kind))
        pos += FRAME_HEADER_SIZE + size
    return found


# --- round trips -------------------------------------------------------------------------------------------------


def test_this_machines_views_replay_as_they_were_read(tmp_path: Path) -> None:
    path = tmp_path / "real.nsrec"
    views = SystemViews()
    views.recording = True
    collector = ConnectionCollector()
    recorded: list[tuple[float, ViewData]] = []
    sockets = []
    with RecordingWriter(path, interval=0.2) as writer:
        for index in range(10):
            send_udp("127.0.0.1", 200)
            diff = collector.next_diff()
            writer.write(diff)
            sockets.append(dict(diff.snapshot.sockets))
            # Routes at the first read (recording starts) and while their view is shown.
            data = views.collect("routes" if index in (4, 5) else "connections")
            at = time.time()
            writer.write_views(at, data)
            recorded.append((at, data))
            time.sleep(0.15)
    assert [data.routes is not None for _, data in recorded] == [i in (0, 4, 5) for i in range(10)]
    # The traffic moved things, so that rates, changes and history are really compared below.
    lo = [next(i for i in data.interfaces.interfaces if i.name == "lo") for _, data in recorded[1:]]
    assert all(i.tx_bytes_per_s > 0 for i in lo) and len(lo[-1].tx_history) >= 8
    assert all(any(c.delta and c.rate for c in data.statistics.counters) for _, data in recorded[1:])
    with RecordingReader(path) as reader:
        assert reader.damage is None and reader.complete and reader.has_views and reader.version == 2
        assert reader.views_timestamps == [at for at, _ in recorded]
        assert len(reader.routes_timestamps) == 3
        for index in [*range(10), *reversed(range(10)), 3, 8, 0]:  # forward, back, and jumps
            at, data = recorded[index]
            got = reader.views_at(at)
            assert_same_views(got, expected_at(recorded, at))
            assert got.interfaces == data.interfaces and got.statistics == data.statistics
            if data.routes is not None:
                assert got.warnings == data.warnings
            # Between two reads: the one on screen then.
            assert_same_views(reader.views_at(at + 0.1), expected_at(recorded, at))
            assert reader.snapshot_at(index).sockets == sockets[index]
        before = reader.views_at(recorded[0][0] - 1)
        assert before == ViewData()


def test_every_kind_of_change_round_trips(tmp_path: Path) -> None:
    """Random walks through what the collectors can give: interfaces that come, go and are re-created, counters
    that go back, rates no elapsed time explains, unrecorded samples in between, counters the kernel adds, route
    tables that gain, lose, change and reorder routes, failed reads (None) and their warnings."""
    rng = random.Random(5)
    path = tmp_path / "walk.nsrec"
    recorded: list[tuple[float, ViewData]] = []
    walk = RandomViews(rng)
    with RecordingWriter(path, keyframe_seconds=40.0) as writer:
        for step in range(300):
            at = 1_763_900_000.0 + step * 0.5
            data = walk.next(at)
            writer.write_views(at, data)
            recorded.append((at, data))
        assert writer.route_keyframes >= 2 and writer.route_changes > 20
    with RecordingReader(path) as reader:
        assert reader.damage is None
        order = list(range(300))
        rng.shuffle(order)
        for index in list(range(300)) + order[:60]:
            at, data = recorded[index]
            got = reader.views_at(at)
            assert_same_views(got, expected_at(recorded, at))
            parts = [p for p in (got.interfaces, got.routes, got.statistics, got.multicast) if p is not None]
            assert got.warnings == walk.own_warnings[index] + [w for p in parts for w in p.warnings]


class RandomViews:
    """A random walk of ViewData, each step a plausible (or merely possible) change of the one before."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.interfaces: dict[str, Interface] = {}
        self.counters: list[ProtocolCounter] = [
            ProtocolCounter("Tcp", f"C{i}", rng.randint(0, 1000), 0, 0.0, "x" if i % 3 else "", i % 7 == 0)
            for i in range(30)
        ]
        self.routes: list[Route] = [self.route() for _ in range(20)]
        self.groups = [Membership("eth0", 4, "224.0.0.1", 1)]
        self.own_warnings: list[list[str]] = []
        self.next_index = 10

    def route(self) -> Route:
        rng = self.rng
        return Route(
            rng.choice([4, 6]), f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.0/24",
            rng.choice(["", "192.0.2.1"]), rng.choice(["eth0", "eth1", ""]), "UG", rng.randint(0, 3), "static",
            "global", rng.choice(["main", "100"]), "", "unicast", rng.randint(0, 2),
        )  # fmt: skip

    def next(self, at: float) -> ViewData:
        rng = self.rng
        elapsed = rng.uniform(0.4, 0.6)
        data = ViewData()
        # Interfaces: traffic, and now and then one comes, goes, is re-created, or changes its settings.
        roll = rng.random()
        if roll < 0.05 or not self.interfaces:
            name = f"veth{rng.randint(0, 5)}"
            self.interfaces.pop(name, None)
            self.interfaces[name] = Interface(name, self.next_index, True, True, 1500, "BMRU", None, "", [], [],
                                              InterfaceCounters(*[rng.randint(0, 10**6) for _ in range(14)]))
            self.next_index += 1
        elif roll < 0.08:
            self.interfaces.pop(rng.choice(list(self.interfaces)))
        new: dict[str, Interface] = {}
        for name, old in self.interfaces.items():
            values = [v + (rng.randint(0, 10**5) if rng.random() < 0.5 else 0) for v in dataclasses.astuple(
                old.counters)]  # fmt: skip
            if rng.random() < 0.03:
                values[0] = 0  # a driver reset
            counters = InterfaceCounters(*values)
            rates = [(getattr(counters, f) - getattr(old.counters, f)) / elapsed
                     if getattr(counters, f) >= getattr(old.counters, f) else 0.0
                     for f in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")]  # fmt: skip
            if rng.random() < 0.05:
                rates[2] = rng.random() * 1e6  # a rate no change explains
            rx, tx = list(old.rx_history), list(old.tx_history)
            if rng.random() < 0.9:
                rx, tx = [*rx[-9:], rates[0]], [*tx[-9:], rates[1]]  # at most 10 samples kept
            elif rng.random() < 0.5:
                rx, tx = [rng.random()], []
            changed = {}
            if rng.random() < 0.05:
                changed = {"mtu": rng.choice([1400, 1500, 9000]), "up": rng.random() < 0.5,
                           "ipv4": [f"192.0.2.{rng.randint(1, 9)}/24"], "speed_mbps": rng.choice([None, 1000])}
            new[name] = dataclasses.replace(old, counters=counters, rx_bytes_per_s=rates[0],
                                            tx_bytes_per_s=rates[1], rx_packets_per_s=rates[2],
                                            tx_packets_per_s=rates[3], rx_history=rx, tx_history=tx,
                                            **changed)  # type: ignore[arg-type]  # fmt: skip
        self.interfaces = new
        if rng.random() < 0.9:
            data.interfaces = InterfaceSnapshot(at + 0.01, [new[n] for n in sorted(new)],
                                                appeared=["x"] if rng.random() < 0.1 else [],
                                                warnings=["w1"] if rng.random() < 0.1 else [])  # fmt: skip
        # Counters: moves, resets, gauges going down, a counter the kernel adds, samples not recorded.
        if rng.random() < 0.03:
            added = ProtocolCounter("TcpExt", f"N{at}", 5, 0, 0.0)
            self.counters.insert(rng.randint(0, len(self.counters)), added)
        counters = []
        for c in self.counters:
            change = rng.randint(-3, 50) if rng.random() < 0.3 else 0
            value = c.value + change
            delta = change if c.is_gauge or change >= 0 else 0
            if rng.random() < 0.02:
                delta = rng.randint(0, 9)  # the collector also read a sample that was not recorded
            rate = delta / elapsed if delta else 0.0
            if rng.random() < 0.02:
                rate = rng.random()
            counters.append(ProtocolCounter(c.group, c.name, value, delta, rate, c.label, c.is_gauge))
        self.counters = counters
        if rng.random() < 0.9:
            data.statistics = StatsSnapshot(at + 0.02, list(counters), ["s"] if rng.random() < 0.05 else [])
        if rng.random() < 0.1:
            self.groups = [*self.groups, Membership("eth1", 6, f"ff02::{rng.randint(1, 99)}", rng.randint(1, 3))]
        if rng.random() < 0.9:
            data.multicast = MulticastSnapshot(at + 0.03, list(self.groups))
        # Routes: read now and then; add, remove, change or move a few, or a table that is mostly new.
        if rng.random() < 0.4:
            routes = list(self.routes)
            for _ in range(rng.choice([0, 0, 1, 3])):
                action = rng.random()
                if action < 0.3 or not routes:
                    routes.insert(rng.randint(0, len(routes)), self.route())
                elif action < 0.6:
                    routes.pop(rng.randrange(len(routes)))
                elif action < 0.8:
                    index = rng.randrange(len(routes))
                    routes[index] = dataclasses.replace(routes[index], gateway="198.51.100.7")
                else:
                    routes.insert(rng.randint(0, len(routes)), routes.pop(rng.randrange(len(routes))))
            if rng.random() < 0.03:
                routes = [self.route() for _ in range(25)]
            self.routes = routes
            data.routes = RouteSnapshot(at + 0.04, list(routes), rng.choice(["netlink", "netlink", "/proc"]),
                                        ["r"] if rng.random() < 0.1 else [])  # fmt: skip
        own = ["Reading multicast groups failed: OSError: boom"] if rng.random() < 0.05 else []
        parts = [p for p in (data.interfaces, data.routes, data.statistics, data.multicast) if p is not None]
        data.warnings = own + [w for p in parts for w in p.warnings]
        # What views_at gives: the own warnings of the latest views frame (an empty read writes none).
        if own or data.interfaces or data.statistics or data.multicast or not self.own_warnings:
            self.own_warnings.append(own)
        else:
            self.own_warnings.append(self.own_warnings[-1])
        return data


# --- routes ------------------------------------------------------------------------------------------------------

_ROUTES_IN_NAMESPACE = """
import dataclasses, json, sys, time
from netscope.collectors.recording import RecordingWriter
from netscope.collectors.view_data import SystemViews

views = SystemViews(routes_every=0.0)
views.recording = True
with RecordingWriter(sys.argv[1], interval=0.1) as writer:
    for _ in sys.stdin:  # one line per read: the test changes the table in between
        data = views.collect("connections")
        at = time.time()
        writer.write_views(at, data)
        print(json.dumps([at, [dataclasses.astuple(r) for r in data.routes.routes]]), flush=True)
print(json.dumps([writer.route_frames, writer.route_keyframes, writer.route_changes]), flush=True)
"""


def test_a_routing_table_is_recorded_whole_once_then_only_its_changes(veth_pair: VethPair, tmp_path: Path) -> None:
    # Read inside the test's own namespace: its table changes only when this test changes it (once IPv6 has
    # finished checking the new link's addresses, which adds their routes).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and subprocess.run(
        ["ip", "-n", veth_pair.namespace, "-6", "addr", "show", "tentative"], capture_output=True, text=True,
        timeout=10,
    ).stdout.strip():  # fmt: skip
        time.sleep(0.1)
    path = tmp_path / "routes.nsrec"
    process = subprocess.Popen(
        ["ip", "netns", "exec", veth_pair.namespace, sys.executable, "-c", _ROUTES_IN_NAMESPACE, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    destination = "198.51.100.0/24"

    def read() -> tuple[float, list[list[object]]]:
        process.stdin.write("\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line, process.stderr.read() if process.stderr else ""
        at, routes = json.loads(line)
        return at, routes

    def ip(*args: str) -> None:
        subprocess.run(
            ["ip", "-n", veth_pair.namespace, "route", *args, destination, "via", veth_pair.host_address, "dev",
             veth_pair.peer_interface], check=True, timeout=10,
        )  # fmt: skip

    try:
        reads = [read() for _ in range(20)]  # an unchanged table, read 20 times
        ip("add")
        reads += [read() for _ in range(3)]
        ip("del")
        reads += [read() for _ in range(3)]
        process.stdin.close()
        frames, keyframes, changes = json.loads(process.stdout.readline())
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    tables = [[tuple(route) for route in routes] for _, routes in reads]
    assert [any(destination in route for route in table) for table in tables] == [False] * 20 + [True] * 3 + [
        False
    ] * 3
    # Read 26 times, the table was written whole once; then only its two changes, and 23 empty deltas.
    assert (frames, keyframes, changes) == (26, 1, 2)
    with RecordingReader(path) as reader:
        assert reader.damage is None and len(reader) == 0 and reader.has_views
        routes = reader.route_frames
        assert routes.kinds == [ROUTES_KEYFRAME] + [ROUTES_DELTA] * 25
        unchanged = [length for index, length in enumerate(routes.lengths) if index not in (0, 20, 23)]
        assert max(unchanged) < 40  # bytes of payload: an unchanged table costs the same however big it is
        for (at, _), table in zip(reads, tables, strict=True):
            got = reader.views_at(at).routes
            assert got is not None and got.taken_at <= at
            assert [dataclasses.astuple(route) for route in got.routes] == table


def test_system_views_read_routes_while_recording_but_not_every_time() -> None:
    views = SystemViews(routes_every=0.5)
    assert views.collect("connections").routes is None  # not recording, not shown: never
    assert views.collect("routes").routes is not None  # shown: every time
    views.recording = True
    assert views.collect("connections").routes is not None  # recording starts: at once
    assert views.collect("statistics").routes is None  # then not before routes_every has passed
    time.sleep(0.55)
    assert views.collect("interfaces").routes is not None
    views.recording = False
    time.sleep(0.55)
    assert views.collect("connections").routes is None


# --- version 1, damage -------------------------------------------------------------------------------------------


def v1_frame_ends(data: bytes) -> list[int]:
    _, length = struct.unpack_from("!HI", data, len(MAGIC))
    pos = len(MAGIC) + 6 + length + 4
    ends = []
    while pos < len(data):
        pos += FRAME_HEADER_SIZE_V1 + struct.unpack_from("!4sI", data, pos)[1]
        ends.append(pos)
    return ends


def test_version_1_recordings_still_read(tmp_path: Path) -> None:
    path = tmp_path / "v1.nsrec"
    data = base64.b64decode(V1_SAMPLE)
    path.write_bytes(data)
    diffs = list(synthetic(6, n=4, churn=0.25))
    with RecordingReader(path) as reader:
        assert reader.version == 1 and reader.complete and reader.damage is None
        assert len(reader) == 6 and reader.keyframes == [0, 3]
        assert not reader.has_views and reader.views_at(reader.end_time or 0.0) == ViewData()
        for replayed, live in zip(reader, diffs, strict=True):
            assert_same_diff(replayed, live)
        assert "views      none: sockets only" in "\n".join(recording_info(reader))
    # Damage in a version 1 file costs what it always did: the deltas up to the next keyframe.
    damaged = bytearray(data)
    damaged[v1_frame_ends(data)[1] - 2] ^= 0x40  # frame 2's payload
    path.write_bytes(bytes(damaged))
    with RecordingReader(path) as reader:
        assert reader.damage is not None and "frame 2: it fails its checksum" in str(reader.damage)
        assert "the frames up to the next keyframe" in str(reader.damage)
        assert reader.timestamps == [diffs[i].snapshot.taken_at for i in (0, 3, 4, 5)]
    replay = subprocess.run([*NETSCOPE, "--replay", str(path), "-i"], capture_output=True, text=True, timeout=60)
    assert replay.returncode == 1 and "holds sockets only" in replay.stderr


def test_a_damaged_view_frame_costs_no_socket_frame(tmp_path: Path) -> None:
    path = tmp_path / "views.nsrec"
    diffs, recorded = record_with_views(path, 30, keyframe_seconds=10.0, keyframe_ratio=1000.0)
    data = path.read_bytes()
    frames = view_frame_ends(data)
    views = [(start, end) for start, end, kind in frames if kind in (3, 4)]
    _, end = views[5]  # a delta: frames 6-9 of the views chain depend on it, 10 is a keyframe
    damaged = bytearray(data)
    damaged[end - 3] ^= 0x40
    bad = tmp_path / "bad.nsrec"
    bad.write_bytes(bytes(damaged))
    with RecordingReader(bad) as reader:
        assert reader.damage is not None and not reader.damage.truncated
        assert "every frame of the connection table is readable" in str(reader.damage)
        assert len(reader) == 30 and reader.complete
        for replayed, live in zip(reader.diffs(), diffs, strict=True):  # every socket diff, as recorded
            assert_same_diff(replayed, live)
        assert len(reader.views_timestamps) == 30 - 5
        for index, (at, _) in enumerate(recorded):
            got = reader.views_at(at)
            if 5 <= index < 10:  # lost: the latest readable views before them are what there is
                want = expected_at(recorded, recorded[4][0])
                want.routes = expected_at(recorded, at).routes  # the routes chain lost nothing
                assert_same_views(got, want)
            else:
                assert_same_views(got, expected_at(recorded, at))


def test_a_damaged_socket_frame_costs_no_view_frame(tmp_path: Path) -> None:
    path = tmp_path / "sockets.nsrec"
    diffs, recorded = record_with_views(path, 20, keyframe_seconds=10.0, keyframe_ratio=1000.0)
    data = bytearray(path.read_bytes())
    sockets = [(start, end) for start, end, kind in view_frame_ends(bytes(data)) if kind in (0, 1)]
    data[sockets[3][1] - 3] ^= 0x40  # socket frame 4, a delta: 4-9 are lost until the keyframe at 10
    path.write_bytes(bytes(data))
    with RecordingReader(path) as reader:
        assert reader.damage is not None and "the frames up to the next keyframe" in str(reader.damage)
        assert reader.timestamps == [d.snapshot.taken_at for d in diffs[:3] + diffs[10:]]
        for at, _ in recorded:
            assert_same_views(reader.views_at(at), expected_at(recorded, at))


def test_a_file_cut_inside_its_last_view_frame(tmp_path: Path) -> None:
    path = tmp_path / "cut.nsrec"
    _, recorded = record_with_views(path, 6)
    data = path.read_bytes()
    frames = view_frame_ends(data)
    last_views = max(i for i, (_, _, kind) in enumerate(frames) if kind in (3, 4))
    start, end, _ = frames[last_views]
    assert frames[last_views - 1][2] in (0, 1)  # the socket frame just before it
    cut = tmp_path / "short.nsrec"
    for size in range(start + 1, end):
        cut.write_bytes(data[:size])
        with RecordingReader(cut) as reader:
            assert reader.damage is not None and reader.damage.truncated
            assert str(reader.damage).startswith("recording truncated after frame 6 at ")
            assert len(reader) == 6 and len(reader.views_timestamps) == 5
            assert_same_views(reader.views_at(recorded[-1][0]), expected_at(recorded, recorded[-2][0]))
    cut.write_bytes(data[:start])  # cut between frames: sound, only unfinished
    with RecordingReader(cut) as reader:
        assert reader.damage is None and not reader.complete and len(reader.views_timestamps) == 5


def _forge_views(path: Path, body: bytes, seq: int, at: float) -> None:
    """Append a views delta with a correct checksum around whatever JSON: what a crafted file could hold."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = packer.compress(body) + packer.flush()
    head = struct.pack("!IdBI", len(payload), at, VIEWS_DELTA, seq)
    with open(path, "ab") as file:
        file.write(SYNC + head + struct.pack("!I", zlib.crc32(payload, zlib.crc32(head))) + payload)


@pytest.mark.parametrize(
    "body",
    [
        b'{"s": {"t": 1.0, "d": 1, "v": [0, "many"]}}',
        b'{"i": {"t": 1.0, "d": 1, "x": [[99, null, [], null, -1, -1]]}}',
        b'{"i": {"t": 1.0, "d": 1, "x": [["eth9", true]]}}',
        b'{"m": {"t": 1.0, "g": [["eth0", 4, "224.0.0.1", 1.5]]}}',
        b'{"s": {"t": NaN, "c": []}}',
        b"[]",
        # view 1's unix sockets: a TCP row among them, a path longer than any the kernel gives, a uid below -1
        b'{"u": {"t": 1.0, "u": [["tcp", "/x", 5, "", 0, "LISTEN", 0, 0, 0, 0, "", null, "", 1.0, 0, ""]]}}',
        b'{"u": {"t": 1.0, "u": [["u_str", "' + b"x" * 500
        + b'", 5, "", 0, "LISTEN", 0, 0, 0, 0, "", null, "", 1.0, 0, ""]]}}',
        b'{"u": {"t": 1.0, "u": [["u_str", "/x", 5, "", 0, "LISTEN", 0, 0, 0, -2, "", null, "", 1.0, 0, ""]]}}',
        b'{"u": {"t": 1.0, "d": 1}}',
        # the NAT view's flows: an address that is none, a family that is neither, "unchanged" from nothing
        b'{"n": {"t": 1.0, "f": [[4, 6, ["10.0.0.1", "no ip", 1, 2, null, null, null], '
        b'["10.0.0.2", "10.0.0.1", 2, 1, null, null, null], "ESTABLISHED", 10, 0, 0, 0, 1, 1]]}}',
        b'{"n": {"t": 1.0, "f": [[5, 6, ["10.0.0.1", "10.0.0.2", 1, 2, null, null, null], '
        b'["10.0.0.2", "10.0.0.1", 2, 1, null, null, null], "ESTABLISHED", 10, 0, 0, 0, 1, 1]]}}',
        b'{"n": {"t": 1.0, "d": 1}}',
    ],
)
def test_a_crafted_view_frame_is_refused_and_the_views_before_it_shown(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "crafted.nsrec"
    _, recorded = record_with_views(path, 3)
    data = path.read_bytes()
    path.write_bytes(data[: frame_ends(data)[-2]])  # drop the end marker
    at = recorded[-1][0] + 1
    _forge_views(path, body, seq=3, at=at)
    with RecordingReader(path) as reader:
        assert reader.damage is None and len(reader.views_timestamps) == 4  # sound, as far as checksums go
        got = reader.views_at(at)
        assert_same_views(got, expected_at(recorded, at))
        assert any("pass their checksum but cannot be decoded" in w for w in got.warnings)
        assert len(reader.snapshot_at(-1).sockets) == 30


def test_writing_views_refuses_what_it_cannot_record(tmp_path: Path) -> None:
    path = tmp_path / "refused.nsrec"
    views = list(busy_views(3, counters=10, interfaces=1))
    with RecordingWriter(path) as writer:
        writer.write_views(*views[0])
        broken = dataclasses.replace(views[1][1].interfaces.interfaces[0], rx_bytes_per_s=math.nan)
        bad = ViewData(InterfaceSnapshot(views[1][0], [broken]))
        with pytest.raises(ValueError):
            writer.write_views(views[1][0], bad)  # nothing of it is written: the chain is as before
        with pytest.raises(ValueError):
            writer.write_views(math.inf, views[1][1])
        writer.write_views(*views[2])
    with pytest.raises(ValueError):
        writer.write_views(*views[2])
    with RecordingReader(path) as reader:
        assert reader.damage is None and len(reader.views_timestamps) == 2
        assert_same_views(reader.views_at(views[2][0]), expected_at([views[0], views[2]], views[2][0]))


# --- size --------------------------------------------------------------------------------------------------------


def test_an_hour_of_views_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "hour.nsrec"
    kept: dict[int, tuple[float, ViewData]] = {}
    recorded: list[tuple[float, ViewData]] = []
    started = time.perf_counter()
    with RecordingWriter(path) as writer:
        for index, (at, data) in enumerate(busy_views(3600)):
            writer.write_views(at, data)
            if data.routes is not None:
                recorded.append((at, ViewData(routes=data.routes)))
            if index in (0, 1, 599, 600, 1234, 3599):
                kept[index] = (at, data)
    elapsed = time.perf_counter() - started
    size = path.stat().st_size
    print(f"an hour of views: {size:,} bytes, {writer.view_frames} view frames, {writer.route_frames} routes "
          f"frames ({writer.route_keyframes} whole, {writer.route_changes} changes), written in {elapsed:.1f} s")
    assert size < HOUR_OF_VIEWS_BOUND
    # The table changes every 10 minutes; a table this small is also written whole again once its empty deltas
    # add up to a few times its size, which bounds what a seek decodes.
    assert writer.route_changes == 5 and writer.route_keyframes < 12
    with RecordingReader(path) as reader:
        assert reader.complete and len(reader.views_timestamps) == 3600
        # Seeking decodes a keyframe and a bounded run of deltas, not the hour.
        keyframes = [i for i, kind in enumerate(reader.view_frames.kinds) if kind == 3]
        runs = [b - a for a, b in zip(keyframes, [*keyframes[1:], 3600], strict=True)]
        assert len(keyframes) < 30 and max(runs) <= 600
        for index, (at, data) in kept.items():
            started = time.perf_counter()
            got = reader.views_at(at)
            print(f"  views_at frame {index}: {1000 * (time.perf_counter() - started):.0f} ms")
            assert got.interfaces == data.interfaces and got.statistics == data.statistics
            assert got.routes == expected_at(recorded, at).routes


# --- the headless recorder, the CLI, the UI's sources ------------------------------------------------------------


def test_the_headless_recorder_records_views(tmp_path: Path) -> None:
    path = tmp_path / "headless.nsrec"
    result = subprocess.run(
        [*NETSCOPE, "--record", str(path), "--no-ui", "--duration", "3", "--interval", "0.5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "of views" in result.stderr and "Traceback" not in result.stderr
    with RecordingReader(path) as reader:
        assert reader.complete and reader.damage is None and reader.has_views
        assert len(reader) >= 4 and len(reader.views_timestamps) >= 4 and len(reader.routes_timestamps) >= 1
        views = reader.views_at(reader.end_time or 0.0)
        assert views.interfaces is not None and "lo" in {i.name for i in views.interfaces.interfaces}
        assert views.statistics is not None and any(c.group == "Tcp" for c in views.statistics.counters)
        assert views.multicast is not None and views.routes is not None
        lo = next(i for i in views.interfaces.interfaces if i.name == "lo")
    text = subprocess.run([*NETSCOPE, "--replay", str(path), "-i"], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("Kernel Interface table as recorded at ")
    rows = [line.split() for line in text.stdout.splitlines()]
    assert any(row[:1] == ["lo"] and str(lo.counters.rx_packets) in row for row in rows)
    stats = subprocess.run([*NETSCOPE, "--replay", str(path), "-s", "--json", "--at", "+1"], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert stats.returncode == 0 and any(r["group"] == "Tcp" for r in json.loads(stats.stdout))
    for flag, first in (("-rn", "Kernel IP routing table as recorded at"), ("-g", "IPv6/IPv4 Group Memberships")):
        shown = subprocess.run([*NETSCOPE, "--replay", str(path), flag], capture_output=True, text=True,
                               timeout=60)  # fmt: skip
        assert shown.returncode == 0 and shown.stdout.startswith(first), shown.stderr
    info = subprocess.run([*NETSCOPE, "--replay", str(path), "--info"], capture_output=True, text=True, timeout=60)
    assert "views      interfaces, statistics and multicast groups" in info.stdout
    both = subprocess.run([*NETSCOPE, "--replay", str(path), "--info", "-i"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert both.returncode == 2


async def test_recorded_views_follow_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "replay.nsrec"
    diffs, recorded = record_with_views(path, 12, keyframe_seconds=5.0)
    replay = ReplaySource(path, speed=50.0, playing=False)
    views = RecordedViews(replay)
    assert views.available
    assert await asyncio.to_thread(views.collect, "interfaces") == ViewData()  # nothing played yet
    pump = Pump(replay)

    async def check() -> None:
        # Views are read a quarter second after each socket frame: frame i shows the views read after i - 1.
        assert replay.current_time is not None
        got = await asyncio.to_thread(views.collect, "interfaces")
        assert_same_views(got, expected_at(recorded, replay.current_time))

    await pump.next()
    await check()
    for _ in range(3):
        replay.step(1)
        await pump.next()
        await check()
    replay.seek_time(diffs[9].snapshot.taken_at + 0.5)
    await pump.next()
    await check()
    replay.step(-1)
    await pump.next()
    await check()
    # Many threads asking while the replay plays: each gets one recorded moment, whole.
    stop = threading.Event()
    seen: list[ViewData] = []
    failures: list[BaseException] = []

    def ask() -> None:
        while not stop.is_set():
            try:
                seen.append(views.collect("statistics"))
            except BaseException as error:  # pragma: no cover - reported below
                failures.append(error)

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for asker in askers:
        asker.start()
    replay.seek_frame(0)
    replay.play()
    for _ in range(12):
        await pump.next()
    stop.set()
    for asker in askers:
        asker.join(10)
    assert not failures and seen
    moments = [expected_at(recorded, diff.snapshot.taken_at) for diff in diffs]
    for data in seen:
        assert any(same_views(data, moment) for moment in moments)
    await replay.aclose()
    await asyncio.wait_for(pump.task, 5)


async def test_a_replay_of_the_fixed_views_shows_them_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "fixed.nsrec"
    record_fixed(path)
    replay = ReplaySource(path, playing=False)
    views = RecordedViews(replay)
    pump = Pump(replay)
    await pump.next()
    replay.seek_frame(-1)
    await pump.next()
    assert views.collect("routes") == FixedViews().collect("routes")
    await replay.aclose()
    await asyncio.wait_for(pump.task, 5)


async def test_the_tee_records_views_only_while_recording(tmp_path: Path) -> None:
    path = tmp_path / "tee.nsrec"
    source = RecordingTee(ConnectionCollector(interval=0.2), RecordingWriter(path, interval=0.2))
    views = SystemViews()
    views.recording = True
    stream = source.stream()
    written = []
    for _ in range(3):
        update = await asyncio.wait_for(stream.__anext__(), 60)
        assert not isinstance(update, CollectionFailure)
        data = await asyncio.to_thread(views.collect, "connections")
        assert await asyncio.to_thread(source.write_views, data) is None
        written.append(data)
    writer = source.stop()
    assert writer is not None and writer.view_frames == 3 and writer.route_frames == 1
    assert await asyncio.to_thread(source.write_views, written[-1]) is None  # stopped: nothing, quietly
    await stream.aclose()
    await source.aclose()
    with RecordingReader(path) as reader:
        assert reader.complete and reader.views_timestamps and len(reader.views_timestamps) == 3
        got = reader.views_at(reader.views_timestamps[-1])
        assert got.interfaces == written[-1].interfaces and got.routes == written[0].routes


def test_sockets_and_views_written_from_two_threads(tmp_path: Path) -> None:
    path = tmp_path / "threads.nsrec"
    diffs = list(synthetic(200, n=50))
    views = list(busy_views(200, counters=60, interfaces=2, routes=5, routes_every=7))
    with RecordingWriter(path) as writer:
        other = threading.Thread(target=lambda: [writer.write_views(at, data) for at, data in views])
        other.start()
        for diff in diffs:
            writer.write(diff)
        other.join(60)
    with RecordingReader(path) as reader:
        assert reader.damage is None and reader.complete and len(reader) == 200
        for replayed, live in zip(reader, diffs, strict=True):
            assert_same_diff(replayed, live)
        for at, _ in views[::7]:
            assert_same_views(reader.views_at(at), expected_at(views, at))
    assert os.path.getsize(path) == writer.bytes_written
