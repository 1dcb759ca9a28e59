"""Collecting in a worker process: the diffs it sends rebuild the same snapshots, and it survives its own death."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable

import psutil
from fixed_data import snapshots
from support import Peer

from netscope.collectors.connections import CollectionFailure, ConnectionCollector
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.wire import DiffAssembler, to_wire


async def next_matching(
    stream: AsyncIterator[SnapshotDiff | CollectionFailure],
    condition: Callable[[SnapshotDiff | CollectionFailure], bool],
    timeout: float = 10.0,
) -> SnapshotDiff | CollectionFailure:
    async def scan() -> SnapshotDiff | CollectionFailure:
        async for update in stream:
            if condition(update):
                return update
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(scan(), timeout)


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
