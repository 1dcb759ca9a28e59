"""The connection collector and its diffs, on real loopback sockets owned by real child processes."""

from __future__ import annotations

import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable

import pytest
from support import Peer, run_as_nobody

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket
from netscope.collectors.netlink import NETLINK_SOCK_DIAG, NetlinkSocket
from netscope.collectors.owners import NOT_ROOT_WARNING
from netscope.collectors.processes import OwnerScanner
from netscope.collectors.sockdiag import read_all_sockets_netlink
from netscope.collectors.socket_lookup import still_open


def at_server(sock: Socket, port: int, host: str = "127.0.0.1") -> bool:
    """One end is the test server's address and port. The port number alone is not enough: other loopback
    sockets (127.0.1.x, another test's load) use every port number on their own addresses."""
    return (sock.local_ip, sock.local_port) == (host, port) or (sock.remote_ip, sock.remote_port) == (host, port)


def of_port(snapshot: Snapshot, port: int) -> list[Socket]:
    return [s for s in snapshot.sockets.values() if at_server(s, port)]


def next_diff_until(
    collector: ConnectionCollector, condition: Callable[[SnapshotDiff], bool], timeout: float = 5.0
) -> SnapshotDiff:
    deadline = time.monotonic() + timeout
    while True:
        diff = collector.next_diff()
        if condition(diff):
            return diff
        assert time.monotonic() < deadline, "the expected change never showed up"
        time.sleep(0.05)


@pytest.mark.root  # expects root's view of every owner
def test_snapshot_has_both_ends_with_owners(server_with_clients: tuple[Peer, list[Peer]]) -> None:
    server, clients = server_with_clients
    snapshot = ConnectionCollector().collect()
    sockets = of_port(snapshot, server.port)
    listener = [s for s in sockets if s.state == "LISTEN"]
    established = [s for s in sockets if s.state == "ESTABLISHED"]
    assert len(listener) == 1 and listener[0].pid == server.pid and listener[0].program == "ns-test-server"
    assert len(established) == 6
    assert sorted(s.pid for s in established if s.local_port == server.port) == [server.pid] * 3
    assert sorted(s.pid for s in established if s.remote_port == server.port) == sorted(c.pid for c in clients)
    # The peers' own sockets: a closed connection of an earlier test whose port the server was given again may
    # linger in TIME_WAIT, with no inode, which is right for it.
    assert all(s.user == "root" and s.uid == 0 and s.inode > 0 for s in [*listener, *established])
    assert snapshot.collect_seconds > 0


def test_diff_reports_added_changed_and_removed(
    server_with_clients: tuple[Peer, list[Peer]], spawn_peer: Callable[..., Peer]
) -> None:
    server, _ = server_with_clients
    collector = ConnectionCollector()
    first = collector.next_diff()
    assert first.first and all(s.seen_since_start for s in first.snapshot.sockets.values())

    # A new client: two new sockets, and they are not marked as older than netscope.
    late = spawn_peer("client", str(server.port), "--name", "ns-late")
    added = next_diff_until(collector, lambda d: any(s.pid == late.pid for s in d.added))
    new_ends = [s for s in added.added if at_server(s, server.port)]
    assert len(new_ends) == 2 and not any(s.seen_since_start for s in new_ends)

    # The client dies: its end becomes an ownerless FIN_WAIT2, the server's end CLOSE_WAIT; both are changes.
    late.process.kill()
    late.process.wait(timeout=10)
    changed: dict[tuple[object, ...], tuple[Socket, Socket]] = {}

    def both_closing(diff: SnapshotDiff) -> bool:
        # Keep the first "before" of each socket: the client's end may pass FIN_WAIT1 on its way to FIN_WAIT2.
        for before, after in zip(diff.changed_before, diff.changed, strict=True):
            changed[after.key] = (changed.get(after.key, (before,))[0], after)
        states = {s.state for s in diff.snapshot.sockets.values() if at_server(s, server.port)}
        return {"CLOSE_WAIT", "FIN_WAIT2"} <= states

    next_diff_until(collector, both_closing)
    server_end = next(s for s in new_ends if s.local_port == server.port)
    client_end = next(s for s in new_ends if s.remote_port == server.port)
    before, after = changed[server_end.key]
    assert (before.state, after.state, after.pid) == ("ESTABLISHED", "CLOSE_WAIT", server.pid)
    # Ages carry across refreshes: a changed socket keeps the time it was first seen.
    assert after.first_seen == server_end.first_seen
    before, after = changed[client_end.key]
    assert (before.state, before.pid) == ("ESTABLISHED", late.pid)
    assert after.state in ("FIN_WAIT1", "FIN_WAIT2") and after.pid is None and after.inode == 0

    # The server dies: its listener is removed.
    server.process.kill()
    server.process.wait(timeout=10)
    removed = next_diff_until(collector, lambda d: any(s.state == "LISTEN" for s in d.removed))
    assert any(s.local_port == server.port for s in removed.removed)


def test_unread_data_shows_as_recv_q_change() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        collector = ConnectionCollector()
        collector.next_diff()
        client.sendall(b"x" * 1000)  # never read by `accepted`
        port = client.getsockname()[1]
        diff = next_diff_until(collector, lambda d: any(s.remote_port == port and s.recv_q for s in d.changed))
        receiver = next(s for s in diff.changed if s.remote_port == port)
        assert receiver.recv_q == 1000
    finally:
        for sock in (client, accepted, listener):
            sock.close()


def test_without_root_owners_of_others_are_unknown_and_it_says_so(
    nobody_python: tuple[list[str], dict[str, str]], server_with_clients: tuple[Peer, list[Peer]]
) -> None:
    server, _ = server_with_clients
    command, env = nobody_python
    code = textwrap.dedent(
        f"""
        import json, os, socket
        from netscope.collectors.connections import ConnectionCollector
        own = socket.create_server(("127.0.0.1", 0))
        snapshot = ConnectionCollector().collect()
        rows = [s for s in snapshot.sockets.values()
                if s.local_port in ({server.port}, own.getsockname()[1]) and s.state == "LISTEN"]
        print(json.dumps({{
            "incomplete": snapshot.owners_incomplete,
            "warnings": snapshot.warnings,
            "owners": {{str(s.local_port): s.pid for s in rows}},
            "me": os.getpid(),
            "own_port": own.getsockname()[1],
        }}))
        """
    )
    result = run_as_nobody(command, env, code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["incomplete"] is True
    assert NOT_ROOT_WARNING in report["warnings"]
    assert report["owners"][str(server.port)] is None  # root's server: listed, owner unknown
    assert report["owners"][str(report["own_port"])] == report["me"]  # its own socket: owner known


# Listens, then on "go" forks: the child keeps the listening socket and the parent closes its copy, so the same
# kernel socket (same cookie, inode, state) changes owner.
def stop_with_child(process: subprocess.Popen[str], child: int) -> None:
    """Kill a helper and the child it forked (0: none yet), and close its pipes."""
    if child:
        os.kill(child, signal.SIGKILL)
    process.kill()
    process.wait(timeout=10)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


HAND_OVER = textwrap.dedent("""
    import os, socket, sys, time
    listener = socket.create_server((sys.argv[1], 0))
    print(listener.getsockname()[1], flush=True)
    sys.stdin.readline()
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    listener.close()
    print(child, flush=True)
    time.sleep(60)
""")


def test_unchanged_sockets_are_reused_and_an_owner_change_is_still_a_change() -> None:
    host = f"127.{random.randint(100, 249)}.{random.randint(0, 255)}.1"
    process = subprocess.Popen([sys.executable, "-c", HAND_OVER, host], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert process.stdin is not None and process.stdout is not None
        port = int(process.stdout.readline())
        collector = ConnectionCollector(reader="netlink")

        def listener(snapshot: Snapshot) -> Socket:
            return next(s for s in snapshot.sockets.values() if (s.local_ip, s.local_port) == (host, port))

        first = collector.next_diff().snapshot
        second = collector.next_diff()
        before = listener(first)
        assert before.pid == process.pid
        # Reported exactly as before: the very same object, and so not a change.
        assert listener(second.snapshot) is before
        assert all(s.key != before.key for s in second.changed + second.added)

        process.stdin.write("go\n")
        process.stdin.flush()
        child = int(process.stdout.readline())
        moved = next_diff_until(
            collector, lambda d: any(s.key == before.key and s.pid == child for s in d.changed)
        )
        [old] = [s for s in moved.changed_before if s.key == before.key]
        assert old.pid == process.pid
        assert before.pid == process.pid  # the earlier snapshot's socket was copied, not changed under it
    finally:
        stop_with_child(process, child)


CHURN = textwrap.dedent("""
    import os, socket, sys, time
    listener = socket.create_server((sys.argv[1], 0), backlog=256)
    print(listener.getsockname()[1], flush=True)
    clients, servers = [], []
    for line in sys.stdin:
        command, _, count = line.strip().partition(" ")
        if command == "open":
            for _ in range(int(count)):
                clients.append(socket.create_connection(listener.getsockname()))
                servers.append(listener.accept()[0])
        elif command == "close":
            for _ in range(int(count)):
                clients.pop().close()
                servers.pop().close()
        elif command == "send":  # unread bytes: the first server end's Recv-Q changes
            clients[0].sendall(b"x" * int(count))
        elif command == "give":  # a new process keeps the first client end, this one closes it: its owner moves
            child = os.fork()
            if child == 0:
                time.sleep(60)
                os._exit(0)
            clients.pop(0).close()
            print(child, flush=True)
            continue
        print("ok", flush=True)
""")


@pytest.mark.parametrize("in_place", [False, True], ids=["copy", "in-place"])
def test_a_refresh_made_from_the_changes_alone_equals_one_made_from_every_socket(in_place: bool) -> None:
    """Where the collector builds a snapshot from what changed (new sockets, gone ones, inodes the fd scan maps
    to another process), its diff is the one diff_snapshots makes comparing every socket, and every owner is
    what a full fd scan says; whether it updates the last snapshot's dict in place (the worker's way) or a copy."""
    host = f"127.{random.randint(100, 249)}.{random.randint(0, 255)}.1"
    process = subprocess.Popen([sys.executable, "-c", CHURN, host], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    child = 0
    try:
        assert process.stdin is not None and process.stdout is not None
        port = int(process.stdout.readline())
        collector = ConnectionCollector(reader="netlink", update_in_place=in_place)
        previous = collector.next_diff().snapshot
        from_changes = 0
        for command in ("open 20", "", "send 1000", "close 5", "give", "open 3", ""):
            if command:
                process.stdin.write(command + "\n")
                process.stdin.flush()
                answer = process.stdout.readline().strip()
                if command == "give":
                    child = int(answer)
                else:
                    assert answer == "ok"
            as_it_was = Snapshot(previous.taken_at, dict(previous.sockets))
            diff = collector.next_diff()
            from_changes += collector.built_from_changes  # the way under test was taken
            if in_place:  # the last snapshot's own dict, now this one's
                assert (diff.snapshot.sockets is previous.sockets) == collector.built_from_changes
            else:
                # Nothing in the collector holds the last snapshot's dict of sockets any more (the new one is made
                # from a copy of it): only that snapshot does.
                assert [holder for holder in gc.get_referrers(previous.sockets)
                        if not isinstance(holder, Snapshot | types.FrameType)] == []  # fmt: skip
            whole = diff_snapshots(as_it_was, diff.snapshot)
            for ours, theirs in ((diff.added, whole.added), (diff.removed, whole.removed),
                                 (diff.changed, whole.changed), (diff.changed_before, whole.changed_before)):
                assert sorted(map(id, ours)) == sorted(map(id, theirs))
            holders = OwnerScanner().scan().inode_to_pid
            mine = [s for s in diff.snapshot.sockets.values()  # by address too: another's port may be the same
                    if (host, port) in ((s.local_ip, s.local_port), (s.remote_ip, s.remote_port)) and s.inode]
            assert len(mine) >= 1 and all(s.pid == holders.get(s.inode) for s in mine)
            previous = diff.snapshot
        assert from_changes >= 4, "the refreshes never took the way under test"
        assert {s.pid for s in mine} == {process.pid, child}, "the given socket's owner never moved to the child"
    finally:
        stop_with_child(process, child)


@pytest.mark.parametrize("in_place", [False, True], ids=["copy", "in-place"])
def test_a_second_socket_on_one_key_leaves_the_last_snapshot_as_it_was(in_place: bool) -> None:
    """Two UDP sockets bound to one port (SO_REUSEPORT) and connected to one peer have one key. When the second
    appears, a refresh cannot be made from the changes alone; the collector, which had begun to, leaves the last
    snapshot's sockets as they were (in place: it puts back what it had changed), and the diff is what comparing
    every socket gives."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    twins = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        twins[0].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        twins[0].bind(("127.0.0.1", 0))
        twins[0].connect(peer.getsockname())
        collector = ConnectionCollector(reader="netlink", update_in_place=in_place)
        previous = collector.next_diff().snapshot
        previous = collector.next_diff().snapshot  # the second read is the first one that reuses
        as_it_was = dict(previous.sockets)
        twins[1].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        twins[1].bind(twins[0].getsockname())
        twins[1].connect(peer.getsockname())
        diff = collector.next_diff()
        assert not collector.built_from_changes
        assert previous.sockets == as_it_was and previous.sockets is not diff.snapshot.sockets
        whole = diff_snapshots(Snapshot(previous.taken_at, as_it_was), diff.snapshot)
        for ours, theirs in ((diff.added, whole.added), (diff.removed, whole.removed),
                             (diff.changed, whole.changed)):
            assert sorted(map(id, ours)) == sorted(map(id, theirs))
    finally:
        for sock in (peer, *twins):
            sock.close()


def test_the_kernel_says_which_sockets_are_still_open() -> None:
    """What the fd scan asks before listing every process for a socket no fd holds (socket_lookup.still_open):
    a connection closed since the table was read is not open any more; one still open, a listener, UDP are."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    closing = socket.create_connection(server.getsockname())
    closing_end, _ = server.accept()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        mine = {os.fstat(s.fileno()).st_ino for s in (server, client, accepted, closing, closing_end, udp)}
        table = {s.inode: s for s in read_all_sockets_netlink()[0] if s.inode in mine}
        assert len(table) == 6
        gone = {os.fstat(closing.fileno()).st_ino, os.fstat(closing_end.fileno()).st_ino}
        closing.close()
        closing_end.close()
        with NetlinkSocket(NETLINK_SOCK_DIAG) as nl:
            assert still_open(nl, table.values()) == mine - gone
    finally:
        for sock in (server, client, accepted, udp):
            sock.close()

