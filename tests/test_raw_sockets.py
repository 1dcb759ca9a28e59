"""Raw sockets (`netscope -w`): real raw ICMP, ICMPv6 and a connected raw OSPF socket opened by a child process
(needs root), checked against the kernel's /proc/net/raw{,6} and the child's own inodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netscope.collectors.raw_sockets import protocol_names, read_proc_raw, read_raw_sockets

pytestmark = pytest.mark.root
NETSCOPE = [sys.executable, "-m", "netscope"]

OWNER = r"""
import ctypes, json, os, socket, sys
ctypes.CDLL(None).prctl(15, b"ns-raw-owner", 0, 0, 0)
def ino(s): return os.fstat(s.fileno()).st_ino
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
ospf = socket.socket(socket.AF_INET, socket.SOCK_RAW, 89)
ospf.connect(("127.0.96.1", 0))
print(json.dumps({"icmp": ino(icmp), "icmp6": ino(icmp6), "ospf": ino(ospf)}), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def owner() -> Iterator[tuple[subprocess.Popen[str], dict[str, int]]]:
    if os.geteuid() != 0:
        pytest.skip("opening raw sockets needs root (CAP_NET_RAW)")
    process = subprocess.Popen([sys.executable, "-c", OWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    inodes = json.loads(process.stdout.readline())
    yield process, inodes
    process.stdin.close()
    process.wait(timeout=10)


def test_w_lists_raw_sockets_with_protocol_and_owner(owner: tuple[subprocess.Popen[str], dict[str, int]]) -> None:
    process, inodes = owner
    result = subprocess.run([*NETSCOPE, "-w", "--json", "--filter", f"pid:{process.pid}"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = {record["inode"]: record for record in json.loads(result.stdout)}
    assert set(found) == set(inodes.values())
    icmp, icmp6, ospf = (found[inodes[name]] for name in ("icmp", "icmp6", "ospf"))
    assert (icmp["proto"], icmp["local_port"], icmp["state"]) == ("raw", 1, "UNCONN")
    assert icmp["protocol_name"] == "icmp"
    assert (icmp6["proto"], icmp6["local_port"], icmp6["protocol_name"]) == ("raw6", 58, "ipv6-icmp")
    assert (ospf["state"], ospf["remote_address"], ospf["protocol_name"]) == ("ESTABLISHED", "127.0.96.1", "ospf")
    for record in found.values():
        assert (record["pid"], record["program"], record["user"]) == (process.pid, "ns-raw-owner", "root")


def test_the_table_names_the_protocol_and_l_keeps_the_unconnected(
    owner: tuple[subprocess.Popen[str], dict[str, int]],
) -> None:
    process, _ = owner
    text = subprocess.run([*NETSCOPE, "-tw", "--filter", f"pid:{process.pid}"], capture_output=True, text=True,
                          timeout=60).stdout  # fmt: skip
    rows = {line.split()[3]: line.split() for line in text.splitlines()[2:]}
    assert rows["0.0.0.0:1"][:1] == ["raw"] and rows["0.0.0.0:1"][5:] == ["icmp", f"{process.pid}/ns-raw-owner"]
    assert rows["[::]:58"][5] == "ipv6-icmp"
    listening = subprocess.run([*NETSCOPE, "-wl", "--json", "--filter", f"pid:{process.pid}"],
                               capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert {r["state"] for r in json.loads(listening)} == {"UNCONN"}  # as -l counts unconnected UDP
    v6 = subprocess.run([*NETSCOPE, "-w6", "--count", "--filter", f"pid:{process.pid}"], capture_output=True,
                        text=True, timeout=60).stdout  # fmt: skip
    assert v6 == "1\n"


def test_both_readers_agree_with_the_kernel(owner: tuple[subprocess.Popen[str], dict[str, int]]) -> None:
    _, inodes = owner
    sockets, source = read_raw_sockets()
    proc = {sock.inode: sock for sock in read_proc_raw()}
    mine = {sock.inode: sock for sock in sockets}
    for inode in inodes.values():
        assert mine[inode] == proc[inode]
    # Where the kernel has no raw_diag (this project's VM: netlink says ENOENT), /proc/net/raw is the reader.
    assert source in ("netlink", "/proc/net/raw")


def test_protocol_names_survive_a_hostile_protocols_file(tmp_path: Path) -> None:
    hostile = tmp_path / "protocols"
    junk = b"\xff\xfe junk\nx\nlong" + b"a" * 5000 + b" 200\n# comment 7\n"
    hostile.write_bytes(b"icmp 1 ICMP\n" + junk + b"ospf 89 OSPF\n")
    names = protocol_names(str(hostile))
    assert names[1] == "icmp" and names[89] == "ospf" and len(names[200]) == 32
    assert protocol_names(str(tmp_path / "missing")) == {}
