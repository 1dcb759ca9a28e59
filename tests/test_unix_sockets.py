"""Unix sockets (`netscope -x`): real named, abstract and socketpair sockets owned by a child process, read with
netlink UNIX_DIAG and checked against the kernel's own inodes (fstat), /proc/net/unix, and ss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netscope.collectors.unix_sockets import read_proc_unix, read_unix_sockets

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
    (["-x", "--filter", "proc:x"], "the filter language is for TCP and UDP"),
    (["-tx", "--json"], "hold one table"),
    (["-x", "--watch"], "does not combine with --watch"),
])  # fmt: skip
def test_x_refuses_what_it_cannot_do_with_why(args: list[str], says: str) -> None:
    result = subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and says in result.stderr
