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
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netscope.collectors import connections, diff, fd_links, speedups
from netscope.collectors.model import Socket
from netscope.collectors.processes import OwnerScanner
from netscope.collectors.sockdiag import SockDiagReader

HOLDER = r"""
import os, resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
clients = [socket.create_connection(listener.getsockname()) for _ in range(20)]
accepted = [listener.accept()[0] for _ in clients]
waiting = socket.create_connection(listener.getsockname())  # not accepted: the listener's Recv-Q is 1
listener6 = socket.create_server(("::1", 0), family=socket.AF_INET6, backlog=7)
client6 = socket.create_connection(listener6.getsockname()[:2])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
talker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
talker.connect(udp.getsockname())
talker.send(b"unread")
pairs = [socket.socketpair() for _ in range(2500)]  # unix sockets: never in the TCP/UDP table
kept = [open(sys.executable, "rb"), *os.pipe()]
tcp = [listener, *clients, *accepted, waiting, listener6, client6]
print(" ".join(sorted({f"{s.getsockname()[0]},{s.getsockname()[1]}" for s in [*tcp, udp, talker]})), flush=True)
print(" ".join(str(os.fstat(s.fileno()).st_ino) for s in tcp), flush=True)
sys.stdin.read()
"""


@dataclass
class Holder:
    pid: int
    endpoints: set[str]  # "address,port" of each of its sockets' local ends
    tcp_inodes: set[int]


@pytest.fixture(scope="module")
def holder() -> Iterator[Holder]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        endpoints = set(process.stdout.readline().split())
        yield Holder(process.pid, endpoints, {int(inode) for inode in process.stdout.readline().split()})
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
    assert set(in_table.values()) == holder.tcp_inodes  # 44 TCP sockets, each at its own fd
    assert len(other) == 5002  # both ends of 2,500 unix pairs, and the two UDP sockets
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


@pytest.fixture
def spread_read(holder: Holder) -> Iterator[tuple[int, list[str]]]:
    """The holder's open fd directory and its fd names: enough links for read_many to spread them over threads."""
    compiled_module()
    if fd_links.threads() < 2:
        pytest.skip("one CPU here: a big read is not spread")
    dir_fd = os.open(f"/proc/{holder.pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(dir_fd)
        assert len(names) >= fd_links.SPREAD_FROM  # so that read_many spreads it
        yield dir_fd, names
    finally:
        os.close(dir_fd)


def test_a_read_spread_over_threads_finds_what_one_call_finds(
    holder: Holder, spread_read: tuple[int, list[str]],
) -> None:
    dir_fd, names = spread_read
    spread = fd_links.read_many([(dir_fd, names), (dir_fd, names[:3])], holder.tcp_inodes)
    alone = speedups.read_fd_links_python(dir_fd, names, holder.tcp_inodes)
    assert spread[0][:2] == alone[:2]
    assert sorted(spread[0][2]) == sorted(alone[2]) and spread[0][3] == alone[3] == []
    assert len(spread[1][0]) + len(spread[1][1]) + len(spread[1][2]) == 3


def test_an_error_in_a_spread_read_is_raised_to_the_caller(spread_read: tuple[int, list[str]]) -> None:
    dir_fd, names = spread_read
    with pytest.raises(TypeError, match="table must be a set"):
        fd_links.read_many([(dir_fd, names)], [1, 2])  # type: ignore[arg-type]


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


DUMP = r"""
import json, sys
from netscope.collectors import sockdiag, speedups
from netscope.collectors.model import Socket
from netscope.collectors.sockdiag import SockDiagReader
endpoints = set(json.loads(sys.argv[1]))
if sys.argv[2:] == ["subclass"]:  # a type whose slots the compiled parser cannot fill in place: it calls it
    class Subclass(Socket):
        __slots__ = ()
    sockdiag.Socket = Subclass
with SockDiagReader() as reader:
    sockets = reader.read(first_seen=1.0, user_name=lambda uid: f"user{uid}")
rows = [{**s.as_dict(), "key": list(s.key)} for s in sockets
        if f"{s.local_ip},{s.local_port}" in endpoints]
print(json.dumps([speedups.describe(), rows]))
"""


def dump_rows(endpoints: set[str], *args: str, **env: str) -> tuple[str, list[dict[str, object]]]:
    out = subprocess.run(
        [sys.executable, "-c", DUMP, json.dumps(sorted(endpoints)), *args], capture_output=True, text=True,
        check=True, env={**os.environ, **env}, timeout=60,
    ).stdout
    how, rows = json.loads(out)
    return how, sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def test_the_compiled_parse_fills_a_socket_in_place_and_calls_any_other_type() -> None:
    """Filling the slots is half the compiled parse's speed: a slot renamed, added or dropped (or a linter sorting
    __slots__ while C read them by position) would quietly fall back to calling the type."""
    compiled = compiled_module()

    class Subclass(Socket):
        __slots__ = ()

    assert compiled.fills_in_place(Socket)  # type: ignore[attr-defined]
    assert not compiled.fills_in_place(Subclass)  # type: ignore[attr-defined]
    assert not compiled.fills_in_place(tuple)  # type: ignore[attr-defined]


FIELDS = r"""
import json
from netscope.collectors import speedups
from netscope.collectors.model import Socket
from netscope.collectors.session.folding import FoldedSockets
sock = Socket("tcp6", "::1", 443, "::2", 50000, "ESTABLISHED", 1, 2, 0, uid=7, user="u", pid=42, program="nginx")
other = sock.with_shared(sock.shared)  # shares the shared tuple
sock.pid, sock.program = 43, "worker"
seen = {"how": speedups.describe(), "fields": sock.as_dict(), "other": other.as_dict(),
        "shared_apart": sock.shared is not other.shared, "key": list(sock.key)}
for name in ("proto", "local_ip", "local_port", "remote_ip", "remote_port"):
    try:
        setattr(sock, name, "x")
    except AttributeError:
        seen[name] = "read-only"
fold = FoldedSockets(("tcp", "TIME_WAIT", "127.0.0.1", 80, "127.0.0.2", 0), 0, 0, 5, 1.0)
seen["fold"] = [fold.proto, fold.local_ip, fold.local_port, fold.remote_ip, fold.remote_port, fold.pid]
buckets = [("tcp", "ESTABLISHED"), ("tcp6", "NEW_SYN_RECV"), ("udp", "UNCONN"), ("raw6", "UNCONN"),
           ("u_str", "LISTEN")]
seen["counters"] = [Socket(proto, "a", 1, "b", 2, state, 0, 0, 0).counter_name for proto, state in buckets]
print(json.dumps(seen))
"""


def test_a_sockets_fields_read_from_its_key_and_shared_tuple_alike_compiled_or_not() -> None:
    """Each endpoint field is kept once, in the key (read-only: a new socket is made instead), the owner fields in
    the shared tuple, set as a new tuple so that sockets sharing the old one keep their owner, and the counter
    bucket is worked out from the protocol and state."""
    compiled_module()

    def fields(**env: str) -> dict[str, object]:
        out = subprocess.run([sys.executable, "-c", FIELDS], capture_output=True, text=True, check=True,
                             env={**os.environ, **env}, timeout=60).stdout
        seen: dict[str, object] = json.loads(out)
        return seen

    compiled, pure = fields(), fields(NETSCOPE_PURE_PYTHON="1")
    assert compiled.pop("how") == "readers: compiled C" and pure.pop("how") != "readers: compiled C"
    assert compiled == pure
    assert compiled["fields"]["proto"] == "tcp6" and compiled["fields"]["remote_port"] == 50000  # type: ignore[index]
    assert compiled["fields"]["pid"] == 43 and compiled["fields"]["program"] == "worker"  # type: ignore[index]
    assert compiled["other"]["pid"] == 42 and compiled["shared_apart"] is True  # type: ignore[index]
    assert compiled["key"] == ["tcp6", "::1", 443, "::2", 50000, 0]
    assert all(compiled[name] == "read-only" for name in ("proto", "local_ip", "local_port", "remote_ip",
                                                        "remote_port"))
    assert compiled["fold"] == ["tcp", "127.0.0.1", 80, "127.0.0.2", 0, None]
    assert compiled["counters"] == ["ESTABLISHED", "SYN_RECV", "UDP", "UDP", "LISTEN"]  # worked out, not kept
    if speedups.TupleField is not None:  # a read on an object of another type is refused, not a stray read
        with pytest.raises(TypeError):
            Socket.__dict__["local_ip"].__get__(object(), Socket)


def test_both_dump_parsers_make_the_same_sockets(holder: Holder) -> None:
    compiled_module()
    how, compiled_rows = dump_rows(holder.endpoints)
    assert how == "readers: compiled C"
    how, pure_rows = dump_rows(holder.endpoints, NETSCOPE_PURE_PYTHON="1")
    assert how == "readers: pure Python, NETSCOPE_PURE_PYTHON is set"
    assert compiled_rows == pure_rows
    assert dump_rows(holder.endpoints, "subclass") == ("readers: compiled C", compiled_rows)
    by_state: dict[object, list[dict[str, object]]] = {}
    for row in compiled_rows:
        by_state.setdefault(row["state"], []).append(row)
    listeners = {row["proto"]: row for row in by_state["LISTEN"]}
    assert listeners["tcp"]["recv_q"] == 1 and listeners["tcp"]["backlog"] == 64  # Send-Q 0 as netstat says
    assert listeners["tcp6"]["backlog"] == 7 and listeners["tcp"]["send_q"] == 0
    assert len(by_state["ESTABLISHED"]) == 2 * 22 + 1  # 22 TCP pairs, the connected UDP talker
    # The user is named for sockets that have an inode (a connection not yet accepted has none)
    assert {row["user"] for row in compiled_rows if row["inode"]} == {f"user{os.geteuid()}"}
    assert {row["user"] for row in compiled_rows if not row["inode"]} == {""}
    assert any(row["proto"] == "udp" and row["state"] == "UNCONN" and row["recv_q"] for row in compiled_rows)


def test_the_pure_python_readers_pass_the_readers_own_tests() -> None:
    """The sock_diag, owner-scan and collector tests again, as a machine without the compiled module runs them."""
    here = os.path.dirname(__file__)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         *(os.path.join(here, name) for name in ("test_sockdiag.py", "test_processes.py", "test_connections.py"))],
        capture_output=True, text=True, env={**os.environ, "NETSCOPE_PURE_PYTHON": "1"}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]


def test_without_a_c_compiler_netscope_installs_and_runs_pure_python(tmp_path: Path) -> None:
    """What pip does on a server with no compiler: builds the wheel without the compiled module (CC fails),
    and that package runs on the twins and says so."""
    root = Path(__file__).resolve().parent.parent
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(root)],
        capture_output=True, text=True, env={**os.environ, "CC": "/bin/false"}, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("netscope-*.whl")
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        assert not [name for name in archive.namelist() if name.endswith(".so")]
        archive.extractall(unpacked)
    ran = subprocess.run(
        [sys.executable, "-m", "netscope", "--version"], capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(unpacked)}, cwd=tmp_path,
    ).stdout
    assert "readers: pure Python, not built (there was no C compiler when netscope was installed)" in " ".join(
        ran.split()
    )


def test_both_owner_attachments_and_diffs_agree_on_a_real_table(holder: Holder) -> None:
    """The per-refresh passes over every socket: owners given (in place, or copied for a socket the last snapshot
    shares), and the diff's first pass, compiled and in Python, over the machine's real sockets and owners."""
    compiled = compiled_module()
    with SockDiagReader() as reader:
        first = reader.read(reuse=True)
        second = reader.read(reuse=True)  # the holder's idle sockets are the same objects again
        fresh = reader.fresh_ids
    scan = OwnerScanner().scan({sock.inode for sock in second})
    owner_of = {pid: (pid, f"prog{pid}", "", float(pid)) for pid in set(scan.inode_to_pid.values())}
    results = []
    for attach in (compiled.attach_owners, None):  # type: ignore[attr-defined]
        sockets = [sock.replaced() if id(sock) in fresh else sock for sock in second]
        before = list(sockets)
        if attach is None:
            by_key = connections._attach_owners_python(sockets, scan.inode_to_pid, owner_of, fresh)
        else:
            by_key = attach(sockets, scan.inode_to_pid, owner_of, connections.NO_OWNER, fresh,
                            connections._with_owner)  # fmt: skip
        assert by_key is not None
        copied = [index for index, sock in enumerate(sockets) if sock is not before[index]]
        owners = [(s.key, s.pid, s.program, s.container, s.pid_start) for s in sockets]
        results.append((owners, copied, list(by_key)))
        assert all(by_key[sock.key] is sock for sock in sockets)
    assert results[0] == results[1]
    owned = {key: pid for key, pid, _program, _container, _start in results[0][0] if pid == holder.pid}
    assert len(owned) >= len(holder.tcp_inodes)
    assert results[0][1], "some reused sockets got an owner: copied, not changed under the last snapshot"
    assert all(sock.pid is None for sock in first)  # the last read's sockets were never changed

    class Subclass(Socket):  # slots the compiled pass does not read and write in place: the generic way
        __slots__ = ()

    copies = [Subclass(**s.as_dict()) for s in second]
    by_key = compiled.attach_owners(copies, scan.inode_to_pid, owner_of, connections.NO_OWNER, None,  # type: ignore[attr-defined]
                                    connections._with_owner)  # fmt: skip
    assert by_key is not None and all(type(sock) is Subclass for sock in by_key.values())
    assert [(s.key, s.pid, s.program, s.container, s.pid_start) for s in copies] == results[0][0]

    old = {sock.key: sock for sock in first}
    new = {sock.key: sock for sock in second[5:]}  # five gone; and some added
    new.update({("tcp", "192.0.2.1", 1, "192.0.2.2", port, 0): second[0] for port in range(3)})
    new[second[6].key] = second[6].replaced()  # the same socket, another object
    assert compiled.diff_keys(old, new) == diff.diff_keys_python(old, new)  # type: ignore[attr-defined]
    added, pairs, removed = diff.diff_keys_python(old, new)
    assert len(added) == 3 and len(removed) == len({sock.key for sock in second[:5]} - new.keys())
    assert new[second[6].key] in pairs


def test_both_sort_keys_are_the_same_bytes_for_every_real_socket(holder: Holder) -> None:
    """The connection table's keys in its bytes columns (by program, by local and by remote address), compiled and
    in Python, for the machine's real TCP, UDP and unix sockets with their real owners (IPv4 and IPv6, listeners,
    connections, no owner), for folds, and for owners named with bytes that are no UTF-8 (a process's name is
    whatever it says)."""
    compiled_module()
    from netscope.collectors.connections import ConnectionCollector
    from netscope.collectors.row_order import BYTES_COLUMNS, bytes_sort_key, compiled_bytes_sort_key
    from netscope.collectors.session.folding import FoldedSockets
    from netscope.collectors.unix_sockets import as_sockets, read_unix_sockets

    collector = ConnectionCollector(interval=1.0)
    try:
        sockets = list(collector.next_diff().snapshot.sockets.values())
    finally:
        collector.close()
    assert {sock.proto for sock in sockets} >= {"tcp", "tcp6", "udp"}
    assert any(sock.pid == holder.pid for sock in sockets) and any(sock.pid is None for sock in sockets)
    sockets += as_sockets(read_unix_sockets(owners=True).sockets, 0.0)
    owned = next(sock for sock in sockets if sock.pid is not None)
    sockets += [
        Socket("tcp", "10.0.0.1", 80, "10.0.0.2", 65535, "ESTABLISHED", 0, 0, 7, pid=42, program=name,
               first_seen=1.7e9 + 0.25)
        for name in ("\udcff\udcfeevil", "Ünï", "a b)(c", "x" * 15, "")
    ]
    sockets.append(FoldedSockets(("tcp", "TIME_WAIT", "127.0.0.1", 80, "127.0.0.2", 0), 0, 0, 5, 1.7e9))
    sockets.append(FoldedSockets(("tcp6", "FIN_WAIT2", "::", 0, "2001:db8::1", 443), 0, 0, 3, 1.7e9))
    assert owned.program
    for column in sorted(BYTES_COLUMNS):
        made = compiled_bytes_sort_key(column)
        assert made is not None
        assert [made(sock) for sock in sockets] == [bytes_sort_key(column, sock) for sock in sockets], column
    assert compiled_bytes_sort_key("recv_q") is None
    with pytest.raises(AttributeError):  # as bytes_sort_key: no socket, no key
        made(object())  # type: ignore[arg-type]
