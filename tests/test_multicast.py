"""Multicast memberships (`netstat -g`): captured /proc/net/igmp{,6} text, broken text, real sockets joining."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netscope.collectors.multicast import (
    Membership,
    MulticastCollector,
    MulticastSnapshot,
    igmp6_hex_to_address,
    igmp_hex_to_address,
    parse_igmp,
    parse_igmp6,
    sort_memberships,
)

# --- Captured from this machine (x86-64, little-endian) while two sockets had joined 239.7.8.9 on lo and one
# --- had joined ff15::1234 on lo: `cat /proc/net/igmp /proc/net/igmp6`, byte for byte.

CAPTURED_IGMP = (
    "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
    "1\tlo        :     2      V3\n"
    "\t\t\t\t090807EF     2 0:00000000\t\t0\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
    "4\teth0      :     1      V3\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
)

CAPTURED_IGMP6 = (
    "1    lo              ff150000000000000000000000001234     1 00000004 0\n"
    "1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
    "1    lo              ff010000000000000000000000000001     1 00000008 0\n"
    "2    ifb0            ff020000000000000000000000000001     1 0000000C 0\n"
    "2    ifb0            ff010000000000000000000000000001     1 00000008 0\n"
    "3    ifb1            ff020000000000000000000000000001     1 0000000C 0\n"
    "3    ifb1            ff010000000000000000000000000001     1 00000008 0\n"
    "4    eth0            ff0200000000000000000001ff000002     1 00000004 0\n"
    "4    eth0            ff0200000000000000000001ff000001     1 00000004 0\n"
    "4    eth0            ff020000000000000000000000000001     1 0000000C 0\n"
    "4    eth0            ff010000000000000000000000000001     1 00000008 0\n"
)


LITTLE_ENDIAN = sys.byteorder == "little"


# --- Parsers on captured text ----------------------------------------------------------------------------------


@pytest.mark.skipif(not LITTLE_ENDIAN, reason="the captured /proc/net/igmp is from a little-endian machine")
def test_igmp_groups_are_host_order_words() -> None:
    memberships, warnings = parse_igmp(CAPTURED_IGMP)
    assert warnings == []
    assert memberships == [
        Membership("lo", 4, "239.7.8.9", 2),  # two sockets joined: the kernel's users count
        Membership("lo", 4, "224.0.0.1", 1),  # all-hosts, joined by the kernel itself
        Membership("eth0", 4, "224.0.0.1", 1),
    ]
    assert igmp_hex_to_address("010000E0") == "224.0.0.1"
    assert igmp_hex_to_address("FFFFFFEF") == "239.255.255.255"
    assert igmp_hex_to_address("fb0000e0") == "224.0.0.251"


def test_igmp6_groups_are_in_network_order() -> None:
    memberships, warnings = parse_igmp6(CAPTURED_IGMP6)
    assert warnings == []
    assert len(memberships) == 11
    assert memberships[0] == Membership("lo", 6, "ff15::1234", 1)
    assert memberships[-1] == Membership("eth0", 6, "ff01::1", 1)
    assert Membership("eth0", 6, "ff02::1:ff00:2", 1) in memberships  # a solicited-node group
    assert {m.interface for m in memberships} == {"lo", "ifb0", "ifb1", "eth0"}
    assert igmp6_hex_to_address("ff0200000000000000000001ff000001") == "ff02::1:ff00:1"
    assert parse_igmp6("7    veth0           ff150000000000000000000000004242     3 00000004 0\n") == (
        [Membership("veth0", 6, "ff15::4242", 3)],
        [],
    )


def test_the_captured_text_matches_what_netstat_g_showed() -> None:
    # `netstat -g` at capture time listed these (interface, group) pairs; ours must say the same, sorted.
    both = sort_memberships(parse_igmp(CAPTURED_IGMP)[0] + parse_igmp6(CAPTURED_IGMP6)[0])
    shown = [(m.interface, m.group) for m in both]
    if LITTLE_ENDIAN:
        assert shown[:5] == [
            ("eth0", "224.0.0.1"),
            ("eth0", "ff01::1"),
            ("eth0", "ff02::1"),
            ("eth0", "ff02::1:ff00:1"),
            ("eth0", "ff02::1:ff00:2"),
        ]
        assert shown[-5:] == [
            ("lo", "224.0.0.1"),
            ("lo", "239.7.8.9"),
            ("lo", "ff01::1"),
            ("lo", "ff02::1"),
            ("lo", "ff15::1234"),
        ]
    assert len(shown) == 14


def test_sorting_compares_groups_as_numbers() -> None:
    unsorted = [
        Membership("lo", 6, "ff02::1", 1),
        Membership("lo", 4, "224.0.0.251", 1),
        Membership("eth0", 4, "239.0.0.1", 1),
        Membership("lo", 4, "224.0.0.22", 1),
        Membership("lo", 4, "224.0.0.1", 1),
    ]
    assert [(m.interface, m.group) for m in sort_memberships(unsorted)] == [
        ("eth0", "239.0.0.1"),
        ("lo", "224.0.0.1"),
        ("lo", "224.0.0.22"),  # "224.0.0.22" < "224.0.0.251" as numbers, not as text
        ("lo", "224.0.0.251"),
        ("lo", "ff02::1"),
    ]


# --- Parsers on broken text: skip the line, keep the rest, never raise ---------------------------------------

IGMP_TITLE = "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
IGMP_GOOD = "1\tlo        :     1      V3\n\t\t\t\t010000E0     1 0:00000000\t\t0\n"


@pytest.mark.parametrize(
    "bad",
    [
        "\t\t\t\tZZ0000E0     1 0:00000000\t\t0",  # not hex
        "\t\t\t\t010000E     1 0:00000000\t\t0",  # 7 digits
        "\t\t\t\t010000E0",  # no users
        "\t\t\t\t010000E0     x 0:00000000\t\t0",
        "\t\t\t\t010000E0     -1 0:00000000\t\t0",
        "\t\x00\xff\ufffd",
    ],
)
def test_broken_igmp_group_lines_are_skipped(bad: str) -> None:
    text = IGMP_TITLE + IGMP_GOOD + bad + "\n" + "\t\t\t\t020000E0     3 0:00000000\t\t0\n"
    memberships, warnings = parse_igmp(text, "igmp-under-test")
    assert [(m.group, m.users) for m in memberships] == [("224.0.0.1", 1), ("224.0.0.2", 3)]
    assert len(warnings) == 1 and warnings[0].startswith("igmp-under-test: skipped 1 malformed line, e.g. ")


@pytest.mark.parametrize(
    "bad_header",
    [
        "x\tlo        :     1      V3",  # index not a number
        "1\tlo             1      V3",  # no colon
        "1\t          :     1      V3",  # no name
        "garbage",
        "\x00\xff\ufffd",
    ],
)
def test_group_lines_under_a_broken_header_are_not_given_to_the_previous_interface(bad_header: str) -> None:
    text = (
        IGMP_TITLE
        + IGMP_GOOD
        + bad_header
        + "\n\t\t\t\t020000E0     1 0:00000000\t\t0\n"
        + ("5\tveth-long-name:     1      V3\n\t\t\t\t030000E0     1 0:00000000\t\t0\n")
    )
    memberships, warnings = parse_igmp(text)
    assert [(m.interface, m.group) for m in memberships] == [("lo", "224.0.0.1"), ("veth-long-name", "224.0.0.3")]
    assert len(warnings) == 1 and "skipped 2 malformed lines" in warnings[0]


def test_igmp_edge_cases() -> None:
    assert parse_igmp("") == ([], [])
    assert parse_igmp(IGMP_TITLE) == ([], [])  # no interface has a group (lo down, no IPv4 anywhere)
    # A group line before any interface header has no interface to belong to.
    memberships, warnings = parse_igmp("\t\t\t\t010000E0     1 0:00000000\t\t0\n" + IGMP_GOOD)
    assert memberships == [Membership("lo", 4, "224.0.0.1", 1)] and len(warnings) == 1


@pytest.mark.parametrize(
    "bad",
    [
        "1    lo              ff02000000000000000000000000001     1 0000000C 0",  # 31 digits
        "1    lo              ff02::1     1 0000000C 0",
        "1    lo              ff020000000000000000000000000001",  # no users
        "1    lo              ff020000000000000000000000000001     many 0000000C 0",
        "x    lo              ff020000000000000000000000000001     1 0000000C 0",
        "\x00\xff\ufffd",
    ],
)
def test_broken_igmp6_lines_are_skipped(bad: str) -> None:
    good = "1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
    memberships, warnings = parse_igmp6(good + bad + "\n" + good.replace("lo  ", "eth0"), "igmp6-under-test")
    assert [(m.interface, m.group) for m in memberships] == [("lo", "ff02::1"), ("eth0", "ff02::1")]
    assert len(warnings) == 1 and warnings[0].startswith("igmp6-under-test: skipped 1 malformed line, e.g. ")
    assert parse_igmp6("") == ([], [])


def test_bad_hex_raises_only_in_the_converters() -> None:
    for convert, bad in ((igmp_hex_to_address, "0100007"), (igmp6_hex_to_address, "ff02")):
        with pytest.raises(ValueError):
            convert(bad)


# --- The collector -----------------------------------------------------------------------------------------------


def test_missing_files_are_warnings_not_exceptions(tmp_path: Path) -> None:
    snapshot = MulticastCollector(str(tmp_path)).collect()
    assert isinstance(snapshot, MulticastSnapshot)
    assert snapshot.memberships == []
    assert len(snapshot.warnings) == 2
    assert "IPv4 multicast memberships are unavailable" in snapshot.warnings[0]
    assert "IPv6 multicast memberships are unavailable" in snapshot.warnings[1]
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "igmp").write_text(IGMP_TITLE + IGMP_GOOD + "nonsense\n")
    snapshot = MulticastCollector(str(tmp_path)).collect()
    assert snapshot.memberships == [Membership("lo", 4, "224.0.0.1", 1)]
    assert len(snapshot.warnings) == 2
    assert snapshot.warnings[0].startswith(str(tmp_path / "net" / "igmp") + ": skipped 1 malformed line")
    assert "IPv6" in snapshot.warnings[1]


def _ip_maddr() -> set[tuple[str, int, str]]:
    """(interface, family, group) as `ip maddr show` lists them, parsed without the code under test."""
    out = subprocess.run(["ip", "maddr", "show"], capture_output=True, text=True, timeout=30, check=True).stdout
    found: set[tuple[str, int, str]] = set()
    interface = ""
    for line in out.splitlines():
        header = re.match(r"\d+:\s+(\S+)", line)
        if header:
            interface = header.group(1)
            continue
        entry = re.match(r"\s+(inet6?)\s+(\S+)", line)
        if entry:
            found.add((interface, 6 if entry.group(1) == "inet6" else 4, entry.group(2)))
    return found


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's `ip` command")
def test_a_real_collect_agrees_with_ip_maddr() -> None:
    # Other processes may join or leave a group meanwhile: accept the first of a few tries on which ip agrees
    # with itself before and after our collect.
    for _ in range(5):
        before = _ip_maddr()
        snapshot = MulticastCollector().collect()
        after = _ip_maddr()
        if before == after:
            break
    assert snapshot.warnings == []
    assert {(m.interface, m.family, m.group) for m in snapshot.memberships} == after
    assert all(m.users >= 1 for m in snapshot.memberships)
    assert snapshot.memberships == sort_memberships(snapshot.memberships)
    assert ("lo", 4, "224.0.0.1") in after  # the kernel joins all-hosts on every IPv4 interface that is up


# --- Real sockets joining groups -----------------------------------------------------------------------------


def _join4(group: str, ifindex: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mreqn = struct.pack("=4s4si", socket.inet_aton(group), bytes(4), ifindex)  # group, any address, ifindex
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    return sock


def _join6(group: str, ifindex: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("=I", ifindex)  # struct ipv6_mreq
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    return sock


def _users(collector: MulticastCollector, interface: str, group: str) -> int | None:
    found = [m.users for m in collector.collect().memberships if (m.interface, m.group) == (interface, group)]
    assert len(found) <= 1
    return found[0] if found else None


def test_sockets_joining_on_loopback_show_with_their_count_and_go_when_closed() -> None:
    # Joining on lo sends nothing off the machine. Random groups so concurrent runs do not share one.
    group4 = f"239.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    group6 = f"ff15::{random.randint(1, 0xFFFF):x}:{os.getpid() % 0xFFFF:x}"
    lo = socket.if_nametoindex("lo")
    collector = MulticastCollector()
    assert _users(collector, "lo", group4) is None
    sockets = [_join4(group4, lo)]
    try:
        assert _users(collector, "lo", group4) == 1
        sockets.append(_join4(group4, lo))
        assert _users(collector, "lo", group4) == 2  # users is the kernel's count of members
        if socket.has_ipv6 and os.path.exists("/proc/net/igmp6"):
            sockets.append(_join6(group6, lo))
            assert Membership("lo", 6, group6, 1) in collector.collect().memberships
            sockets.append(_join6(group6, lo))
            assert _users(collector, "lo", group6) == 2
        sockets.pop(0).close()
        assert _users(collector, "lo", group4) == 1
    finally:
        for sock in sockets:
            sock.close()
    assert _users(collector, "lo", group4) is None
    assert _users(collector, "lo", group6) is None


# --- Inside a private network namespace, on a veth pair whose both ends stay in it ---------------------------

CHILD = r"""
import os, socket, struct, sys
v4, v6, dev = sys.argv[1:4]
index = socket.if_nametoindex(dev)
print(os.getpid(), flush=True)
held = []
for command in sys.stdin:
    command = command.strip()
    if command == "join":
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     struct.pack("=4s4si", socket.inet_aton(v4), bytes(4), index))
        b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        b.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                     socket.inet_pton(socket.AF_INET6, v6) + struct.pack("=I", index))
        held += [a, b]
    elif command == "leave":
        for sock in held:
            sock.close()
        held.clear()
    print("done", flush=True)
"""


@dataclass
class Namespace:
    name: str
    interface: str


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def private_namespace() -> Iterator[Namespace]:
    """A network namespace of our own holding both ends of a veth pair, up, with IPv4 and IPv6 addresses."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace (ip netns add)")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip` command")
    name = f"netscope-mc-{os.getpid()}-{random.randint(0, 99999)}"
    created = _ip("netns", "add", name)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    try:
        steps = [
            ("link", "add", "mca", "type", "veth", "peer", "name", "mcb"),
            ("addr", "add", "10.99.0.1/30", "dev", "mca"),
            ("addr", "add", "10.99.0.2/30", "dev", "mcb"),
            ("link", "set", "mca", "up"),
            ("link", "set", "mcb", "up"),
        ]
        for step in steps:
            done = _ip("-n", name, *step)
            if done.returncode != 0:
                pytest.skip(
                    f"cannot set up a veth pair in a namespace: ip {' '.join(step)}: {done.stderr.strip()}"
                )
        yield Namespace(name, "mca")
    finally:
        _ip("netns", "del", name)  # deletes the veth pair with it


def _talk(child: subprocess.Popen[str], command: str) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(command + "\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "done"


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_member_inside_a_private_namespace_shows_on_its_veth(private_namespace: Namespace) -> None:
    group4, group6 = "239.1.2.3", "ff15::4242"
    child = subprocess.Popen(
        ["ip", "netns", "exec", private_namespace.name, sys.executable, "-c", CHILD, group4, group6, "mca"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line.isdigit(), f"child did not start: {child.stderr.read() if child.stderr else ''}"
        # /proc/PID/net is the network namespace of PID: the collector sees the namespace through the child.
        inside = MulticastCollector(f"/proc/{line}")
        before = inside.collect()
        assert before.warnings == []
        assert {m.interface for m in before.memberships} >= {"lo", "mca", "mcb"}
        assert Membership("mca", 4, "224.0.0.1", 1) in before.memberships
        assert _users(inside, "mca", group4) is None

        _talk(child, "join")
        assert _users(inside, "mca", group4) == 1
        assert _users(inside, "mca", group6) == 1
        assert _users(inside, "mcb", group4) is None  # joined on one interface only
        # This test's own namespace does not have the veth interfaces at all.
        assert not {"mca", "mcb"} & {m.interface for m in MulticastCollector().collect().memberships}

        _talk(child, "leave")
        # An IPv6 group can linger a moment while its leave report is pending; IPv4 goes at once.
        assert _users(inside, "mca", group4) is None
        assert _wait_for(lambda: _users(inside, "mca", group6) is None)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_collect_is_fast() -> None:
    collector = MulticastCollector()
    started = time.perf_counter()
    for _ in range(20):
        collector.collect()
    per_collect = (time.perf_counter() - started) / 20
    assert per_collect < 0.05, f"{per_collect * 1000:.1f} ms per collect"
