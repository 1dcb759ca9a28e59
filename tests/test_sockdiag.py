"""The netlink sock_diag reader against the /proc/net reader, on real loopback sockets in every state we can make.

Nothing is mocked: the test makes the sockets, then reads the kernel's tables both ways. Other processes on the
machine may open and close sockets meanwhile, so whole-table comparisons are sandwiched (/proc, netlink, /proc)
and retried a bounded number of times; the sockets this test made must match exactly every time.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import random
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netscope.collectors import netlink
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import Socket
from netscope.collectors.processes import OwnerScanner
from netscope.collectors.procnet import read_all_sockets
from netscope.collectors.sockdiag import (
    INET_DIAG_MSG,
    INET_DIAG_MSG_OFFSET,
    SOCK_DIAG_BY_FAMILY,
    SockDiagReader,
    build_request,
    parse_inet_diag_msg,
    read_all_sockets_netlink,
)

NOBODY = 65534
RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER 0: close with RST, leaving no TIME_WAIT behind
TCP_DEFER_ACCEPT = 9

Row = tuple[str, str, int, str, int, str, int, int, int, int]


def row(sock: Socket) -> Row:
    """Every field a reader fills (owners are the collector's business)."""
    return (
        sock.proto, sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port, sock.state, sock.recv_q,
        sock.send_q, sock.inode, sock.uid,
    )


@dataclass
class Load:
    """The sockets one test made, and what the tables must say about some of them."""

    # every (protocol, port) of ours: a row with one is ours. With the protocol: TCP and UDP number their ports
    # apart, and another process's UDP socket on one of our TCP ports is not ours.
    ports: set[tuple[str, int]] = field(default_factory=set)
    expected: dict[str, Row] = field(default_factory=dict)  # name -> exact row
    to_close: list[socket.socket] = field(default_factory=list)

    def keep(self, *socks: socket.socket) -> None:
        for sock in socks:
            self.to_close.append(sock)
            with contextlib.suppress(OSError):
                self.ports.add(("udp" if sock.type == socket.SOCK_DGRAM else "tcp", sock.getsockname()[1]))

    def ours(self, rows: set[Row]) -> set[Row]:
        ports = self.ports
        return {r for r in rows if (r[0].rstrip("6"), r[2]) in ports or (r[0].rstrip("6"), r[4]) in ports}


def inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def pair(
    listener: socket.socket, family: int = socket.AF_INET, host: str = "127.0.0.1", reset: bool = True
) -> tuple[socket.socket, socket.socket]:
    """A connected (client, server) pair; with `reset`, closing either end sends RST rather than FIN."""
    client = socket.socket(family, socket.SOCK_STREAM)
    client.connect((host, listener.getsockname()[1]))
    server, _ = listener.accept()
    if reset:
        for sock in (client, server):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
    return client, server


def wait_for_state(port: int, state: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(s.state == state and port in (s.local_port, s.remote_port) for s in read_all_sockets()[0]):
        assert time.monotonic() < deadline, f"no {state} socket on port {port}"
        time.sleep(0.01)


def wait_until_still(port: int, timeout: float = 5.0) -> None:
    """Wait until the queues of the sockets on `port` stay the same for a while."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = sorted(row(s) for s in read_all_sockets()[0] if port in (s.local_port, s.remote_port))
        if now == last:
            return
        last = now
        time.sleep(0.3)
    raise AssertionError(f"the queues on port {port} never settled")


def socket_as_user(uid: int, family: int = socket.AF_INET) -> socket.socket:
    """A socket the kernel records as `uid`'s: made while this thread's filesystem uid is `uid` (root only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setfsuid(uid)
    try:
        if libc.setfsuid(uid) != uid:  # setfsuid returns the previous value: check that it took
            pytest.skip("cannot change the filesystem uid here")
        return socket.socket(family, socket.SOCK_STREAM)
    finally:
        libc.setfsuid(0)


@pytest.fixture
def loopback_load() -> Iterator[Load]:
    """A few hundred TCP connections over IPv4 and IPv6, and one socket in each state worth checking."""
    if not socket.has_ipv6:
        pytest.skip("needs IPv6 on loopback")
    load = Load()
    try:
        lst4 = socket.create_server(("127.0.0.1", 0), backlog=512)
        lst6 = socket.create_server(("::1", 0), family=socket.AF_INET6, backlog=512)
        load.keep(lst4, lst6)
        for _ in range(200):
            load.keep(*pair(lst4))
        for _ in range(100):
            load.keep(*pair(lst6, socket.AF_INET6, "::1"))
        port4, port6 = lst4.getsockname()[1], lst6.getsockname()[1]
        load.expected["listen4"] = ("tcp", "127.0.0.1", port4, "0.0.0.0", 0, "LISTEN", 0, 0, inode(lst4), 0)
        load.expected["listen6"] = ("tcp6", "::1", port6, "::", 0, "LISTEN", 0, 0, inode(lst6), 0)

        # A dual-stack listener taking an IPv4 connection: the accepted socket is AF_INET6, v4-mapped, "tcp6".
        dual = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
        load.keep(dual)
        client, server = pair(dual)
        load.keep(client, server)
        cport, dport = client.getsockname()[1], dual.getsockname()[1]
        load.expected["v4-mapped"] = (
            "tcp6", "::ffff:127.0.0.1", dport, "::ffff:127.0.0.1", cport, "ESTABLISHED", 0, 0, inode(server), 0
        )

        # A listener with three connections waiting in its accept queue: Recv-Q 3, Send-Q 0 from both readers.
        queued = socket.create_server(("127.0.0.1", 0), backlog=8)
        load.keep(queued)
        for _ in range(3):
            load.keep(socket.create_connection(queued.getsockname()))
        qport = queued.getsockname()[1]
        load.expected["backlog"] = ("tcp", "127.0.0.1", qport, "0.0.0.0", 0, "LISTEN", 3, 0, inode(queued), 0)

        # Unread data: Recv-Q on the receiving end.
        client, server = pair(lst4)
        load.keep(client, server)
        client.sendall(b"x" * 1000)
        load.expected["recv_q"] = (
            "tcp", "127.0.0.1", port4, "127.0.0.1", client.getsockname()[1], "ESTABLISHED", 1000, 0,
            inode(server), 0,
        )

        # Unsent data: a peer that does not read, small buffers, and non-blocking sends until they stop (bounded).
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.bind(("127.0.0.1", 0))
        slow.listen()
        load.keep(slow)
        sender, receiver = pair(slow)
        load.keep(sender, receiver)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sender.setblocking(False)
        sent = 0
        with contextlib.suppress(BlockingIOError):
            while sent < 4 << 20:
                sent += sender.send(b"y" * 4096)
        assert sent < 4 << 20, "the sender never blocked"
        wait_until_still(sender.getsockname()[1])  # the window may still open as the receiver's queue settles

        # TIME_WAIT (the side that closes first; inode 0 and uid 0 in both) and CLOSE_WAIT (its peer not closing).
        client, server = pair(lst4, reset=False)
        tw_port = client.getsockname()[1]
        load.ports.add(("tcp", tw_port))
        client.close()
        wait_for_state(tw_port, "CLOSE_WAIT")
        server.close()
        wait_for_state(tw_port, "TIME_WAIT")
        load.expected["time_wait"] = ("tcp", "127.0.0.1", tw_port, "127.0.0.1", port4, "TIME_WAIT", 0, 0, 0, 0)
        client, server = pair(lst4, reset=False)
        client_port = client.getsockname()[1]
        load.keep(client, server)
        client.close()  # orphaned FIN_WAIT2 (inode 0) here, CLOSE_WAIT on the server end
        wait_for_state(client_port, "CLOSE_WAIT")
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        load.expected["close_wait"] = (  # Recv-Q 1: the peer's FIN takes a sequence number nobody reads
            "tcp", "127.0.0.1", port4, "127.0.0.1", client_port, "CLOSE_WAIT", 1, 0, inode(server), 0
        )

        # UDP: bound (UNCONN) on both families, one connected to it (ESTABLISHED), one datagram unread (Recv-Q).
        udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp4.bind(("127.0.0.1", 0))
        udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        udp6.bind(("::1", 0))
        talker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        talker.connect(udp4.getsockname())
        load.keep(udp4, udp6, talker)
        load.expected["udp6"] = ("udp6", "::1", udp6.getsockname()[1], "::", 0, "UNCONN", 0, 0, inode(udp6), 0)
        load.expected["udp_connected"] = (
            "udp", "127.0.0.1", talker.getsockname()[1], "127.0.0.1", udp4.getsockname()[1], "ESTABLISHED", 0, 0,
            inode(talker), 0,
        )
        talker.send(b"z" * 100)  # queued on udp4: its Recv-Q is the kernel's memory for it, not 100

        # Another user's listener, and a half-open connection to it (TCP_DEFER_ACCEPT keeps the server side a
        # request socket: kernel state NEW_SYN_RECV, shown as SYN_RECV, uid of the listener in /proc).
        if os.geteuid() == 0:
            theirs = socket_as_user(NOBODY)
            theirs.bind(("127.0.0.1", 0))
            theirs.setsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT, 30)
            theirs.listen()
            load.keep(theirs)
            tport = theirs.getsockname()[1]
            load.expected["nobody"] = (
                "tcp", "127.0.0.1", tport, "0.0.0.0", 0, "LISTEN", 0, 0, inode(theirs), NOBODY
            )
            half = socket.create_connection(theirs.getsockname())
            load.keep(half)
            hport = half.getsockname()[1]
            wait_for_state(hport, "SYN_RECV")
            load.expected["syn_recv"] = (
                "tcp", "127.0.0.1", tport, "127.0.0.1", hport, "SYN_RECV", 0, 0, 0, NOBODY
            )
        yield load
    finally:
        for sock in load.to_close:
            sock.close()


def compare_readers(
    read_proc: Callable[[], set[Row]], read_netlink: Callable[[], set[Row]], load: Load
) -> tuple[set[Row], set[Row]]:
    """Read /proc, netlink, /proc until netlink agrees with what /proc showed both times; returns that (proc,
    netlink) pair. Bounded: a reader that keeps disagreeing fails. Sets, not counts: a read that races with
    other processes' sockets in the same hash bucket may repeat or skip a line, in /proc and in netlink alike."""
    problems = ""
    for _attempt in range(20):
        before = read_proc()
        through_netlink = read_netlink()
        after = read_proc()
        stable = before & after  # rows /proc showed both times, unchanged
        missing = stable - through_netlink
        unexplained = through_netlink - before - after
        ours = load.ours(through_netlink)
        if not missing and not unexplained and ours == load.ours(before) == load.ours(after):
            return before, through_netlink
        problems = f"missing from netlink: {sorted(missing)[:5]}; only in netlink: {sorted(unexplained)[:5]}"
        time.sleep(0.05)
    raise AssertionError(f"the two readers never agreed: {problems}")


@pytest.mark.root  # the expected rows are root's (uid 0)
@pytest.mark.parametrize("one_walk", [False, True], ids=["a TCP dump per family", "one TCP dump of both"])
def test_netlink_reader_matches_proc_reader(loopback_load: Load, one_walk: bool) -> None:
    reader = SockDiagReader()
    reader.probe()
    if one_walk and not reader.both_families:
        pytest.skip("this kernel does not take TCPDIAG_GETSOCK")
    reader.both_families = one_walk
    _proc, through_netlink = compare_readers(
        lambda: set(map(row, read_all_sockets()[0])),
        lambda: set(map(row, reader.read())),
        loopback_load,
    )
    reader.close()
    ours = loopback_load.ours(through_netlink)
    assert sum(1 for r in ours if r[5] == "ESTABLISHED" and r[0] == "tcp6") >= 200  # both ends of 100, and more
    assert sum(1 for r in ours if r[5] == "ESTABLISHED" and r[0] == "tcp") >= 400
    for name, expected in loopback_load.expected.items():
        assert expected in through_netlink, f"{name}: {expected} not found"
    by_state = Counter(r[5] for r in ours)
    assert by_state["UNCONN"] == 2 and by_state["TIME_WAIT"] >= 1 and by_state["FIN_WAIT2"] >= 1
    # The unread datagram and the unsent bytes, whose exact sizes are the kernel's: equal in both, and not 0.
    assert any(r[0] == "udp" and r[5] == "UNCONN" and r[6] > 0 for r in ours)
    assert any(r[5] == "ESTABLISHED" and r[7] > 0 for r in ours)


def test_reader_classes_and_warnings() -> None:
    sockets, warnings = read_all_sockets_netlink()
    assert warnings == []
    assert all(type(sock) is Socket for sock in sockets)
    with SockDiagReader() as reader:
        reader.probe()
        assert len(reader.read()) >= 0
        reader.read()  # a reader is reusable


@pytest.mark.root  # as a normal user both warn that owners are hidden
def test_collectors_with_either_reader_give_equal_snapshots(loopback_load: Load) -> None:
    proc_collector = ConnectionCollector(reader="proc")
    netlink_collector = ConnectionCollector(reader="netlink")
    assert (netlink_collector.source, proc_collector.source) == ("netlink", "proc")
    assert ConnectionCollector().source == "netlink"  # "auto", where netlink works

    def shown(collector: ConnectionCollector) -> Callable[[], set[Row]]:
        def read() -> set[Row]:
            snapshot = collector.collect()
            assert snapshot.warnings == [] or all("could not be read" in w for w in snapshot.warnings)
            return {
                (*row(sock), sock.user, sock.pid or 0, sock.program)  # type: ignore[misc]
                for sock in snapshot.sockets.values()
            }

        return read

    _proc, through_netlink = compare_readers(shown(proc_collector), shown(netlink_collector), loopback_load)
    ours = loopback_load.ours(through_netlink)
    me = os.getpid()
    assert sum(1 for r in ours if r[11] == me) >= 600  # owners filled in: this process holds both ends
    if "nobody" in loopback_load.expected:
        assert any(r[9] == NOBODY and r[10] == "nobody" for r in ours)


def test_unknown_reader_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown reader"):
        ConnectionCollector(reader="ss")


def test_full_inet_diag_msg_and_extensions() -> None:
    assert (INET_DIAG_MSG.size, INET_DIAG_MSG_OFFSET) == (72, 16)  # sizeof(struct inet_diag_msg), nlmsghdr
    ext_info = 1 << (2 - 1)  # INET_DIAG_INFO: tcp_info, for a later issue
    request = build_request(socket.AF_INET, socket.IPPROTO_TCP, ext=ext_info)
    nl = netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG)
    with socket.create_server(("127.0.0.1", 0)) as listener, nl:
        port, ino = listener.getsockname()[1], inode(listener)
        found = []
        for message in nl.dump(SOCK_DIAG_BY_FAMILY, request):
            msg = parse_inet_diag_msg(message.data, message.start)
            if msg.inode == ino:
                attrs = netlink.parse_attrs(message.data, message.start + INET_DIAG_MSG.size, message.end)
                found.append((msg, attrs))
    ((msg, attrs),) = found
    assert (msg.family, msg.state, msg.sport, msg.dport) == (socket.AF_INET, 10, port, 0)
    assert msg.src[:4] == socket.inet_aton("127.0.0.1") and msg.dst == bytes(16)
    assert msg.uid == os.geteuid() and msg.cookie != 0
    assert 2 in attrs and len(attrs[2]) >= 100  # struct tcp_info came because idiag_ext asked for it


# --- Falling back to /proc where sock_diag is forbidden: a real seccomp filter in a child process ---

SECCOMP_CHILD = textwrap.dedent(
    """
    import ctypes, json, struct, sys
    # socket(AF_NETLINK, ...) fails with EPERM, as under a container's seccomp profile; everything else is allowed.
    def insn(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)
    LD_ABS, JEQ, RET = 0x20, 0x15, 0x06
    program = b"".join([
        insn(LD_ABS, 0, 0, 4), insn(JEQ, 0, 5, 0xC000003E),  # arch: x86-64, else allow
        insn(LD_ABS, 0, 0, 0), insn(JEQ, 0, 3, 41),           # nr: socket(2)
        insn(LD_ABS, 0, 0, 16), insn(JEQ, 0, 1, 16),          # args[0]: AF_NETLINK
        insn(RET, 0, 0, 0x00050000 | 1),                      # SECCOMP_RET_ERRNO | EPERM
        insn(RET, 0, 0, 0x7FFF0000),                          # SECCOMP_RET_ALLOW
    ])
    buf = ctypes.create_string_buffer(program)
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    prog = Prog(len(program) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0, ctypes.get_errno()  # PR_SET_SECCOMP, FILTER

    from netscope.collectors.connections import ConnectionCollector
    from netscope.collectors.sockdiag import SockDiagUnavailable, read_all_sockets_netlink
    out = {}
    try:
        read_all_sockets_netlink()
    except SockDiagUnavailable as exc:
        out["error"] = str(exc)
    try:
        ConnectionCollector(reader="netlink")
    except SockDiagUnavailable:
        out["strict_refused"] = True
    collector = ConnectionCollector()
    snapshot = collector.collect()
    out["source"] = collector.source
    out["warnings"] = snapshot.warnings
    out["ports"] = sorted({s.local_port for s in snapshot.sockets.values() if s.state == "LISTEN"})
    print(json.dumps(out))
    """
)


def test_falls_back_to_proc_when_netlink_is_forbidden() -> None:
    if platform.machine() != "x86_64":
        pytest.skip("the seccomp filter here is written for x86-64 system call numbers")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        result = subprocess.run(
            [sys.executable, "-c", SECCOMP_CHILD], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert "Operation not permitted" in out["error"] or "EPERM" in out["error"]
        assert out["strict_refused"] is True
        assert out["source"] == "proc"
        fallback = [w for w in out["warnings"] if "/proc/net" in w]
        assert len(fallback) == 1 and "netlink" in fallback[0] and "cannot be used" in fallback[0]
        assert listener.getsockname()[1] in out["ports"]  # still a working table, from /proc


# --- The incremental owner map after churn, against the netlink socket table ---

CHURN_CODE = textwrap.dedent(
    """
    import os, random, select, signal, socket, struct, sys, time
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked children reap themselves
    rng = random.Random(int(sys.argv[1]))
    listener = socket.create_server(("127.0.0.1", 0))
    reset = struct.pack("ii", 1, 0)
    held = []
    print("go", flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:  # until told to stop
        r = rng.random()
        if r < 0.35 or len(held) < 4:
            c = socket.create_connection(listener.getsockname())
            a, _ = listener.accept()
            for s in (c, a):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
            held += [c, a]
        elif r < 0.5:
            held.append(open("/dev/null"))
        elif r < 0.6:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            held.append(u)
        elif r < 0.62:
            if os.fork() == 0:  # a child sharing everything, which closes some and exits soon
                for f in held[: len(held) // 2]:
                    f.close()
                time.sleep(0.05)
                os._exit(0)
        else:
            held.pop(rng.randrange(len(held))).close()
        time.sleep(0.002)
    print("done", flush=True)
    time.sleep(60)
    """
)


def test_incremental_owner_map_equals_a_full_scan_after_churn(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    child = subprocess.Popen(
        [sys.executable, "-c", CHURN_CODE, str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=tmp_path,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "go"
        scanner = OwnerScanner()
        reader = SockDiagReader()
        for _ in range(10):
            scanner.scan({sock.inode for sock in reader.read()})  # while it churns
            time.sleep(0.05)
        child.stdin.write("stop\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done", f"seed {seed}"
        time.sleep(0.1)  # forked children gone
        for _attempt in range(5):
            table = {sock.inode for sock in reader.read()}
            table.discard(0)
            incremental = scanner.scan(table).inode_to_pid
            full = {i: pid for i, pid in OwnerScanner().scan().inode_to_pid.items() if i in table}
            child_sockets = {i for i, pid in full.items() if pid == child.pid}
            assert len(child_sockets) >= 4, f"seed {seed}"
            assert {i: incremental.get(i) for i in child_sockets} == {i: child.pid for i in child_sockets}, seed
            assert not {i for i, pid in incremental.items() if pid == child.pid} - child_sockets, f"seed {seed}"
            if incremental == full:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the incremental map never equalled a full scan (seed {seed})")
        reader.close()
    finally:
        child.kill()
        child.wait(timeout=10)


# --- tcp_info (INET_DIAG_INFO and INET_DIAG_SKMEMINFO) in the dump ---


def test_dump_with_tcp_info_lists_the_same_sockets(loopback_load: Load) -> None:
    plain, with_info = SockDiagReader(), SockDiagReader()
    with_info.probe()  # one TCP dump of both families where the kernel takes it; `plain` dumps by family
    infos: dict[tuple[str, str, int, str, int, int], object] = {}
    by_row: dict[Row, Socket] = {}

    def read_with_info() -> set[Row]:
        sockets = with_info.read(tcp_info=True)
        infos.clear()
        infos.update(with_info.last_tcp_info)
        by_row.clear()
        by_row.update((row(sock), sock) for sock in sockets)
        return set(by_row)

    _plain, through_info = compare_readers(lambda: set(map(row, plain.read())), read_with_info, loopback_load)
    ours = [by_row[r] for r in loopback_load.ours(through_info)]
    assert set(infos) <= {sock.key for sock in by_row.values()}
    with_entry = {sock.state for sock in ours if sock.key in infos}
    without = {sock.state for sock in ours if sock.key not in infos}
    # Every connection of ours has one; listeners, TIME_WAIT, request sockets and UDP have none.
    assert "ESTABLISHED" in with_entry and not {"LISTEN", "TIME_WAIT", "SYN_RECV", "UNCONN"} & with_entry
    assert not [sock for sock in ours if sock.state == "ESTABLISHED" and sock.is_tcp and sock.key not in infos]
    assert {"LISTEN", "TIME_WAIT", "UNCONN"} <= without
    assert not [sock for sock in ours if not sock.is_tcp and sock.key in infos]
    # The default read asks for nothing extra and reports nothing.
    plain.read()
    assert plain.last_tcp_info == {}
    with_info.read()
    assert with_info.last_tcp_info == {}


def test_tcp_info_of_every_attribute_arrangement() -> None:
    """The reader unpacks attributes with a layout learnt from the first message of each arrangement; a message of
    the same length laid out differently must be walked, never read with the wrong layout."""
    from netscope.collectors import sockdiag
    from netscope.collectors.tcpinfo import parse_tcp_info

    rng = random.Random()

    def attr(attr_type: int, payload: bytes) -> bytes:
        return netlink.pack_attr(attr_type, payload)

    def message(order: str) -> tuple[bytes, bytes, bytes]:
        info = bytes(rng.randrange(256) for _ in range(232))
        meminfo = struct.pack("=9I", *(rng.randrange(1 << 32) for _ in range(9)))
        parts = {"s": attr(8, b"\x00"), "m": attr(7, meminfo), "i": attr(2, info)}  # SHUTDOWN, SKMEMINFO, INFO
        return b"\xee" * 16 + b"".join(parts[c] for c in order), info, meminfo  # junk before: offsets matter

    sockdiag._LAYOUTS.clear()
    for order in ("smi", "smi", "ism", "smi", "ism", "ims", "ims"):
        data, info, meminfo = message(order)
        collector = sockdiag._TcpInfoCollector({})
        key = ("tcp", "127.0.0.1", 1, "127.0.0.1", 2, 0)
        collector.add(bytearray(data), 16, len(data), key)
        assert collector.found[key] == parse_tcp_info(info, meminfo), order
    assert len({len(message(order)[0]) for order in ("smi", "ism", "ims")}) == 1  # one length, three layouts
    assert len(next(iter(sockdiag._LAYOUTS.values()))) == 3


def test_a_read_with_reuse_sees_a_udp_socket_connected_to_another_peer() -> None:
    """connect() again moves a UDP socket to another peer without a new cookie, state or queues: its endpoints
    alone say it changed, and the read must show the new ones. (tests/test_speedups.py runs this again without the
    compiled parser.)"""
    peers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    talker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for peer in peers:
            peer.bind(("127.0.0.1", 0))
        first_port, second_port = (peer.getsockname()[1] for peer in peers)
        talker.connect(("127.0.0.1", first_port))
        port = talker.getsockname()[1]

        def talkers(sockets: list[Socket]) -> list[Socket]:
            return [sock for sock in sockets if sock.proto == "udp" and sock.local_port == port]

        with SockDiagReader() as reader:
            before = talkers(reader.read(reuse=True))
            talker.connect(("127.0.0.1", second_port))
            after = talkers(reader.read(reuse=True))
            fresh, gone = reader.fresh, reader.gone
    finally:
        talker.close()
        for peer in peers:
            peer.close()
    assert [(sock.state, sock.remote_port) for sock in before] == [("ESTABLISHED", first_port)]
    assert [(sock.state, sock.remote_port) for sock in after] == [("ESTABLISHED", second_port)]
    assert any(sock is after[0] for sock in fresh) and any(sock is before[0] for sock in gone)


def test_a_read_with_reuse_tells_what_changed_by_cookie() -> None:
    """A socket reported as before is the same object again; one whose Recv-Q moved is a new object and its old
    one is among those gone; one closed is gone. (tests/test_speedups.py runs this again without the compiled
    parser.)"""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    pairs = []
    for _ in range(3):
        client = socket.create_connection(("127.0.0.1", port))
        pairs.append((client, listener.accept()[0]))
    (idle, _idle_peer), (busy, _busy_peer), (closing, closing_peer) = pairs
    idle_key = idle.getsockname()[1], port
    busy_key = port, busy.getsockname()[1]

    def ours(sockets: list[Socket]) -> dict[tuple[int, int], Socket]:
        return {(sock.local_port, sock.remote_port): sock for sock in sockets
                if sock.state == "ESTABLISHED" and port in (sock.local_port, sock.remote_port)}

    try:
        with SockDiagReader() as reader:
            first = ours(reader.read(reuse=True))
            assert len(first) == 6
            busy.sendall(b"x" * 1000)  # nobody reads it: busy_peer's Recv-Q is 1000
            closing.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            closing.close()  # a reset: no TIME_WAIT left
            closing_peer.close()
            time.sleep(0.2)
            second = ours(reader.read(reuse=True))
            gone, fresh = reader.gone, reader.fresh
    finally:
        listener.close()
        for client, peer in pairs:
            client.close()
            peer.close()
    closed_keys = {key for key in first if key not in second}
    assert len(closed_keys) == 2 and len(second) == 4
    assert second[idle_key] is first[idle_key]
    assert second[busy_key].recv_q == 1000 and first[busy_key].recv_q == 0
    assert any(sock is second[busy_key] for sock in fresh)
    assert any(sock is first[busy_key] for sock in gone)  # replaced: the same cookie with another Recv-Q
    assert all(any(sock is first[key] for sock in gone) for key in closed_keys)
    assert not any(sock is first[idle_key] for sock in gone + fresh)
