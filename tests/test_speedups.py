"""The compiled readers and their pure-Python twins give the same answers on the same real /proc.

A child process holds thousands of real sockets (TCP connections on loopback, in the table; unix socket pairs,
not), a file and a pipe; both readers read its fd links, alone, spread over threads, and through the whole owner
scan (the pure one in a child run with NETSCOPE_PURE_PYTHON=1, as a user without the compiled module gets it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from netscope.collectors import fd_links, speedups
from netscope.collectors.processes import OwnerScanner

HOLDER = r"""
import os, resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
clients = [socket.create_connection(listener.getsockname()) for _ in range(20)]
accepted = [listener.accept()[0] for _ in clients]
pairs = [socket.socketpair() for _ in range(2500)]  # unix sockets: never in the TCP/UDP table
kept = [open(sys.executable, "rb"), *os.pipe()]
tcp = [listener, *clients, *accepted]
print(" ".join(str(os.fstat(s.fileno()).st_ino) for s in tcp), flush=True)
sys.stdin.read()
"""


@dataclass
class Holder:
    pid: int
    tcp_inodes: set[int]


@pytest.fixture(scope="module")
def holder() -> Iterator[Holder]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        yield Holder(process.pid, {int(inode) for inode in process.stdout.readline().split()})
    finally:
        process.stdin.close()
        process.wait(timeout=10)
        process.stdout.close()


def compiled_module() -> object:
    if importlib.util.find_spec("netscope.collectors._speedups") is None:
        pytest.skip("the compiled module is not built here (no C compiler at install time)")
    from netscope.collectors import _speedups

    return _speedups


def read_both(pid: int, table: set[int] | None) -> tuple[speedups.LinkFinds, speedups.LinkFinds, list[str]]:
    compiled = compiled_module()
    dir_fd = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(dir_fd)
        return (
            compiled.read_fd_links(dir_fd, names, table),  # type: ignore[attr-defined]
            speedups.read_fd_links_python(dir_fd, names, table),
            names,
        )
    finally:
        os.close(dir_fd)


def test_both_readers_find_the_same_links(holder: Holder) -> None:
    c_finds, python_finds, names = read_both(holder.pid, holder.tcp_inodes)
    assert c_finds == python_finds
    in_table, other, files, denied = python_finds
    assert set(in_table.values()) == holder.tcp_inodes  # 41 TCP sockets, each at its own fd
    assert len(other) == 5000  # both ends of 2,500 unix pairs
    assert len(files) >= 3  # the file, the pipe's two ends (stdin, stdout, stderr are pipes or files too)
    assert denied == []
    assert len(in_table) + len(other) + len(files) == len(names)


def test_both_readers_without_a_table_call_every_socket_other(holder: Holder) -> None:
    c_finds, python_finds, _names = read_both(holder.pid, None)
    assert c_finds == python_finds
    assert python_finds[0] == {}
    assert holder.tcp_inodes <= set(python_finds[1].values())


def test_names_that_are_gone_or_not_fds_are_in_no_list(holder: Holder) -> None:
    compiled = compiled_module()
    dir_fd = os.open(f"/proc/{holder.pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = ["999999", "not-a-number", "0"]
        c_finds = compiled.read_fd_links(dir_fd, names, set())  # type: ignore[attr-defined]
        assert c_finds == speedups.read_fd_links_python(dir_fd, names, set())
        assert sum(len(found) for found in c_finds) == 1  # fd 0 alone
    finally:
        os.close(dir_fd)


DENIED = r"""
import json, os, sys
from netscope.collectors import _speedups, speedups
dir_fd = os.open(f"/proc/{sys.argv[1]}/fd", os.O_RDONLY | os.O_DIRECTORY)
names = os.listdir(dir_fd)[:50]
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # the directory stays open; each readlink is checked anew
found = [_speedups.read_fd_links(dir_fd, names, set()), speedups.read_fd_links_python(dir_fd, names, set())]
print(json.dumps(found))
"""


@pytest.mark.root
def test_links_we_may_no_longer_read_are_denied_alike(holder: Holder) -> None:
    compiled_module()
    if os.geteuid() != 0:
        pytest.skip("needs root to open another process's fds and then drop to user 65534")
    out = subprocess.run(
        [sys.executable, "-c", DENIED, str(holder.pid)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    c_finds, python_finds = json.loads(out)
    assert c_finds == python_finds
    assert len(c_finds[3]) == 50 and c_finds[:3] == [{}, {}, []]


def test_a_read_spread_over_threads_finds_what_one_call_finds(holder: Holder) -> None:
    compiled_module()
    if fd_links.threads() < 2:
        pytest.skip("one CPU here: a big read is not spread")
    dir_fd = os.open(f"/proc/{holder.pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(dir_fd)
        assert len(names) >= fd_links.SPREAD_FROM  # so that read_many spreads it
        spread = fd_links.read_many([(dir_fd, names), (dir_fd, names[:3])], holder.tcp_inodes)
        alone = speedups.read_fd_links_python(dir_fd, names, holder.tcp_inodes)
    finally:
        os.close(dir_fd)
    assert spread[0][:2] == alone[:2]
    assert sorted(spread[0][2]) == sorted(alone[2]) and spread[0][3] == alone[3] == []
    assert len(spread[1][0]) + len(spread[1][1]) + len(spread[1][2]) == 3


SCAN = r"""
import json, sys
from netscope.collectors import speedups
from netscope.collectors.processes import OwnerScanner
table = set(json.loads(sys.argv[1]))
scan = OwnerScanner().scan(table)
owners = {str(inode): pid for inode, pid in scan.inode_to_pid.items() if inode in table}
print(json.dumps([speedups.describe(), owners]))
"""


def test_the_owner_scan_is_the_same_with_either_reader(holder: Holder) -> None:
    table = holder.tcp_inodes
    here = {inode: pid for inode, pid in OwnerScanner().scan(table).inode_to_pid.items() if inode in table}
    out = subprocess.run(
        [sys.executable, "-c", SCAN, json.dumps(sorted(table))], capture_output=True, text=True, check=True,
        env={**os.environ, "NETSCOPE_PURE_PYTHON": "1"}, timeout=60,
    ).stdout
    how, pure = json.loads(out)
    assert how == "readers: pure Python, NETSCOPE_PURE_PYTHON is set"
    assert {int(inode): pid for inode, pid in pure.items()} == here == dict.fromkeys(table, holder.pid)


def test_version_says_which_readers_run() -> None:
    def version(**env: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "netscope", "--version"], capture_output=True, text=True, check=True,
            env={**os.environ, **env}, timeout=60,
        ).stdout

    built = importlib.util.find_spec("netscope.collectors._speedups") is not None
    assert ("readers: compiled C" in version()) == built
    assert "readers: pure Python, NETSCOPE_PURE_PYTHON is set" in version(NETSCOPE_PURE_PYTHON="1")
