"""The connection tracking table (`netscope -M`): real flows through a router namespace that masquerades (nft,
from Debian's nftables package, installed where missing) between a client namespace and a server namespace,
checked field by field against the kernel's own /proc/net/nf_conntrack and `conntrack -L` where installed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import debian_tool, record_a_while, run_as_nobody, type_filter, wait_for
from textual.pilot import Pilot
from textual.widgets import Static

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.namespaces import namespace_path
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.recording import ReplaySource
from netscope.collectors.view_data import SystemViews

pytestmark = pytest.mark.root
NETSCOPE = [sys.executable, "-m", "netscope"]


@dataclass
class Nat:
    client: str  # namespaces
    router: str
    server: str
    client_ip: str
    router_outside_ip: str
    server_ip: str


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def nat() -> Iterator[Nat]:
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces")
    nft = debian_tool("nft", "nftables")
    tag = str(os.getpid() % 100000)
    client, router, server = f"nsc{tag}", f"nsr{tag}", f"nss{tag}"
    net = f"10.{180 + os.getpid() % 50}"
    for name in (client, router, server):
        ip("netns", "add", name)
    try:
        ip("link", "add", f"c{tag}", "type", "veth", "peer", "name", f"rc{tag}")
        ip("link", "add", f"s{tag}", "type", "veth", "peer", "name", f"rs{tag}")
        for link, space in ((f"c{tag}", client), (f"rc{tag}", router), (f"s{tag}", server), (f"rs{tag}", router)):
            ip("link", "set", link, "netns", space)
        for space, link, address in ((client, f"c{tag}", f"{net}.1.2/24"), (router, f"rc{tag}", f"{net}.1.1/24"),
                                     (server, f"s{tag}", f"{net}.2.2/24"), (router, f"rs{tag}", f"{net}.2.1/24")):
            ip("-n", space, "addr", "add", address, "dev", link)
            ip("-n", space, "link", "set", link, "up")
        ip("-n", client, "route", "add", "default", "via", f"{net}.1.1")
        subprocess.run(["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                        "net.netfilter.nf_conntrack_acct=1"], check=True, timeout=30)  # fmt: skip
        rules = (f"table ip nat {{ chain post {{ type nat hook postrouting priority 100; oifname \"rs{tag}\" "
                 "masquerade; }; }")  # fmt: skip
        subprocess.run(["ip", "netns", "exec", router, nft, rules], check=True, timeout=30)
        yield Nat(client, router, server, f"{net}.1.2", f"{net}.2.1", f"{net}.2.2")
    finally:
        for name in (client, router, server):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


SERVER = "import socket, sys, time\ns = socket.socket(); s.bind((sys.argv[1], 8080)); s.listen()\n" \
         "print('ready', flush=True)\nc, _ = s.accept(); c.recv(10); c.send(b'pong'); time.sleep(30)\n"
CLIENT = "import socket, sys, time\nc = socket.create_connection((sys.argv[1], 8080)); c.send(b'ping')\n" \
         "c.recv(10); print(c.getsockname()[1], flush=True); time.sleep(30)\n"


@contextlib.contextmanager
def connection(server: list[str], client: list[str]) -> Iterator[int]:
    """A server process that says "ready" once listening and a client process that connects and prints its port;
    yields that port, and kills both on the way out."""
    processes = [subprocess.Popen(server, stdout=subprocess.PIPE, text=True)]
    try:
        assert processes[0].stdout is not None and processes[0].stdout.readline().strip() == "ready"
        processes.append(subprocess.Popen(client, stdout=subprocess.PIPE, text=True))
        assert processes[1].stdout is not None
        yield int(processes[1].stdout.readline())
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def masqueraded(nat: Nat) -> contextlib.AbstractContextManager[int]:
    """A TCP connection from the client namespace to the server's port 8080, masqueraded by the router."""
    return connection(["ip", "netns", "exec", nat.server, sys.executable, "-c", SERVER, nat.server_ip],
                      ["ip", "netns", "exec", nat.client, sys.executable, "-c", CLIENT, nat.server_ip])


def test_m_shows_both_tuples_of_a_masqueraded_connection(nat: Nat) -> None:
    with masqueraded(nat) as client_port:
        time.sleep(0.2)
        text = subprocess.run([*NETSCOPE, "--netns", nat.router, "-M"], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        data = subprocess.run([*NETSCOPE, "--netns", nat.router, "-M", "--json"], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        kernel = subprocess.run(["ip", "netns", "exec", nat.router, "cat", "/proc/net/nf_conntrack"],
                                capture_output=True, text=True, timeout=30).stdout  # fmt: skip
        theirs = ""
        if shutil.which("conntrack"):
            theirs = subprocess.run(["ip", "netns", "exec", nat.router, "conntrack", "-L"], capture_output=True,
                                    text=True, timeout=30).stdout  # fmt: skip
    assert text.returncode == 0, text.stderr
    [line] = [line for line in text.stdout.splitlines() if f"sport={client_port} " in line]
    inside = f"src={nat.client_ip} dst={nat.server_ip} sport={client_port} dport=8080"
    outside = f"src={nat.server_ip} dst={nat.router_outside_ip} sport=8080 dport={client_port}"
    assert re.match(r"tcp +6 \d+ ESTABLISHED ", line) and inside in line and outside in line
    assert "[ASSURED]" in line and "[UNREPLIED]" not in line and "flow entries have been shown" in text.stderr
    [flow] = [f for f in json.loads(data.stdout) if f["original"]["sport"] == client_port]
    assert flow["nat"] == "snat" and "SRC_NAT" in flow["status"] and flow["state"] == "ESTABLISHED"
    assert (flow["reply"]["dst"], flow["reply"]["dport"]) == (nat.router_outside_ip, client_port)
    assert flow["original"]["packets"] >= 3 and flow["original"]["bytes"] > 0  # accounting on: counted
    # The kernel's own line for the same flow: every field netscope prints is there, equal.
    [kernel_line] = [k for k in kernel.splitlines() if f"sport={client_port} " in k]
    for field in line.split():
        if not field.startswith(("use=", "[")) and not field.isdigit():
            assert field in kernel_line.split(), field
    if theirs:  # conntrack -L, what its users read: the same line but for the timeout's passing seconds
        [their_line] = [t for t in theirs.splitlines() if f"sport={client_port} " in t]
        strip = re.compile(r"^(\w+ +\d+) \d+ ")
        assert strip.sub(r"\1 T ", their_line.strip()) == strip.sub(r"\1 T ", line.strip())


def test_m_without_the_privilege_says_what_it_needs(nobody_python: tuple[list[str], dict[str, str]]) -> None:
    command, env = nobody_python
    code = "import sys; from netscope.app.cli import main; sys.exit(main(['-M', '--no-config']))"
    result = run_as_nobody(command, env, code)
    assert result.returncode == 1, result.stderr
    assert "needs CAP_NET_ADMIN: run netscope -M as root" in result.stderr and "Traceback" not in result.stderr


def test_m_refuses_the_socket_flags_with_why() -> None:
    result = subprocess.run([*NETSCOPE, "-M", "-t"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "-M prints the connection tracking table alone" in result.stderr


OWNED = (
    "import ctypes, socket, sys, time\n"
    "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"
    "if sys.argv[1] == 'ns-ct-server':\n"
    "    s = socket.socket(); s.bind(('127.0.0.1', 8080)); s.listen(); print('ready', flush=True)\n"
    "    c, _ = s.accept()\n"
    "else:\n"
    "    c = socket.create_connection(('127.0.0.1', 8080)); print(c.getsockname()[1], flush=True)\n"
    "time.sleep(30)\n"
)


@pytest.fixture
def tracked_namespace() -> Iterator[str]:
    """A namespace of our own where an nft rule turns connection tracking on for what its processes send."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces")
    nft = debian_tool("nft", "nftables")
    name = f"nst{os.getpid() % 100000}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        rule = "table ip t { chain out { type filter hook output priority 0; ct state new accept; }; }"
        subprocess.run(["ip", "netns", "exec", name, nft, rule], check=True, timeout=30)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def local_connection(namespace: str) -> contextlib.AbstractContextManager[int]:
    """A TCP connection over the namespace's loopback between processes named ns-ct-server and ns-ct-client."""
    inside = ["ip", "netns", "exec", namespace, sys.executable, "-c", OWNED]
    return connection([*inside, "ns-ct-server"], [*inside, "ns-ct-client"])


def pids_by_name() -> dict[str, int]:
    """The owners are the processes ip netns exec ran: the python children, whose PIDs we find by name."""
    return {name: int(subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()[0])
            for name in ("ns-ct-server", "ns-ct-client")}  # fmt: skip


def test_a_flow_between_local_sockets_names_its_client_and_server(tracked_namespace: str) -> None:
    with local_connection(tracked_namespace) as port:
        data = subprocess.run([*NETSCOPE, "--netns", tracked_namespace, "-M", "--json"], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        text = subprocess.run([*NETSCOPE, "--netns", tracked_namespace, "-M"], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        pids = pids_by_name()
    [flow] = [f for f in json.loads(data.stdout) if f["original"]["sport"] == port]
    assert (flow["client"]["pid"], flow["client"]["program"]) == (pids["ns-ct-client"], "ns-ct-client")
    assert (flow["server"]["pid"], flow["server"]["program"]) == (pids["ns-ct-server"], "ns-ct-server")
    [line] = [line for line in text.stdout.splitlines() if f"sport={port} " in line]
    ends = f" client={pids['ns-ct-client']}/ns-ct-client server={pids['ns-ct-server']}/ns-ct-server"
    assert re.search(r" use=\d+" + re.escape(ends) + "$", line), line


# --- view 7, NAT: the same table live ---------------------------------------------------------------------------


def nat_rows(app: NetscopeApp) -> list[dict[str, str]]:
    labels, rows = app.nat_view.table.export_rows()
    return [dict(zip(labels, row, strict=True)) for row in rows]


async def nat_row(pilot: Pilot[None], app: NetscopeApp, original: str) -> dict[str, str]:
    """The NAT view's row whose original tuple reads `original`, once it is shown."""
    def found() -> list[dict[str, str]]:
        return [row for row in nat_rows(app) if row["Original: source → destination"] == original]

    await wait_for(pilot, lambda: len(found()) == 1)
    return found()[0]


async def test_the_nat_view_shows_both_tuples_and_filters_by_either(nat: Nat) -> None:
    with masqueraded(nat) as port:
        app = NetscopeApp(interval=0.2, views=SystemViews(netns=namespace_path(nat.router)))
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.press("7")
            row = await nat_row(pilot, app, f"{nat.client_ip}:{port} → {nat.server_ip}:8080")
            assert row["Reply: source → destination"] == f"{nat.server_ip}:8080 → {nat.router_outside_ip}:{port}"
            assert (row["State"], row["Proto"], row["NAT"], row["Local end"]) == ("ESTABLISHED", "tcp", "snat", "")
            # An established flow's five days, counted like ages: it does not repaint every second.
            assert row["Bytes"] != "-" and re.fullmatch(r"\d+d\d+h", row["Timeout"]), row
            summary = str(app.nat_view.summary.render())
            assert "NATed" in summary and "sort: original" in summary
            # The outside address is only in the reply tuple: the filter finds the flow by it.
            await type_filter(pilot, f"ip:{nat.router_outside_ip} :{port} established")
            await wait_for(pilot, lambda: len(nat_rows(app)) == 1)
            await type_filter(pilot, "ip:192.0.2.0/24")
            await wait_for(pilot, lambda: nat_rows(app) == [])
            await type_filter(pilot, "bogus:1")
            assert "unknown key 'bogus'" in str(app.nat_view.query_one("#filter-error", Static).render())
            assert app.nat_view.model.filter.text == "ip:192.0.2.0/24"  # the previous filter stays
            await pilot.press("escape", "escape")
            await wait_for(pilot, lambda: len(nat_rows(app)) >= 1)
            await pilot.press("s")
            assert app.nat_view.model.sort_label == "timeout"
            assert app.filter.is_empty  # view 1's filter is its own


async def test_the_nat_view_names_the_local_ends(tracked_namespace: str) -> None:
    with local_connection(tracked_namespace) as port:
        pids = pids_by_name()
        path = namespace_path(tracked_namespace)
        app = NetscopeApp(ProcessCollector(interval=0.2, netns=path), interval=0.2, views=SystemViews(netns=path))
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.press("7")
            ends = f"client {pids['ns-ct-client']}/ns-ct-client  server {pids['ns-ct-server']}/ns-ct-server"
            await wait_for(pilot, lambda: any(row["Local end"] == ends for row in nat_rows(app)))
            await type_filter(pilot, "proc:ns-ct-client")
            await wait_for(pilot, lambda: [row["Original: source → destination"] for row in nat_rows(app)] == [
                f"127.0.0.1:{port} → 127.0.0.1:8080"])


async def test_the_nat_view_replays_what_was_recorded_while_shown(
    nat: Nat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with masqueraded(nat) as port:
        inside = f"{nat.client_ip}:{port} → {nat.server_ip}:8080"
        app = NetscopeApp(interval=0.2, views=SystemViews(netns=namespace_path(nat.router)))
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.press("7")
            await nat_row(pilot, app, inside)
            await record_a_while(pilot, app)
    [path] = list(tmp_path.glob("netscope-*.nsrec"))
    app = NetscopeApp(ReplaySource(path, playing=False))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await pilot.press("7", "right_square_bracket")
        row = await nat_row(pilot, app, inside)
        assert row["Reply: source → destination"] == f"{nat.server_ip}:8080 → {nat.router_outside_ip}:{port}"
        assert "as recorded at" in str(app.nat_view.summary.render())


def test_the_nat_table_orders_addresses_as_numbers_and_filters_by_either_tuple() -> None:
    from netscope.collectors.conntrack import Flow, Tuple
    from netscope.collectors.row_order import ip_order
    from netscope.collectors.session.filters import parse_filter
    from netscope.collectors.session.nat import NatTable

    def flow(src: str, outside: str, sent: int, family: int = 4) -> Flow:
        return Flow(family, 6, Tuple(src, "192.0.2.1", 40000, 443, None, 3, sent),
                    Tuple("192.0.2.1", outside, 443, 40000, None, 3, 0), "ESTABLISHED", 100)  # fmt: skip

    flows = [flow("10.0.0.10", "203.0.113.1", 10), flow("10.0.0.9", "203.0.113.2", 30), flow("::1", "::2", 20, 6)]
    table = NatTable(flows, address_order=ip_order)
    assert [f.original.src for f in table.shown()] == ["10.0.0.9", "10.0.0.10", "::1"]  # IPv4 first, as numbers
    table.cycle_sort()
    table.cycle_sort()
    assert table.sort_label == "bytes" and [f.original.bytes for f in table.shown()] == [30, 20, 10]
    table.filter = parse_filter("ip:203.0.113.2 established :443")  # the outside address: only in the reply
    assert [f.original.src for f in table.shown()] == ["10.0.0.9"]
    table.filter = parse_filter("udp")
    assert table.shown() == []


MIXED = r"""
import socket, struct, sys
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for port in range(21000, 21050):
            s.sendto(b"x", (host, port))
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
echo = struct.pack("!BBHHH", 8, 0, 0, 4242, 1) + b"ping"
echo = struct.pack("!BBHHH", 8, 0, checksum(echo), 4242, 1) + b"ping"
with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
    raw.sendto(echo, ("127.0.0.1", 0))
print("ready", flush=True)
sys.stdin.read()
"""


def test_every_kind_of_flow_reads_as_conntrack_lists_it(tracked_namespace: str) -> None:
    # UDP over IPv4 and IPv6, TCP, ICMP echo: each flow's line as `conntrack -L` prints it, but for the seconds
    # left (the hand-written ctnetlink walk, checked against the tool that reads the same table).
    conntrack = debian_tool("conntrack", "conntrack")
    inside = ["ip", "netns", "exec", tracked_namespace]
    rule = "table ip6 t6 { chain out { type filter hook output priority 0; ct state new accept; }; }"
    subprocess.run([*inside, debian_tool("nft", "nftables"), rule], check=True, timeout=30)
    holder = subprocess.Popen([*inside, sys.executable, "-c", MIXED], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        ours = subprocess.run([*NETSCOPE, "--netns", tracked_namespace, "-M"], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        theirs = "".join(subprocess.run([*inside, conntrack, "-L", "-f", family], capture_output=True, text=True,
                                        timeout=30).stdout for family in ("ipv4", "ipv6"))  # fmt: skip
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert ours.returncode == 0, ours.stderr
    strip = re.compile(r"^(\w+ +\d+) \d+ ")
    ends = re.compile(r"( (client|server)=\S+)+$")  # netscope's own addition: the local sockets' owners

    def lines(text: str) -> set[str]:
        return {ends.sub("", strip.sub(r"\1 T ", line.strip())) for line in text.splitlines() if line.strip()}

    mine, kernel = lines(ours.stdout), lines(theirs)
    assert len(mine) >= 102 and mine == kernel  # 100 UDP flows, the TCP connection, the ICMP echo
    assert any(line.startswith("icmp ") and "type=8 code=0 id=4242" in line for line in mine)
    assert any(line.startswith("udp ") and "src=::1" in line for line in mine)


async def test_an_empty_table_says_why_it_may_be_empty() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a network namespace")
    name = f"nse{os.getpid() % 100000}"
    ip("netns", "add", name)  # no rule tracks anything here: the table stays empty
    try:
        app = NetscopeApp(interval=0.2, views=SystemViews(netns=namespace_path(name)))
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.press("7")
            await wait_for(pilot, lambda: app.nat_view.snapshot is not None)
            summary = str(app.nat_view.summary.render())
            assert "0 flows tracked" in summary and "ct state" in summary and "NAT turns it on" in summary
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
