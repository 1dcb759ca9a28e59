"""Collecting in a worker process: the diffs it sends rebuild the same snapshots, and it survives its own death."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable

import psutil
from fixed_data import snapshots
from support import Peer, next_matching

from netscope.collectors.connections import CollectionFailure, ConnectionCollector
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.wire import HEADER, DiffAssembler, WireDiff, decode_frame, to_wire, write_frame
from netscope.collectors.worker_launch import start_worker


def test_assembler_rebuilds_snapshots_from_wire_diffs() -> None:
    first, second = snapshots()
    assembler = DiffAssembler()
    rebuilt_first = assembler.apply(to_wire(diff_snapshots(None, first)))
    assert rebuilt_first.first and rebuilt_first.snapshot.sockets == first.sockets
    original = diff_snapshots(first, second)
    rebuilt = assembler.apply(to_wire(original))
    assert rebuilt.snapshot.sockets == second.sockets
    assert [s.key for s in rebuilt.removed] == [s.key for s in original.removed]
    assert rebuilt.changed == original.changed
    assert rebuilt.changed_before == original.changed_before
    # The earlier snapshot is left as it was: the UI may still hold it.
    assert rebuilt_first.snapshot.sockets == first.sockets
    # A refresh that changes no socket shares the last snapshot's sockets (nothing changes them), and the next one
    # that does gets its own again.
    idle = assembler.apply(to_wire(diff_snapshots(second, second)))
    assert idle.is_empty and idle.snapshot.sockets is rebuilt.snapshot.sockets
    back = assembler.apply(to_wire(diff_snapshots(second, first)))
    assert back.snapshot.sockets == first.sockets and idle.snapshot.sockets == second.sockets


def test_a_frame_of_real_sockets_arrives_whole_and_each_owner_once(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    server, _ = server_with_clients
    diff = ConnectionCollector(interval=1.0).next_diff()
    sent = io.BytesIO()  # what the worker writes to its pipe
    write_frame(sent, to_wire(diff))
    frame = decode_frame(sent.getvalue()[HEADER.size :])
    assert isinstance(frame, WireDiff)
    received = DiffAssembler().apply(frame).snapshot.sockets
    # Every slot, those == leaves out (pid_start, backlog, key) included.
    assert {key: sock.as_dict() for key, sock in received.items()} == {
        key: sock.as_dict() for key, sock in diff.snapshot.sockets.items()
    }
    # The server's sockets (its listener and its three connections) were read at once: they share the owner
    # fields and the time they were first seen, which were sent once and made once; the connections share the
    # very tuple (the listener's has its backlog).
    served = [sock for sock in received.values() if sock.pid == server.pid]
    assert len(served) == 4 and served[0].pid_start > 0
    connected = [sock for sock in served if sock.state == "ESTABLISHED"]
    assert len(connected) == 3 and len({id(sock.shared) for sock in connected}) == 1
    listener = next(sock for sock in served if sock.state == "LISTEN")
    assert listener.backlog > 0 and listener.shared[:-1] == connected[0].shared[:-1]
    # The ports came packed apart: the server's port, on its four sockets, is one number object in the UI (a
    # port above 256: Python shares only the small numbers itself).
    assert listener.local_port > 256 and len({id(sock.local_port) for sock in served}) == 1
    # What a socket costs each process besides its key and numbers: 12 slots (20 before the shared tuple).
    assert all(sys.getsizeof(sock) <= 128 for sock in served)


def test_stand_in_ports_too_big_for_two_bytes_cross_the_pipe_whole() -> None:
    # A unix socket's "ports" are its inode and its peer's, which take up to 4 bytes; a number past those too.
    unix = Socket("u_str", "/run/x.sock", 70_000, "*", 4_294_967_295, "ESTAB", 0, 0, 70_000)
    odd = Socket("tcp", "127.0.0.1", 2**40, "127.0.0.1", 5, "ESTABLISHED", 0, 0, 9)
    for sockets in ([unix], [unix, odd]):
        snapshot = Snapshot(1.0, {sock.key: sock for sock in sockets})
        sent = io.BytesIO()
        write_frame(sent, to_wire(SnapshotDiff(snapshot, sockets, [], [], first=True)))
        frame = decode_frame(sent.getvalue()[HEADER.size :])
        assert isinstance(frame, WireDiff)
        received = DiffAssembler().apply(frame).snapshot.sockets
        assert {key: sock.as_dict() for key, sock in received.items()} == {
            key: sock.as_dict() for key, sock in snapshot.sockets.items()
        }


async def test_worker_streams_real_sockets_and_restarts_after_dying(
    server_with_clients: tuple[Peer, list[Peer]], spawn_peer: Callable[..., Peer]
) -> None:
    server, _ = server_with_clients
    collector = ProcessCollector(interval=0.2)
    stream = collector.stream()
    try:
        first = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(first, SnapshotDiff) and first.first
        listener = [s for s in first.snapshot.sockets.values() if s.local_port == server.port and s.is_listening]
        assert len(listener) == 1 and listener[0].pid == server.pid
        worker = collector.worker_pid
        assert worker is not None and worker != os.getpid()
        assert psutil.Process(worker).ppid() == os.getpid()

        late = spawn_peer("client", str(server.port))
        added = await next_matching(
            stream, lambda u: isinstance(u, SnapshotDiff) and any(s.pid == late.pid for s in u.added)
        )
        assert isinstance(added, SnapshotDiff)
        assert any(s.pid == late.pid for s in added.snapshot.sockets.values())

        os.kill(worker, signal.SIGKILL)
        failure = await next_matching(stream, lambda u: isinstance(u, CollectionFailure))
        assert isinstance(failure, CollectionFailure) and "restarting" in failure.message
        again = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(again, SnapshotDiff) and again.first and collector.restarts == 1
        assert collector.worker_pid not in (None, worker)
    finally:
        restarted = collector.worker_pid
        await collector.aclose()
        await stream.aclose()
    assert restarted is not None and not psutil.pid_exists(restarted)


async def test_in_process_collector_streams_too(server_with_clients: tuple[Peer, list[Peer]]) -> None:
    server, _ = server_with_clients
    stream = ConnectionCollector(interval=0.1).stream()
    try:
        first = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(first, SnapshotDiff)
        assert any(s.pid == server.pid for s in first.snapshot.sockets.values())
        second = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(second, SnapshotDiff) and not second.first
    finally:
        await stream.aclose()


# --- tcp_info over the wire ---


def test_wire_sends_only_changed_tcp_info() -> None:
    import pickle
    import socket
    import struct
    import time

    from netscope.collectors.model import SocketKey
    from netscope.collectors.tcpinfo import TcpInfo

    reset = struct.pack("ii", 1, 0)
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    pairs: list[tuple[socket.socket, socket.socket]] = []
    try:
        for _ in range(300):
            client = socket.create_connection(listener.getsockname())
            server = listener.accept()[0]
            for sock in (client, server):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)  # closing leaves no TIME_WAIT
            pairs.append((client, server))

        def keys(pair: tuple[socket.socket, socket.socket]) -> list[SocketKey]:
            return [("tcp", *s.getsockname(), *s.getpeername(), 0) for s in pair]

        ours = {key for pair in pairs for key in keys(pair)}
        time.sleep(0.3)  # the handshakes' last ACKs in: from here on these connections are idle
        collector = ConnectionCollector(tcp_info=True)
        assembler = DiffAssembler()
        sent: dict[SocketKey, TcpInfo] = {}

        def frame() -> tuple[SnapshotDiff, WireDiff]:
            nonlocal sent
            diff = collector.next_diff()
            wire = to_wire(diff, sent)
            current = diff.snapshot.tcp_info
            if not diff.first:  # exactly the entries that changed are sent (other processes' may, too)
                assert set(wire.tcp_info) == {key for key, info in current.items() if sent.get(key) != info}
            sent = current
            data = pickle.dumps(wire, protocol=pickle.HIGHEST_PROTOCOL)
            rebuilt = assembler.apply(pickle.loads(data))
            assert rebuilt.snapshot.tcp_info == diff.snapshot.tcp_info  # the receiver always has it all
            assert rebuilt.snapshot.sockets == diff.snapshot.sockets
            return rebuilt, wire

        first, first_wire = frame()
        assert first.first and ours <= set(first.snapshot.tcp_info) and ours <= set(first_wire.tcp_info)
        for _attempt in range(5):
            idle, idle_wire = frame()
            if not ours & set(idle_wire.tcp_info):
                break
        else:
            raise AssertionError("idle connections' tcp_info was sent again and again")
        assert ours <= set(idle.snapshot.tcp_info)

        # Data on one connection: its two ends are sent, not the other 598.
        busy_client, busy_server = pairs[0]
        busy_client.sendall(b"x" * 10_000)
        received = 0
        while received < 10_000:
            received += len(busy_server.recv(65536))
        time.sleep(0.1)
        busy, busy_wire = frame()
        assert ours & set(busy_wire.tcp_info) == set(keys(pairs[0]))
        assert busy.snapshot.tcp_info[keys(pairs[0])[1]].bytes_received == 10_000

        # Closed connections: gone from the rebuilt dict (checked inside frame()), and not sent as "gone".
        closed = {key for pair in pairs[-10:] for key in keys(pair)}
        for pair in pairs[-10:]:
            for sock in pair:
                sock.close()
        del pairs[-10:]
        after_close, close_wire = frame()
        assert not closed & set(after_close.snapshot.tcp_info) and not closed & set(after_close.snapshot.sockets)
        assert not closed & set(close_wire.tcp_info_gone)

        # Switched off: every entry is withdrawn while the sockets stay.
        collector.tcp_info = False
        off, off_wire = frame()
        assert off.snapshot.tcp_info == {} and ours - closed <= set(off_wire.tcp_info_gone)
        assert ours - closed <= set(off.snapshot.sockets)
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()
        listener.close()


async def test_worker_collects_tcp_info_and_switches_without_restarting(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    from netscope.collectors.sockdiag import SockDiagReader

    server, clients = server_with_clients
    peers = {server.pid, *(client.pid for client in clients)}
    collector = ProcessCollector(interval=0.2, tcp_info=True)
    stream = collector.stream()

    def connections(update: SnapshotDiff | CollectionFailure) -> set[tuple[str, str, int, str, int, int]]:
        assert isinstance(update, SnapshotDiff)
        return {k for k, s in update.snapshot.sockets.items() if s.state == "ESTABLISHED" and s.pid in peers}

    try:
        first = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(first, SnapshotDiff) and first.first
        ends = connections(first)
        assert len(ends) == 6 and ends <= set(first.snapshot.tcp_info)
        with SockDiagReader() as reader:  # the same numbers as read here (idle connections do not move)
            reader.read(tcp_info=True)
            assert {k: reader.last_tcp_info[k].bytes_acked for k in ends} == {
                k: first.snapshot.tcp_info[k].bytes_acked for k in ends
            }
        worker = collector.worker_pid

        collector.set_tcp_info(False)
        off = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff) and not u.snapshot.tcp_info)
        assert isinstance(off, SnapshotDiff) and not off.first and connections(off) == ends
        collector.set_tcp_info(True)
        on = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff) and bool(u.snapshot.tcp_info))
        assert isinstance(on, SnapshotDiff) and not on.first and ends <= set(on.snapshot.tcp_info)
        assert collector.worker_pid == worker and collector.restarts == 0

        # A worker started after a switch starts with the setting.
        collector.set_tcp_info(False)
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        await next_matching(stream, lambda u: isinstance(u, CollectionFailure))  # frames sent before it died first
        again = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(again, SnapshotDiff) and again.first and again.snapshot.tcp_info == {}
        assert collector.restarts == 1
    finally:
        await collector.aclose()
        await stream.aclose()


async def test_a_worker_started_before_the_event_loop_is_adopted_then_restarted_as_usual(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    server, _ = server_with_clients
    prestarted = start_worker(0.2)  # as the CLI does, before Textual is imported
    collector = ProcessCollector(interval=0.2, prestarted=prestarted)
    stream = collector.stream()
    try:
        first = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(first, SnapshotDiff) and first.first
        assert collector.worker_pid == prestarted.pid
        assert any(s.local_port == server.port and s.pid == server.pid for s in first.snapshot.sockets.values())
        # Commands reach the adopted worker through its stdin, as they reach one the collector started.
        collector.set_tcp_info(True)
        with_info = await next_matching(
            stream, lambda u: isinstance(u, SnapshotDiff) and bool(u.snapshot.tcp_info)
        )
        assert isinstance(with_info, SnapshotDiff) and not with_info.first and collector.restarts == 0

        os.kill(prestarted.pid, signal.SIGKILL)
        failure = await next_matching(stream, lambda u: isinstance(u, CollectionFailure))
        assert isinstance(failure, CollectionFailure) and "restarting" in failure.message
        again = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(again, SnapshotDiff) and again.first and collector.worker_pid != prestarted.pid
        assert again.snapshot.tcp_info  # the new worker starts with the setting
    finally:
        restarted = collector.worker_pid
        await collector.aclose()
        await stream.aclose()
    assert prestarted.poll() is not None
    assert restarted is not None and not psutil.pid_exists(restarted)


FREEZE = """
import gc
from netscope.collectors.gc_pause import LONG_LIVED, freeze_first_read
small = freeze_first_read(LONG_LIVED - 1)
before = gc.get_freeze_count()
large = freeze_first_read(LONG_LIVED)
print(small, before, large, gc.get_freeze_count() > 1000)
"""


def test_only_a_large_first_read_is_kept_out_of_garbage_collections() -> None:
    # In a process of its own: freezing is process-wide, and for good.
    out = subprocess.run([sys.executable, "-c", FREEZE], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "0", "True", "True"]
