"""Unix sockets (`netscope -x`): real named, abstract and socketpair sockets owned by a child process, read with
netlink UNIX_DIAG and checked against the kernel's own inodes (fstat), /proc/net/unix, and ss."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import record_a_while, wait_for
from textual.pilot import Pilot
from textual.widgets import Static

from netscope.app.netscope_app import NetscopeApp
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.app.screens.details import DetailsScreen
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.recording import RecordingReader, RecordingWriter, ReplaySource
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.unix_sockets import UnixSocket, as_sockets, read_proc_unix, read_unix_sockets
from netscope.collectors.view_data import UnixRows, ViewData
from netscope.widgets.state_counters import StateCounters

NETSCOPE = [sys.executable, "-m", "netscope"]

# A child that holds every kind of unix socket, prints their inodes as JSON, and waits for its stdin to close.
OWNER = r"""
import ctypes, json, os, socket, sys, time
ctypes.CDLL(None).prctl(15, b"ns-unix-owner", 0, 0, 0)
directory, abstract = sys.argv[1], sys.argv[2]
def ino(s): return os.fstat(s.fileno()).st_ino
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(os.path.join(directory, "app.sock")); listener.listen(7)
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); client.connect(os.path.join(directory, "app.sock"))
server_end, _ = listener.accept()
client.send(b"x" * 100)  # never read: 100 bytes wait in the server end's receive queue
pending = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); pending.connect(os.path.join(directory, "app.sock"))
dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); dgram.bind("\0" + abstract)
left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
hostile = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
hostile.bind(os.path.join(directory.encode(), b"evil\n\x1b[31mred\xff.sock")); hostile.listen(1)
print(json.dumps({"listener": ino(listener), "client": ino(client), "server_end": ino(server_end),
                  "pending": ino(pending), "dgram": ino(dgram), "left": ino(left), "right": ino(right),
                  "hostile": ino(hostile)}), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, int], Path, str]]:
    abstract = f"netscope-test-{os.getpid()}"
    process = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path), abstract], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    inodes = json.loads(process.stdout.readline())
    yield process, inodes, tmp_path, abstract
    process.stdin.close()
    process.wait(timeout=10)


def by_inode(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {record["inode"]: record for record in records}


def test_x_lists_each_kind_with_its_peer_owner_and_queues(
    owner: tuple[subprocess.Popen[str], dict[str, int], Path, str],
) -> None:
    process, inodes, directory, abstract = owner
    result = subprocess.run([*NETSCOPE, "-x", "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = by_inode(json.loads(result.stdout))
    listener, client, server_end = found[inodes["listener"]], found[inodes["client"]], found[inodes["server_end"]]
    assert (listener["type"], listener["state"]) == ("STREAM", "LISTENING")
    assert listener["path"] == f"{directory}/app.sock"
    assert (listener["recv_q"], listener["send_q"]) == (1, 7)  # one connection waits to be accepted; backlog 7
    assert client["state"] == server_end["state"] == "CONNECTED"
    assert client["peer_inode"] == inodes["server_end"] and server_end["peer_inode"] == inodes["client"]
    assert server_end["recv_q"] == 100 and server_end["path"] == f"{directory}/app.sock"
    assert client["path"] == ""  # the connecting end has no name of its own
    dgram = found[inodes["dgram"]]
    assert (dgram["type"], dgram["state"], dgram["path"]) == ("DGRAM", "UNCONNECTED", f"@{abstract}")
    left, right = found[inodes["left"]], found[inodes["right"]]
    assert left["type"] == "SEQPACKET" and left["peer_inode"] == inodes["right"]
    assert right["peer_inode"] == inodes["left"]
    for name in inodes:
        assert (found[inodes[name]]["pid"], found[inodes[name]]["program"]) == (process.pid, "ns-unix-owner")


def test_the_text_table_shows_hostile_paths_literally_on_one_line(
    owner: tuple[subprocess.Popen[str], dict[str, int], Path, str],
) -> None:
    process, inodes, directory, _ = owner
    text = subprocess.run([*NETSCOPE, "-xl"], capture_output=True, text=True, timeout=60).stdout
    lines = text.splitlines()
    assert lines[0] == "Active UNIX domain sockets (only servers)"
    [hostile] = [line for line in lines if f" {inodes['hostile']} " in line]
    assert hostile.endswith(f"{directory}/evil\\x0a\\x1b[31mred\\xff.sock")
    assert "\x1b" not in text and f"{process.pid}/ns-unix-owner" in hostile and "[ ACC ]" in hostile
    assert all(" CONNECTED " not in line for line in lines[2:])  # -l: listeners only
    everything = subprocess.run([*NETSCOPE, "-A", "unix"], capture_output=True, text=True, timeout=60).stdout
    [dgram] = [line for line in everything.splitlines() if f" {inodes['dgram']} " in line]
    assert dgram.split()[5:7] == ["DGRAM", str(inodes["dgram"])]  # State empty, as netstat's
    records = json.loads(subprocess.run([*NETSCOPE, "-x", "--json"], capture_output=True, text=True).stdout)
    assert by_inode(records)[inodes["hostile"]]["path"] == f"{directory}/evil\n\x1b[31mred\\xff.sock"


def test_x_takes_the_filter_language(owner: Owner) -> None:
    process, inodes, _directory, _ = owner
    result = subprocess.run([*NETSCOPE, "-x", "--json", "--filter", f"pid:{process.pid} path:app.sock"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {record["inode"] for record in json.loads(result.stdout)} == {
        inodes["listener"], inodes["client"], inodes["server_end"]}


def test_proc_net_unix_agrees_where_it_can(owner: tuple[subprocess.Popen[str], dict[str, int], Path, str]) -> None:
    _, inodes, _, _ = owner
    netlink = {sock.inode: sock for sock in read_unix_sockets(owners=False).sockets}
    proc = {sock.inode: sock for sock in read_proc_unix()}
    for name in ("listener", "client", "server_end", "dgram", "left", "right"):
        mine, kernel = netlink[inodes[name]], proc[inodes[name]]
        assert (mine.type, mine.state, mine.path) == (kernel.type, kernel.state, kernel.path), name
        assert kernel.recv_q is None and kernel.peer_inode == 0  # what /proc/net/unix cannot say


def test_ss_links_the_same_peers(owner: tuple[subprocess.Popen[str], dict[str, int], Path, str]) -> None:
    _, inodes, _, _ = owner
    ss = subprocess.run(["ss", "-xa"], capture_output=True, text=True, errors="replace", timeout=60)
    if ss.returncode != 0:
        pytest.skip("ss cannot dump unix sockets here")
    pairs = set()
    for line in ss.stdout.splitlines()[1:]:
        fields = line.split()
        numbers = [int(f) for f in fields if f.isdigit()]
        if len(numbers) >= 4:  # Recv-Q Send-Q ... inode ... peer inode
            pairs.add((numbers[-2], numbers[-1]))
    assert (inodes["client"], inodes["server_end"]) in pairs
    assert (inodes["left"], inodes["right"]) in pairs


@pytest.mark.parametrize(("args", "says"), [
    (["-tx", "--json"], "hold one table"),
    (["-x", "--watch"], "does not combine with --watch"),
])  # fmt: skip
def test_x_refuses_what_it_cannot_do_with_why(args: list[str], says: str) -> None:
    result = subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and says in result.stderr


# --- the Connections view's protocol choice: unix sockets as rows of the one table -----------------------------

Owner = tuple[subprocess.Popen[str], dict[str, int], Path, str]


def test_the_live_collector_reads_unix_rows_with_peers_and_owners(owner: Owner) -> None:
    process, inodes, directory, abstract = owner
    rows = {sock.inode: sock for sock in ConnectionCollector(unix=True).collect().sockets.values()}
    app_sock = f"{directory}/app.sock"
    listener, client, server_end = rows[inodes["listener"]], rows[inodes["client"]], rows[inodes["server_end"]]
    assert (listener.proto, listener.state, listener.local_ip) == ("u_str", "LISTEN", app_sock)
    assert (listener.recv_q, listener.send_q, listener.backlog) == (1, 0, 7)
    # Where ss puts them: the inode as the local port, the peer's inode as the remote one, and the peer's path.
    assert (client.local_ip, client.local_port, client.remote_ip, client.remote_port) == (
        "", inodes["client"], app_sock, inodes["server_end"])
    assert (server_end.local_ip, server_end.remote_port, server_end.recv_q) == (app_sock, inodes["client"], 100)
    assert client.state == server_end.state == "ESTABLISHED"
    dgram, left = rows[inodes["dgram"]], rows[inodes["left"]]
    assert (dgram.proto, dgram.state, dgram.local_ip) == ("u_dgr", "UNCONN", f"@{abstract}")
    assert (left.proto, left.remote_port) == ("u_seq", inodes["right"])
    for name, inode in inodes.items():
        sock = rows[inode]
        assert (sock.pid, sock.program, sock.user) == (process.pid, "ns-unix-owner", "root"), name
        assert sock.pid_start > 0  # the identity a kill checks
    assert rows[inodes["hostile"]].local_ip == f"{directory}/evil\n\x1b[31mred\\xff.sock"


def test_the_filter_language_says_unix(owner: Owner) -> None:
    _, inodes, _directory, abstract = owner
    rows = list(ConnectionCollector(unix=True).collect().sockets.values())

    def shown(text: str) -> set[str]:
        matches = parse_filter(text).matches
        names = {inode: name for name, inode in inodes.items()}
        return {names[sock.inode] for sock in rows if sock.inode in names and matches(sock)}

    # A path matches the socket bound to it and the clients whose peer it is.
    assert shown("path:app.sock") == {"listener", "client", "server_end"}
    assert shown(f"path:@{abstract}") == {"dgram"}
    assert shown("u_seq") == shown("proto:u_seq") == {"left", "right"}
    assert shown("unix listen") == {"listener", "hostile", "dgram"}  # -l: listeners and unconnected datagrams
    [small] = as_sockets([UnixSocket("STREAM", "CONNECTED", 80, peer_inode=443)], 0.0)
    assert not any(parse_filter(text).matches(small) for text in (":80", ":443", "lport:80", ":1-1000"))
    assert parse_filter("unix").matches(small)  # an inode is no port
    assert shown("tcp") == set() and shown("ip:0.0.0.0/0") == set()
    assert len(shown("proto:unix")) == len(inodes)


async def assert_client_sees_its_peer(pilot: Pilot[None], app: NetscopeApp, owner: Owner) -> None:
    """Enter on the connecting end's row: the details name its peer (the server's end, by inode and path) and the
    peer's owner."""
    process, inodes, directory, _ = owner
    app.table.move_cursor(next(i for i, row in enumerate(app.table.rows) if row.inode == inodes["client"]))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
    details = app.screen
    assert isinstance(details, DetailsScreen)
    await wait_for(pilot, lambda: "Peer owner" in str(details.tcp_info.render()))
    text = str(details.tcp_info.render())
    assert f"inode {inodes['server_end']}  {directory}/app.sock" in text
    assert f"{process.pid}/ns-unix-owner" in text
    await pilot.press("escape")


async def test_u_shows_unix_sockets_their_peer_and_its_owner_and_goes_back(owner: Owner) -> None:
    process, inodes, directory, _ = owner
    app = NetscopeApp(interval=0.2, filter_text=f"pid:{process.pid}")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        assert app.table.row_count == 0  # TCP/UDP: the owner has none
        await pilot.press("u")
        await wait_for(pilot, lambda: app.table.row_count == len(inodes))
        connections = app.connections
        assert connections.showing_unix and "UNIX sockets" in connections.status_bar.status.warning
        assert app.session.refresh_count >= 1  # the TCP/UDP session goes on meanwhile (alerts, Top)
        texts = [app.table.row_text(index) for index in range(app.table.row_count)]
        assert all("\x1b" not in text and "\n" not in text for text in texts)
        # The panel above the table: who holds them (a unix socket has no remote host, its "port" is an inode).
        await wait_for(pilot, lambda: [title for title, _ in app.connections.top_panel.sections] == ["Programs"])
        counters = app.query_one(StateCounters)
        # client, server_end, pending (connected, not yet accepted), left, right; listener and hostile
        assert (counters.filtered["LISTEN"], counters.filtered["ESTABLISHED"]) == (2, 5)
        await assert_client_sees_its_peer(pilot, app, owner)
        # A path is the system's text: shown escaped, in full, in the details (the row crops a long one).
        app.table.move_cursor(next(i for i, row in enumerate(app.table.rows) if row.inode == inodes["hostile"]))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        shown = str(app.screen.query_one("#details-socket", Static).render())
        assert f"{directory}/evil\\x0a\\x1b[31mred\\xff.sock {inodes['hostile']}" in shown and "\x1b" not in shown
        await pilot.press("escape")
        app.table.move_cursor(next(i for i, row in enumerate(app.table.rows) if row.inode == inodes["client"]))
        await pilot.press("o")  # on a client's end: its server's path
        assert app.filter.text == f"pid:{process.pid} path:{directory}/app.sock"
        await wait_for(pilot, lambda: app.table.row_count == 3)
        await pilot.press("u")
        await wait_for(pilot, lambda: not connections.showing_unix and app.table.row_count == 0)
        assert connections.session is app.session


async def test_k_on_a_unix_row_kills_its_owner(owner: Owner) -> None:
    process, _inodes, _, _ = owner
    app = NetscopeApp(interval=0.2, filter_text=f"pid:{process.pid} u_seq")
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("u")
        await wait_for(pilot, lambda: app.table.row_count == 2)
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKillScreen))
        await pilot.press("y")
        await asyncio.to_thread(process.wait, 10)
        assert process.returncode == -signal.SIGTERM


# --- in a recording ----------------------------------------------------------------------------------------------


def test_unix_rows_round_trip_through_a_recording(owner: Owner, tmp_path: Path) -> None:
    _, inodes, directory, _ = owner
    collector = ConnectionCollector(unix=True)
    reads = [collector.next_diff().snapshot for _ in range(2)]
    path = tmp_path / "unix.nsrec"
    with RecordingWriter(path, interval=1.0) as writer:
        for at, snapshot in enumerate(reads):
            rows = UnixRows(snapshot.taken_at, list(snapshot.sockets.values()))
            writer.write_views(1_800_000_000.0 + at, ViewData(unix=rows))
        writer.write_views(1_800_000_002.0, ViewData(unix=rows))  # the same again: recorded as "unchanged"
    with RecordingReader(path) as reader:
        for at, snapshot in enumerate([*reads, reads[-1]]):
            got = reader.views_at(1_800_000_000.0 + at).unix
            assert got is not None and got.sockets == list(snapshot.sockets.values())
            by_inode = {sock.inode: sock for sock in got.sockets}
            assert by_inode[inodes["hostile"]].local_ip == f"{directory}/evil\n\x1b[31mred\\xff.sock"
            assert by_inode[inodes["listener"]].backlog == 7
        assert reader.views_at(1_799_999_999.0).unix is None  # before the first: nothing


async def test_unix_sockets_shown_while_recording_replay_with_their_peers(
    owner: Owner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, inodes, _, _ = owner
    monkeypatch.chdir(tmp_path)
    app = NetscopeApp(interval=0.2, filter_text=f"pid:{process.pid}")
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("u")
        await wait_for(pilot, lambda: app.table.row_count == len(inodes))
        await record_a_while(pilot, app)
    [path] = list(tmp_path.glob("netscope-*.nsrec"))
    app = NetscopeApp(ReplaySource(path, playing=False), filter_text=f"pid:{process.pid}")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await pilot.press("u")
        await pilot.press("right_square_bracket")  # to the end, past the first views frame
        await wait_for(pilot, lambda: app.table.row_count == len(inodes))
        await assert_client_sees_its_peer(pilot, app, owner)
        await pilot.press("k")  # a recorded PID may be another process now: nothing is sent from a replay
        assert not isinstance(app.screen, ConfirmKillScreen)
