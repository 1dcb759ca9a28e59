"""The interface collector: /proc/net/dev parsing, netstat -i flags, and real loopback, veth and netns traffic."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netscope.collectors.interfaces import (
    HISTORY_LENGTH,
    IFF_RUNNING,
    Interface,
    InterfaceCollector,
    InterfaceCounters,
    InterfaceSnapshot,
    flag_letters,
    interface_flags,
    parse_proc_net_dev,
)

# Captured from this machine's /proc/net/dev (kernel 6.18) while writing these tests.
CAPTURED_PROC_NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 54271503  986830    0    0    0     0          0         0 54271503  986830    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  ifb1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 66908804    2010    0    0    0     0          0         0   171137    1315    0    0    0     0       0          0
"""  # noqa: E501 (pasted verbatim: the kernel's lines are wider than ours)

HEADER = "\n".join(CAPTURED_PROC_NET_DEV.splitlines()[:2]) + "\n"


def by_name(snapshot: InterfaceSnapshot) -> dict[str, Interface]:
    return {iface.name: iface for iface in snapshot.interfaces}


# --- Parser ------------------------------------------------------------------------------------------------------


def test_parse_captured_text() -> None:
    parsed = parse_proc_net_dev(CAPTURED_PROC_NET_DEV)
    assert list(parsed) == ["lo", "ifb0", "ifb1", "eth0"]
    assert parsed["lo"] == InterfaceCounters(
        rx_bytes=54271503, rx_packets=986830, tx_bytes=54271503, tx_packets=986830
    )
    assert parsed["eth0"].rx_bytes == 66908804
    assert parsed["eth0"].rx_packets == 2010
    assert parsed["eth0"].tx_bytes == 171137
    assert parsed["eth0"].tx_packets == 1315
    assert parsed["ifb0"] == InterfaceCounters()


def test_parse_every_column_lands_in_its_field() -> None:
    # 16 distinct numbers so that a shifted column cannot go unnoticed; 7 and 16 are "compressed" (not kept).
    line = "  eth1: " + " ".join(str(n) for n in range(1, 17))
    assert parse_proc_net_dev(HEADER + line) == {
        "eth1": InterfaceCounters(
            rx_bytes=1,
            rx_packets=2,
            rx_errors=3,
            rx_dropped=4,
            rx_fifo=5,
            rx_frame=6,
            rx_multicast=8,
            tx_bytes=9,
            tx_packets=10,
            tx_errors=11,
            tx_dropped=12,
            tx_fifo=13,
            tx_collisions=14,
            tx_carrier=15,
        )
    }


def test_parse_colon_touching_number_and_unusual_names() -> None:
    numbers = " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    text = (
        HEADER
        # The kernel prints "%6s:%8llu": a long name or a big number leaves no space after the colon.
        + "verylongname0:12345678901" + " 7" * 15 + "\n"
        + "  eth0.100:" + numbers + "\n"
        + "br-1a2b@x:" + numbers + "\n"
        + "  wg_0-a:18446744073709551615" + " 1" * 15 + "\n"
    )  # fmt: skip
    parsed = parse_proc_net_dev(text)
    assert sorted(parsed) == ["br-1a2b@x", "eth0.100", "verylongname0", "wg_0-a"]
    assert parsed["verylongname0"].rx_bytes == 12345678901
    assert parsed["verylongname0"].rx_packets == 7
    assert parsed["wg_0-a"].rx_bytes == 2**64 - 1  # 64-bit counters stay exact
    # Extra trailing columns (a future kernel) are accepted; the first 16 are used.
    assert parse_proc_net_dev("x0:" + " 5" * 18)["x0"].tx_carrier == 5


def test_parse_malformed_lines_are_skipped_and_reported() -> None:
    good = "    lo:" + " 1" * 16
    bad = [
        "  eth0: 1 2 3",  # too few numbers
        "  eth1:" + " 1" * 15,  # one short
        "  eth2:" + " 1" * 15 + " x",  # not a number
        "  eth3:" + " 1" * 15 + " -4",  # negative
        "      :" + " 1" * 16,  # no name
        " ../x:" + " 1" * 16,  # would escape /sys/class/net
        " a b:" + " 1" * 16,  # a space inside the name
        "garbage without a colon",
        "\x00\x01:\xff",
    ]
    skipped: list[str] = []
    parsed = parse_proc_net_dev(HEADER + "\n".join([bad[0], good, *bad[1:]]) + "\n\n", skipped)
    assert list(parsed) == ["lo"]
    assert parsed["lo"].tx_carrier == 1
    assert skipped == bad  # header and blank lines are not complaints
    for text in ("", "\n\n", HEADER, "Inter-|", ":::::", "lo:"):
        assert parse_proc_net_dev(text) == {}


def test_parse_this_machines_file_names_every_interface_in_sys() -> None:
    for _ in range(5):  # other tests may add or remove an interface between the two reads: read again
        parsed = parse_proc_net_dev(Path("/proc/net/dev").read_text())
        if sorted(parsed) == sorted(os.listdir("/sys/class/net")):
            break
    assert sorted(parsed) == sorted(os.listdir("/sys/class/net"))
    assert parsed["lo"].rx_packets > 0


# --- Flags -------------------------------------------------------------------------------------------------------


def test_flag_letters_in_net_tools_order() -> None:
    assert flag_letters(0x1043) == "BMRU"  # an Ethernet NIC with carrier
    assert flag_letters(0x49) == "LRU"  # lo
    assert flag_letters(0x82) == "BO"  # an ifb that is down
    # What net-tools 2.10 printed for a veth with promisc, allmulti, dynamic, noarp, up and running.
    assert flag_letters(0x9383 | IFF_RUNNING) == "ABMdPORU"
    assert flag_letters(0x10 | 0x20 | 0x4 | 0x1) == "DNPU"  # pointopoint, notrailers, debug
    assert flag_letters(0x800 | 0x400) == "sm"  # slave before master, as net-tools
    assert flag_letters(0x100 | 0x20) == "PN"  # promisc's P comes before N, pointopoint's after O
    assert flag_letters(0x10 | 0x80 | 0x20) == "NOP"
    assert flag_letters(0) == ""


def test_running_is_derived_from_operstate_as_the_kernel_does() -> None:
    # sysfs's flags never carry IFF_RUNNING; SIOCGIFFLAGS adds it when up and operstate is up or unknown.
    assert interface_flags(0x1003, "up") == 0x1043
    assert interface_flags(0x9, "unknown") == 0x49
    assert interface_flags(0x1003, "lowerlayerdown") == 0x1003
    assert interface_flags(0x1003 | IFF_RUNNING, "dormant") == 0x1003
    assert interface_flags(0x1002, "up") == 0x1002  # not administratively up: never running
    assert interface_flags(0x1043, None) == 0x1043  # no operstate: the bits as given


# --- Real loopback -----------------------------------------------------------------------------------------------

LOOPBACK_BYTES = 5_000_000


def send_over_loopback(total: int) -> None:
    """Send `total` bytes through a real TCP connection on 127.0.0.1 and wait until all were received."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        received = 0

        def receive() -> None:
            nonlocal received
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(1 << 20):
                    received += len(chunk)

        thread = threading.Thread(target=receive)
        thread.start()
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(b"x" * total)
        thread.join(timeout=30)
    assert received == total


def test_loopback_counts_rates_flags_and_addresses() -> None:
    collector = InterfaceCollector()
    before_first = time.monotonic()
    first = by_name(collector.collect())["lo"]
    after_first = time.monotonic()
    assert first.rx_bytes_per_s == 0.0 and first.rx_history == []  # nothing to compare with yet
    send_over_loopback(LOOPBACK_BYTES)
    before_second = time.monotonic()
    snapshot = collector.collect()
    after_second = time.monotonic()
    lo = by_name(snapshot)["lo"]

    rx = lo.counters.rx_bytes - first.counters.rx_bytes
    tx = lo.counters.tx_bytes - first.counters.tx_bytes
    assert rx >= LOOPBACK_BYTES and tx >= LOOPBACK_BYTES
    # The rate is the delta over the time between the two reads, which lies inside these bounds.
    assert rx / (after_second - before_first) <= lo.rx_bytes_per_s <= rx / (before_second - after_first)
    assert tx / (after_second - before_first) <= lo.tx_bytes_per_s <= tx / (before_second - after_first)
    packets = lo.counters.rx_packets - first.counters.rx_packets
    assert (
        packets / (after_second - before_first) <= lo.rx_packets_per_s <= packets / (before_second - after_first)
    )
    assert lo.rx_history == [lo.rx_bytes_per_s] and lo.tx_history == [lo.tx_bytes_per_s]
    assert snapshot.warnings == []

    for letter in "LUR":
        assert letter in lo.flags
    assert lo.up and lo.running
    assert lo.operstate == "unknown"
    assert lo.index == int(Path("/sys/class/net/lo/ifindex").read_text())
    ip_link = subprocess.run(["ip", "-o", "link", "show", "lo"], capture_output=True, text=True, check=True).stdout
    kernel_flags = re.search(r"<([^>]*)>", ip_link)
    assert kernel_flags is not None
    assert {"LOOPBACK", "UP"} <= set(kernel_flags.group(1).split(","))
    assert f" mtu {lo.mtu} " in ip_link
    assert "127.0.0.1/8" in lo.ipv4
    if socket.has_ipv6 and Path("/proc/net/if_inet6").exists():
        assert "::1/128" in lo.ipv6


def test_snapshot_is_sorted_and_addresses_have_no_scope() -> None:
    snapshot = InterfaceCollector().collect()
    names = [iface.name for iface in snapshot.interfaces]
    assert names == sorted(names) and "lo" in names
    for iface in snapshot.interfaces:
        for address in iface.ipv4 + iface.ipv6:
            assert "%" not in address and "/" in address, address
        assert iface.index > 0 and iface.mtu > 0
        assert iface.speed_mbps is None or iface.speed_mbps > 0


@pytest.mark.skipif(shutil.which("netstat") is None, reason="net-tools netstat is not installed")
def test_flags_match_netstat_i() -> None:
    ours = {iface.name: iface.flags for iface in InterfaceCollector().collect().interfaces}
    output = subprocess.run(["netstat", "-ia"], capture_output=True, text=True, check=True).stdout
    theirs = {line.split()[0]: line.split()[-1] for line in output.splitlines()[2:] if line.strip()}
    both = set(theirs) & set(ours)  # other tests may add or remove interfaces meanwhile
    assert "lo" in both and len(both) >= len(ours) - 2
    for name in both:
        assert ours[name] == ("" if theirs[name] == "[NO FLAGS]" else theirs[name]), name


# --- Network namespace and veth ----------------------------------------------------------------------------------

DATAGRAMS = 2_000
DATAGRAM_SIZE = 1_000


@dataclass
class VethPair:
    """A veth pair: `host` in this namespace, `peer` in the namespace `ns`, addressed as a /30."""

    ns: str
    host: str
    peer: str
    host_ip: str
    peer_ip: str


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


@pytest.fixture
def veth() -> Iterator[VethPair]:
    """Names for a veth pair and its own network namespace; whatever exists of them is removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace and veth interfaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` is not installed")
    pid = os.getpid()
    subnet = f"10.213.{pid % 250}"
    pair = VethPair(f"netscope-test-{pid}", f"nsc{pid}h", f"nsc{pid}p", f"{subnet}.1", f"{subnet}.2")
    # Names carry our pid, so anything already there is left over by a dead process that had it.
    cleanup(pair)
    created = ip("netns", "add", pair.ns, check=False)
    if created.returncode != 0:
        pytest.skip(f"`ip netns add` failed, so no network namespace to test with: {created.stderr.strip()}")
    try:
        yield pair
    finally:
        cleanup(pair)


def cleanup(pair: VethPair) -> None:
    ip("link", "del", pair.host, check=False)
    ip("netns", "del", pair.ns, check=False)


def create_veth(pair: VethPair, *extra: str) -> None:
    """Create the pair, move the peer into the namespace, address and raise both ends."""
    ip("link", "add", pair.host, *extra, "type", "veth", "peer", "name", pair.peer, "netns", pair.ns)
    ip("addr", "add", f"{pair.host_ip}/30", "dev", pair.host)
    ip("-n", pair.ns, "addr", "add", f"{pair.peer_ip}/30", "dev", pair.peer)
    ip("link", "set", pair.host, "up")
    ip("-n", pair.ns, "link", "set", pair.peer, "up")
    # A permanent neighbour entry: no ARP round trip, so no datagram waits in (or overflows) the ARP queue.
    mac = ip("-n", pair.ns, "-o", "link", "show", pair.peer).stdout.split("link/ether ")[1].split()[0]
    ip("neigh", "replace", pair.peer_ip, "lladdr", mac, "dev", pair.host, "nud", "permanent")


def send_udp(address: str, count: int = DATAGRAMS, size: int = DATAGRAM_SIZE) -> None:
    """Bounded UDP traffic to `address`: it leaves through the veth whether or not anything listens there."""
    payload = b"n" * size
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(count):
            sock.sendto(payload, (address, 9))


def collect_until(collector: InterfaceCollector, name: str, condition: str, timeout: float = 5.0) -> Interface:
    """Collect every 20 ms until interface `name` has `condition` in its flags; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        iface = by_name(collector.collect()).get(name)
        if iface is not None and condition in iface.flags:
            return iface
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never showed flag {condition!r}: {iface}")
        time.sleep(0.02)


def test_veth_appears_carries_traffic_changes_mtu_and_disappears(veth: VethPair) -> None:
    collector = InterfaceCollector()
    assert veth.host not in by_name(collector.collect())

    create_veth(veth)
    # An old-style alias: getifaddrs names this address "<host>:a", but it belongs to the host end.
    alias = veth.host_ip.rsplit(".", 1)[0] + ".9"
    ip("addr", "add", f"{alias}/32", "dev", veth.host, "label", f"{veth.host}:a")
    snapshot = collector.collect()
    # Other tests on this machine may add interfaces too, so only ours is checked for.
    assert veth.host in snapshot.appeared and veth.peer not in snapshot.appeared  # the peer is in the netns
    host = by_name(snapshot)[veth.host]
    assert veth.peer not in by_name(snapshot)
    assert host.index == int(Path(f"/sys/class/net/{veth.host}/ifindex").read_text())
    assert host.mtu == 1500
    assert "U" in host.flags and host.up
    assert sorted(host.ipv4) == sorted([f"{veth.host_ip}/30", f"{alias}/32"])
    assert not [name for name in by_name(snapshot) if ":" in name]
    assert host.mac == Path(f"/sys/class/net/{veth.host}/address").read_text().strip()
    assert host.rx_history == [] and host.tx_bytes_per_s == 0.0  # a first sample has no rate

    host = collect_until(collector, veth.host, "R")  # carrier: both ends up
    assert host.running and host.operstate == "up" and host.flags == "BMRU"

    # Bounded traffic; each datagram is the payload plus UDP, IP and Ethernet headers on the wire.
    previous_start = time.monotonic()
    base = previous = by_name(collector.collect())[veth.host]
    previous_end = time.monotonic()
    send_udp(veth.peer_ip)
    sent = DATAGRAMS * DATAGRAM_SIZE
    for _ in range(2):  # within two collects
        start = time.monotonic()
        now = by_name(collector.collect())[veth.host]
        end = time.monotonic()
        # Each sample's rate is its delta over the time between the two reads, which lies inside these bounds.
        delta = now.counters.tx_bytes - previous.counters.tx_bytes
        assert delta / (end - previous_start) <= now.tx_bytes_per_s <= delta / (start - previous_end)
        assert now.tx_history[-1] == now.tx_bytes_per_s
        if now.counters.tx_bytes - base.counters.tx_bytes >= sent:
            break
        previous, previous_start, previous_end = now, start, end
    assert now.counters.tx_bytes - base.counters.tx_bytes >= sent
    assert now.counters.tx_packets - base.counters.tx_packets >= DATAGRAMS
    assert now.tx_bytes_per_s > 0 and now.tx_packets_per_s > 0

    ip("link", "set", "dev", veth.host, "mtu", "1400")
    assert by_name(collector.collect())[veth.host].mtu == 1400

    ip("link", "del", veth.host)
    snapshot = collector.collect()
    assert veth.host in snapshot.disappeared
    assert veth.host not in by_name(snapshot)
    assert "lo" in by_name(snapshot)
    assert veth.host not in collector.collect().disappeared  # forgotten, not reported twice


def test_recreated_veth_restarts_and_never_goes_negative(veth: VethPair) -> None:
    collector = InterfaceCollector()
    create_veth(veth)
    collect_until(collector, veth.host, "R")
    send_udp(veth.peer_ip, count=500)
    old = by_name(collector.collect())[veth.host]
    assert old.counters.tx_bytes >= 500 * DATAGRAM_SIZE and old.tx_history  # something to go backwards from

    # Re-created under the same name: a new ifindex, counters from zero.
    ip("link", "del", veth.host)
    create_veth(veth)
    snapshot = collector.collect()
    new = by_name(snapshot)[veth.host]
    assert new.index != old.index
    assert new.counters.tx_bytes < old.counters.tx_bytes
    assert veth.host in snapshot.appeared and veth.host not in snapshot.disappeared
    assert new.tx_bytes_per_s == new.rx_bytes_per_s == new.tx_packets_per_s == new.rx_packets_per_s == 0.0
    assert new.tx_history == [] and new.rx_history == []  # history restarts with the new interface

    # Re-created with the same ifindex, as a driver reset looks: counters drop but it is the "same" interface.
    send_udp(veth.peer_ip, count=500)
    busy = by_name(collector.collect())[veth.host]
    assert busy.tx_bytes_per_s > 0
    index = busy.index
    ip("link", "del", veth.host)
    create_veth(veth, "index", str(index))
    snapshot = collector.collect()
    reset = by_name(snapshot)[veth.host]
    assert reset.index == index
    assert reset.counters.tx_bytes < busy.counters.tx_bytes
    assert veth.host not in snapshot.appeared
    for rate in (reset.rx_bytes_per_s, reset.tx_bytes_per_s, reset.rx_packets_per_s, reset.tx_packets_per_s):
        assert rate == 0.0
    assert reset.tx_history == [*busy.tx_history, 0.0]
    # And the sample after the reset measures from the new, lower counters.
    send_udp(veth.peer_ip, count=100)
    after = by_name(collector.collect())[veth.host]
    assert after.tx_bytes_per_s > 0 and after.counters.tx_bytes - reset.counters.tx_bytes >= 100 * DATAGRAM_SIZE


# --- Fake /proc and /sys: resets, history bounds, broken inputs --------------------------------------------------


def dev_line(name: str, rx_bytes: int, tx_bytes: int, rx_packets: int = 0, tx_packets: int = 0) -> str:
    return f"{name:>6}: {rx_bytes} {rx_packets} 0 0 0 0 0 0 {tx_bytes} {tx_packets} 0 0 0 0 0 0"


class FakeRoots:
    """A real directory tree standing in for /proc and /sys."""

    def __init__(self, root: Path) -> None:
        self.proc = root / "proc"
        self.sys = root / "sys"
        (self.proc / "net").mkdir(parents=True)
        (self.sys / "class" / "net").mkdir(parents=True)

    def dev(self, *lines: str) -> None:
        (self.proc / "net" / "dev").write_text(HEADER + "".join(line + "\n" for line in lines))

    def iface(self, name: str, index: int, **files: str) -> None:
        folder = self.sys / "class" / "net" / name
        folder.mkdir(exist_ok=True)
        defaults = {"ifindex": str(index), "mtu": "1500", "flags": "0x1003", "operstate": "up"}
        defaults["address"] = "02:00:00:00:00:01"
        for file, text in {**defaults, **files}.items():
            (folder / file).write_text(text + "\n")

    def collector(self, history_length: int = HISTORY_LENGTH) -> InterfaceCollector:
        return InterfaceCollector(proc_root=str(self.proc), sys_root=str(self.sys), history_length=history_length)


@pytest.fixture
def fake(tmp_path: Path) -> FakeRoots:
    return FakeRoots(tmp_path)


def test_fake_rates_resets_and_bounded_history(fake: FakeRoots) -> None:
    fake.iface("fk0", 7, speed="1000")
    fake.iface("fk1", 8, flags="0x1002", operstate="down")
    fake.dev(dev_line("fk1", 0, 0), dev_line("fk0", 1_000, 2_000, 10, 20))
    collector = fake.collector(history_length=3)
    first = collector.collect()
    assert [i.name for i in first.interfaces] == ["fk0", "fk1"]  # sorted by name, not file order
    assert first.appeared == [] and first.warnings == []
    fk0 = first.interfaces[0]
    assert (fk0.index, fk0.mtu, fk0.flags, fk0.speed_mbps, fk0.operstate) == (7, 1500, "BMRU", 1000, "up")
    assert first.interfaces[1].flags == "BM" and first.interfaces[1].speed_mbps is None

    fake.dev(dev_line("fk1", 0, 0), dev_line("fk0", 101_000, 2_000, 110, 20))
    fk0 = by_name(collector.collect())["fk0"]
    assert fk0.rx_bytes_per_s > 0 and fk0.tx_bytes_per_s == 0.0
    assert fk0.rx_packets_per_s == pytest.approx(fk0.rx_bytes_per_s / 1000)

    fake.dev(dev_line("fk1", 0, 0), dev_line("fk0", 50, 60, 1, 1))  # driver reset: every counter lower
    fk0 = by_name(collector.collect())["fk0"]
    assert (fk0.rx_bytes_per_s, fk0.tx_bytes_per_s, fk0.rx_packets_per_s, fk0.tx_packets_per_s) == (0, 0, 0, 0)

    for step in range(1, 5):
        fake.dev(dev_line("fk1", 0, 0), dev_line("fk0", 50 + step * 10, 60, 1, 1))
        fk0 = by_name(collector.collect())["fk0"]
        assert fk0.rx_bytes_per_s > 0
    assert len(fk0.rx_history) == len(fk0.tx_history) == 3  # bounded
    assert min(fk0.rx_history) > 0  # the zero of the reset has been pushed out

    fake.iface("fk0", 9)  # re-created: new ifindex
    fake.dev(dev_line("fk0", 10, 10), dev_line("fk2", 5, 5))
    fake.iface("fk2", 10)
    snapshot = collector.collect()
    assert snapshot.appeared == ["fk0", "fk2"] and snapshot.disappeared == ["fk1"]
    assert by_name(snapshot)["fk0"].rx_history == []


def test_missing_proc_net_dev_gives_an_empty_snapshot_with_a_warning(fake: FakeRoots) -> None:
    snapshot = fake.collector().collect()
    assert snapshot.interfaces == []
    assert len(snapshot.warnings) == 1
    assert "does not exist" in snapshot.warnings[0] and str(fake.proc / "net" / "dev") in snapshot.warnings[0]

    (fake.proc / "net" / "dev").mkdir()  # unreadable as a file
    snapshot = fake.collector().collect()
    assert snapshot.interfaces == [] and "cannot read" in snapshot.warnings[0]


def test_read_failure_keeps_what_was_known(fake: FakeRoots) -> None:
    fake.iface("fk0", 3)
    fake.dev(dev_line("fk0", 100, 100))
    collector = fake.collector()
    collector.collect()
    (fake.proc / "net" / "dev").unlink()
    gone = collector.collect()
    assert gone.interfaces == [] and gone.disappeared == [] and gone.warnings
    fake.dev(dev_line("fk0", 300, 100))
    back = collector.collect()
    assert back.appeared == [] and back.disappeared == []
    assert by_name(back)["fk0"].rx_bytes_per_s > 0  # measured across the failed read


def test_broken_files_give_warnings_not_exceptions(fake: FakeRoots) -> None:
    fake.iface("fk0", 0, ifindex="seven", flags="zz", speed="-1")
    (fake.sys / "class" / "net" / "fk0" / "mtu").unlink()
    fake.iface("fk1", 4, speed="garbage", address="")
    (fake.sys / "class" / "net" / "fk1" / "operstate").unlink()
    (fake.sys / "class" / "net" / "fk1" / "operstate").mkdir()  # EISDIR on read
    (fake.sys / "class" / "net" / "fk1" / "operstate" / "x").write_text("")
    fake.dev(
        dev_line("fk0", 1, 1),
        dev_line("fk1", 1, 1),
        dev_line("gone0", 1, 1),  # in /proc/net/dev but not in sysfs: vanished, skipped silently
        "  fk9: 1 2 three",
        "\x00garbage\x00",
    )
    snapshot = fake.collector().collect()
    assert [i.name for i in snapshot.interfaces] == ["fk0", "fk1"]
    fk0, fk1 = snapshot.interfaces
    assert (fk0.index, fk0.mtu, fk0.flags, fk0.speed_mbps) == (0, 0, "", None)
    assert fk1.mac == "" and fk1.speed_mbps is None and fk1.operstate == ""
    text = "\n".join(snapshot.warnings)
    assert "2 line(s)" in text and "fk9" in text
    assert "fk0" in text and "'seven'" in text and "'zz'" in text and "mtu does not exist" in text
    assert "fk1" in text and "operstate" in text
    assert "gone0" not in text


def test_sys_missing_or_from_another_namespace_still_shows_counters(fake: FakeRoots) -> None:
    fake.dev(dev_line("fk0", 1, 1))
    # sysfs has interfaces, but none of ours: it belongs to another network namespace.
    fake.iface("other0", 2)
    snapshot = fake.collector().collect()
    assert [i.name for i in snapshot.interfaces] == ["fk0"]
    assert any("another network namespace" in w for w in snapshot.warnings)

    shutil.rmtree(fake.sys)
    snapshot = fake.collector().collect()
    assert [i.name for i in snapshot.interfaces] == ["fk0"] and snapshot.interfaces[0].counters.rx_bytes == 1
    assert any("is /sys mounted?" in w for w in snapshot.warnings)


def test_collect_is_cheap() -> None:
    collector = InterfaceCollector()
    collector.collect()
    start = time.perf_counter()
    for _ in range(20):
        collector.collect()
    per_collect = (time.perf_counter() - start) / 20
    assert per_collect < 0.05, f"{per_collect * 1000:.1f} ms per collect"
