"""Recording and replay: round trips of real loopback load, damage of every kind, size over an hour, controls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Peer

from netscope.collectors.connections import CollectionFailure, ConnectionCollector
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket, SocketKey
from netscope.collectors.recording import (
    FRAME_HEADER_SIZE,
    MAGIC,
    SYNC,
    NotARecording,
    RecordingDamaged,
    RecordingReader,
    RecordingTee,
    RecordingWriter,
    ReplaySource,
)

# An hour of 1,000 sockets with 2% of them replaced every second (plus 1% changing queues) measured 2,372,650
# bytes (README, "Scripting"); the bound leaves room for another zlib build's choices, not for a regression.
HOUR_OF_CHURN_BOUND = 2_600_000


def copy_sockets(snapshot: Snapshot) -> dict[SocketKey, Socket]:
    """What the snapshot held at this moment, safe from anything done to its sockets later."""
    return {key: sock.replaced() for key, sock in snapshot.sockets.items()}


def synthetic(
    frames: int, n: int = 1000, churn: float = 0.02, seed: int = 1, t0: float = 1_763_900_000.25
) -> Iterator[SnapshotDiff]:
    """Diffs of a busy server, a second: `churn` of its connections close and as many open, 1% change queues."""
    rng = random.Random(seed)
    owners = [(1200, "nginx", "www-data"), (1201, "postgres", "postgres"), (1202, "redis-server", "redis"),
              (1203, "sshd", "root"), (1204, "python3", "app")]  # fmt: skip
    inode = 5_000_000

    def connection(at: float) -> Socket:
        nonlocal inode
        inode += rng.randint(1, 40)
        pid, program, user = rng.choice(owners)
        peer = f"192.168.{rng.randint(0, 3)}.{rng.randint(1, 254)}"
        return Socket(
            "tcp", "10.0.0.5", rng.choice([443, 80, 5432, 6379]), peer, rng.randint(32768, 60999), "ESTABLISHED",
            0, 0, inode, 33, user, pid, program, first_seen=at,
        )  # fmt: skip

    previous: Snapshot | None = None
    sockets: dict[SocketKey, Socket] = {}
    while len(sockets) < n:
        sock = connection(t0)
        sockets[sock.key] = sock
    for frame in range(frames):
        at = t0 + frame
        closing = set(rng.sample(list(sockets), int(n * churn))) if frame else set()
        current: dict[SocketKey, Socket] = {}
        for key, sock in sockets.items():
            if key in closing:
                continue
            if frame and rng.random() < 0.01:
                sock = sock.replaced(recv_q=rng.randint(0, 5000), send_q=rng.randint(0, 5000))
            current[key] = sock
        while len(current) < n:
            sock = connection(at)
            current[sock.key] = sock
        snapshot = Snapshot(at, current, collect_seconds=round(rng.random() / 20, 6))
        diff = diff_snapshots(previous, snapshot)
        previous, sockets = snapshot, current
        yield diff


def record(path: Path, diffs: list[SnapshotDiff], **options: float) -> RecordingWriter:
    with RecordingWriter(path, **options) as writer:
        for diff in diffs:
            writer.write(diff)
    return writer


def frame_ends(data: bytes) -> list[int]:
    """Byte offsets where each frame ends, read from the documented format (the end marker included)."""
    _, length = struct.unpack_from("!HI", data, len(MAGIC))
    pos = len(MAGIC) + 6 + length + 4
    ends = []
    while pos < len(data):
        sync, size = struct.unpack_from("!4sI", data, pos)
        assert sync == SYNC
        pos += FRAME_HEADER_SIZE + size
        ends.append(pos)
    return ends


def assert_same_diff(replayed: SnapshotDiff, live: SnapshotDiff) -> None:
    assert replayed.snapshot.taken_at == live.snapshot.taken_at
    assert replayed.snapshot.sockets == live.snapshot.sockets
    assert replayed.first == live.first
    assert [s.key for s in replayed.added] == [s.key for s in live.added]
    assert [s.key for s in replayed.removed] == [s.key for s in live.removed]
    assert replayed.changed == live.changed
    assert replayed.changed_before == live.changed_before


# --- round trips -------------------------------------------------------------------------------------------------


def test_a_changing_loopback_load_replays_exactly_as_it_was_live(
    spawn_peer: Callable[..., Peer], tmp_path: Path
) -> None:
    server = spawn_peer("server", "--name", "ns-rec-server")
    collector = ConnectionCollector()
    path = tmp_path / "live.nsrec"
    live: list[tuple[float, dict[SocketKey, Socket], SnapshotDiff]] = []
    clients: list[Peer] = []
    # Clients come and go between refreshes: 1, 3, 2, 0, 2 of them, so sockets are added, closed and changed
    # (a closed client leaves the server's side in CLOSE_WAIT, its own in FIN_WAIT2 / TIME_WAIT).
    plan = [1, 3, 2, 0, 2]
    with RecordingWriter(path, interval=0.2) as writer:
        for wanted in plan:
            while len(clients) < wanted:
                clients.append(spawn_peer("client", str(server.port), "--name", "ns-rec-client"))
            while len(clients) > wanted:
                gone = clients.pop(0)
                gone.process.kill()
                gone.process.wait(timeout=10)
            time.sleep(0.2)
            diff = collector.next_diff()
            live.append((diff.snapshot.taken_at, copy_sockets(diff.snapshot), diff))
            writer.write(diff)
    with RecordingReader(path) as reader:
        assert reader.damage is None and reader.complete
        assert len(reader) == len(plan)
        assert reader.timestamps == [taken_at for taken_at, _, _ in live]
        replayed = list(reader)
        for (taken_at, sockets, diff), again in zip(live, replayed, strict=True):
            assert again.snapshot.taken_at == taken_at
            assert again.snapshot.sockets == sockets  # every socket, every field
            assert again.first == diff.first
            if not diff.first:
                assert sorted(s.key for s in again.added) == sorted(s.key for s in diff.added)
                assert sorted(s.key for s in again.removed) == sorted(s.key for s in diff.removed)
                assert sorted(again.changed, key=lambda s: s.key) == sorted(diff.changed, key=lambda s: s.key)
        # Random access gives the same snapshots as playing through, in any order.
        for index in (3, 0, 4, 1):
            assert reader.snapshot_at(index).sockets == live[index][1]

    def established(sockets: dict[SocketKey, Socket]) -> int:
        # By whole endpoint: on a busy machine other loopback sockets use the same port number on other addresses.
        ends = ("127.0.0.1", server.port)
        return sum(
            1
            for s in sockets.values()
            if s.state == "ESTABLISHED" and ends in ((s.local_ip, s.local_port), (s.remote_ip, s.remote_port))
        )

    # The recording saw the load change as planned: two sockets per connected client.
    assert [established(sockets) for _, sockets, _ in live] == [2 * n for n in plan]
    listener = [s for s in live[0][1].values() if s.local_port == server.port and s.state == "LISTEN"]
    assert [(s.pid, s.program) for s in listener] == [(server.pid, "ns-rec-server")]


def test_diffs_replay_exactly_across_keyframes(tmp_path: Path) -> None:
    diffs = list(synthetic(40, n=200))
    path = tmp_path / "k.nsrec"
    # A keyframe every 10 s of recording: replay must give the same diffs across them as the live ones.
    writer = record(path, diffs, keyframe_seconds=10.0)
    assert writer.keyframes == 4
    with RecordingReader(path) as reader:
        assert reader.keyframes == [0, 10, 20, 30]
        for replayed, live in zip(reader, diffs, strict=True):
            assert_same_diff(replayed, live)
        # Starting in the middle gives a full reload there, then the same diffs.
        started = list(reader.diffs(start=25))
        assert started[0].first and started[0].snapshot.sockets == diffs[25].snapshot.sockets
        for replayed, live in zip(started[1:], diffs[26:], strict=True):
            assert_same_diff(replayed, live)


def test_a_restart_of_the_source_replays_as_a_reload(tmp_path: Path) -> None:
    diffs = list(synthetic(6, n=50))
    restarted = diffs[3]
    diffs[3] = SnapshotDiff(restarted.snapshot, list(restarted.snapshot.sockets.values()), [], [], first=True)
    path = tmp_path / "r.nsrec"
    record(path, diffs)
    with RecordingReader(path) as reader:
        flags = [diff.first for diff in reader]
    assert flags == [True, False, False, True, False, False]


def test_owner_fields_warnings_and_odd_values_survive(tmp_path: Path) -> None:
    at = 1_763_900_000.25
    sockets = [
        Socket("tcp6", "::1", 22, "::", 0, "LISTEN", 0, 128, 77, 0, "root", 1, "sshd", first_seen=0.0),
        Socket("udp", "0.0.0.0", 68, "0.0.0.0", 0, "UNCONN", 5, 0, 78, 0, "root", None, "", at, True),
        Socket("tcp", "10.0.0.1", 80, "10.0.0.2", 5000, "TIME_WAIT", 0, 0, 0, 0, "", None, "", at - 3.5),
        # Attacker-chosen text is kept exactly (escaping is the printer's job): escapes, bidi, surrogates.
        Socket("tcp", "10.0.0.1", 81, "10.0.0.3", 5001, "ESTABLISHED", 1, 2, 79, 1000, "\u202eevil", 4242,
               "\x1b[31mred\udcff", first_seen=at),
    ]
    snapshot = Snapshot(at, {s.key: s for s in sockets}, owners_incomplete=True, warnings=["not root"],
                        collect_seconds=0.012345)  # fmt: skip
    first = diff_snapshots(None, snapshot)
    later = Snapshot(at + 1, dict(snapshot.sockets), warnings=[], collect_seconds=0.5)
    changed = sockets[3].replaced(state="CLOSE_WAIT", recv_q=9, pid=None, program="")
    later.sockets[changed.key] = changed
    second = diff_snapshots(snapshot, later)
    path = tmp_path / "odd.nsrec"
    record(path, [first, second])
    with RecordingReader(path) as reader:
        one, two = list(reader)
    assert one.snapshot.sockets == snapshot.sockets
    assert (one.snapshot.owners_incomplete, one.snapshot.warnings, one.snapshot.collect_seconds) == (
        True, ["not root"], 0.012345)  # fmt: skip
    assert two.snapshot.sockets == later.sockets
    assert (two.snapshot.owners_incomplete, two.snapshot.warnings) == (False, [])
    assert two.changed == [changed] and two.changed_before == [sockets[3]]


# --- damage ------------------------------------------------------------------------------------------------------


@pytest.fixture
def small_recording(tmp_path: Path) -> tuple[Path, list[SnapshotDiff]]:
    diffs = list(synthetic(12, n=40, churn=0.1))
    path = tmp_path / "small.nsrec"
    writer = record(path, diffs, keyframe_seconds=5.0)
    assert writer.keyframes == 3  # frames 0, 5 and 10: the tests below rely on it
    return path, diffs


def test_truncation_at_every_byte_of_the_last_frames(
    small_recording: tuple[Path, list[SnapshotDiff]], tmp_path: Path
) -> None:
    path, diffs = small_recording
    data = path.read_bytes()
    ends = frame_ends(data)
    assert len(ends) == len(diffs) + 1  # and the end marker
    cut_path = tmp_path / "cut.nsrec"
    checked = 0
    for cut in range(ends[-5], len(data)):
        cut_path.write_bytes(data[:cut])
        whole = sum(1 for end in ends[:-1] if end <= cut)
        with RecordingReader(cut_path) as reader:
            assert len(reader) == whole, cut
            assert not reader.complete
            if cut in ends:  # cut exactly between frames: a sound, unfinished recording
                assert reader.damage is None
            else:
                damage = reader.damage
                assert damage is not None and damage.truncated and damage.readable_frames == whole
                clock = time.strftime("%H:%M:%S", time.localtime(diffs[whole - 1].snapshot.taken_at))
                assert str(damage) == (
                    f"recording truncated after frame {whole} at {clock}; the first {whole} frames are readable"
                )
                with pytest.raises(RecordingDamaged):
                    reader.check()
            # Everything before the cut reads back intact, also by playing through until the error.
            for index in (0, whole - 1, whole // 2):
                assert reader.snapshot_at(index).sockets == diffs[index].snapshot.sockets
            seen = []
            with pytest.raises(RecordingDamaged) if reader.damage else _no_error():
                for diff in reader:
                    seen.append(diff.snapshot.taken_at)
            assert seen == [d.snapshot.taken_at for d in diffs[:whole]]
        checked += 1
    assert checked > 500  # the last four frames and the end marker, byte by byte


class _no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_a_file_cut_inside_its_first_frame_or_header(small_recording: tuple[Path, list[SnapshotDiff]],
                                                      tmp_path: Path) -> None:  # fmt: skip
    path, _ = small_recording
    data = path.read_bytes()
    first_end = frame_ends(data)[0]
    cut = tmp_path / "cut.nsrec"
    cut.write_bytes(data[: first_end - 1])
    with RecordingReader(cut) as reader:
        assert len(reader) == 0
        assert reader.damage is not None and "no frame is readable" in str(reader.damage)
    for size in (0, 5, len(MAGIC) + 3):
        cut.write_bytes(data[:size])
        with pytest.raises(NotARecording):
            RecordingReader(cut)
    cut.write_bytes(b"GIF89a" + data[6:])
    with pytest.raises(NotARecording, match="is not a netscope recording"):
        RecordingReader(cut)


@pytest.mark.parametrize("where", ["payload", "length", "sync", "time"])
def test_a_flipped_byte_loses_only_the_frames_up_to_the_next_keyframe(
    small_recording: tuple[Path, list[SnapshotDiff]], tmp_path: Path, where: str
) -> None:
    path, diffs = small_recording
    data = bytearray(path.read_bytes())
    ends = frame_ends(bytes(data))
    # Frames 0, 5 and 10 are keyframes (one every 5 s); damage frame 2, a delta.
    start = ends[1]
    offset = {"payload": ends[2] - 3, "length": start + 6, "sync": start + 1, "time": start + 12}[where]
    data[offset] ^= 0x40
    damaged = tmp_path / "flipped.nsrec"
    damaged.write_bytes(bytes(data))
    with RecordingReader(damaged) as reader:
        damage = reader.damage
        assert damage is not None and not damage.truncated
        assert damage.readable_frames == 2 and damage.bad_frame == 3
        reason = {
            "payload": "it fails its checksum",
            "length": "its length runs past the end of the file",
            "sync": "the bytes there are not a frame",
            "time": "it fails its checksum",
        }[where]
        assert re.fullmatch(
            rf"recording damaged after frame 2 at \d\d:\d\d:\d\d \(frame 3: {reason}\); the frames up to the "
            r"next keyframe at \d\d:\d\d:\d\d are lost, the rest is readable",
            str(damage),
        ), str(damage)
        # Frames 0-1 and 5-11 are readable; 2-4 were lost with the delta they build on.
        kept = [0, 1, *range(5, 12)]
        assert reader.timestamps == [diffs[i].snapshot.taken_at for i in kept]
        for index, original in enumerate(kept):
            assert reader.snapshot_at(index).sockets == diffs[original].snapshot.sockets
        replayed = []
        with pytest.raises(RecordingDamaged):
            replayed.extend(reader)
        assert [d.first for d in replayed] == [True, False, True, False, False, False, False, False, False]
        for diff, original in zip(replayed[3:], kept[3:], strict=True):
            assert_same_diff(diff, diffs[original])


def test_a_damaged_header_is_not_a_recording(small_recording: tuple[Path, list[SnapshotDiff]],
                                             tmp_path: Path) -> None:  # fmt: skip
    path, _ = small_recording
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 10] ^= 1
    broken = tmp_path / "header.nsrec"
    broken.write_bytes(bytes(data))
    with pytest.raises(NotARecording, match="header is damaged"):
        RecordingReader(broken)


def _forge(path: Path, payload: bytes, kind: int = 1, seq: int = 1) -> None:
    """Append a frame with a correct checksum around whatever payload: what a crafted file could hold."""
    head = struct.pack("!IdBI", len(payload), 1_763_900_100.0, kind, seq)
    crc = zlib.crc32(payload, zlib.crc32(head))
    with open(path, "ab") as file:
        file.write(SYNC + head + struct.pack("!I", crc) + payload)


@pytest.mark.parametrize(
    "body",
    [
        b'{"s": [["tcp", "1.2.3.4", 1, "5.6.7.8", 2, "ESTABLISHED", 0, 0, 1, 0, {"a": 1}, null, "", null, 0]]}',
        b'{"s": [["icmp", "1.2.3.4", 1, "5.6.7.8", 2, "ESTABLISHED", 0, 0, 1, 0, "u", null, "", null, 0]]}',
        b'{"s": [[1, 2, 3]]}',
        b'{"s": "nope"}',
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" * 50,
        b"not json",
    ],
)
def test_a_crafted_frame_is_refused_in_plain_words(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "crafted.nsrec"
    with RecordingWriter(path) as writer:
        writer.write(next(synthetic(1, n=3)))
    data = path.read_bytes()
    path.write_bytes(data[: frame_ends(data)[0]])  # drop the end marker
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    _forge(path, packer.compress(body) + packer.flush())
    with RecordingReader(path) as reader:
        assert len(reader) == 2 and reader.damage is None  # sound frames, as far as checksums go
        assert len(reader.snapshot_at(0).sockets) == 3
        with pytest.raises(RecordingDamaged, match="frame 2 of the recording passes its checksum but cannot be"):
            reader.snapshot_at(1)


# --- size and seeking --------------------------------------------------------------------------------------------


def test_an_hour_of_churn_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "hour.nsrec"
    diffs = synthetic(3600, n=1000, churn=0.02)
    kept: dict[int, dict[SocketKey, Socket]] = {}
    started = time.perf_counter()
    with RecordingWriter(path) as writer:
        for index, diff in enumerate(diffs):
            writer.write(diff)
            if index in (0, 1234, 3599):
                kept[index] = dict(diff.snapshot.sockets)
    elapsed = time.perf_counter() - started
    size = path.stat().st_size
    print(f"an hour of churn: {size:,} bytes, {writer.keyframes} keyframes, written in {elapsed:.1f} s")
    assert size < HOUR_OF_CHURN_BOUND
    # Bounded by the churn, not the table: keyframes stay a minority of the file.
    assert writer.keyframes < 60
    with RecordingReader(path) as reader:
        assert len(reader) == 3600 and reader.complete
        for index, sockets in kept.items():
            assert reader.snapshot_at(index).sockets == sockets


def test_seek_by_time(small_recording: tuple[Path, list[SnapshotDiff]]) -> None:
    path, diffs = small_recording
    times = [d.snapshot.taken_at for d in diffs]
    with RecordingReader(path) as reader:
        assert reader.start_time == times[0] and reader.end_time == times[-1]
        assert reader.index_at(times[0] - 100) == 0  # before the start: the first frame
        assert reader.index_at(times[-1] + 100) == len(times) - 1  # after the end: the last
        for index, at in enumerate(times):
            assert reader.index_at(at) == index
            assert reader.index_at(at + 0.5) == index  # between frames: the one on screen then
            assert reader.snapshot_at_time(at + 0.5).sockets == diffs[index].snapshot.sockets
        assert reader.snapshot_at(-1).sockets == diffs[-1].snapshot.sockets
        with pytest.raises(IndexError):
            reader.snapshot_at(len(times))


# --- sources for the UI ------------------------------------------------------------------------------------------


async def _next(stream: object, timeout: float = 5.0) -> SnapshotDiff | CollectionFailure:
    return await asyncio.wait_for(stream.__anext__(), timeout)  # type: ignore[attr-defined]


class Pump:
    """Reads a source's stream in a task, as the UI does, into a queue the test takes from with timeouts (a
    timeout on the stream itself would cancel, and so end, the async generator)."""

    def __init__(self, source: ReplaySource) -> None:
        self.queue: asyncio.Queue[SnapshotDiff | CollectionFailure] = asyncio.Queue()
        self.task = asyncio.create_task(self._run(source))

    async def _run(self, source: ReplaySource) -> None:
        async for update in source.stream():
            await self.queue.put(update)

    async def next(self, timeout: float = 5.0) -> SnapshotDiff:
        update = await asyncio.wait_for(self.queue.get(), timeout)
        assert isinstance(update, SnapshotDiff), update
        return update

    async def nothing_for(self, seconds: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.queue.get(), seconds)
            return False
        return True


async def test_replay_source_steps_jumps_plays_and_pauses(
    small_recording: tuple[Path, list[SnapshotDiff]],
) -> None:
    path, diffs = small_recording
    source = ReplaySource(path, speed=50.0, playing=False)  # playing, one recorded second takes 20 ms
    assert source.is_replay and source.frame_count == 12
    pump = Pump(source)
    first = await pump.next()
    assert first.first and first.snapshot.sockets == diffs[0].snapshot.sockets and source.position == 0
    assert await pump.nothing_for(0.3)  # paused: nothing comes
    # A step forward gives the recorded diff; a step back, a full reload of the frame before.
    for index in (1, 2):
        source.step(1)
        assert_same_diff(await pump.next(), diffs[index])
    source.step(-1)
    back = await pump.next()
    assert back.first and back.snapshot.sockets == diffs[1].snapshot.sockets and source.position == 1
    # Jumps by time and by frame reload the table.
    source.seek_time(diffs[8].snapshot.taken_at + 0.5)
    jumped = await pump.next()
    assert jumped.first and jumped.snapshot.sockets == diffs[8].snapshot.sockets and source.position == 8
    source.seek_frame(-1)
    last = await pump.next()
    assert last.snapshot.sockets == diffs[11].snapshot.sockets and source.at_end
    # Playing from frame 0: every recorded diff in order, spaced by the recorded gaps over the speed.
    source.seek_frame(0)
    source.play()
    assert (await pump.next()).first
    started = time.monotonic()
    for index in range(1, 12):
        assert_same_diff(await pump.next(), diffs[index])
    assert time.monotonic() - started >= 11 * 0.9 / 50
    assert await pump.nothing_for(0.3)  # at the end it stops and waits rather than ending the stream
    assert not source.playing and source.at_end and "frame 12/12" in source.describe()
    # Play at the end starts over; pause stops at once.
    source.set_speed(0.5)  # two seconds a frame: a pause in between is sure to land
    source.play()
    assert (await pump.next()).first and source.position == 0
    source.pause()
    assert await pump.nothing_for(2.5)
    with pytest.raises(ValueError):
        source.set_speed(0)
    await source.aclose()
    await asyncio.wait_for(pump.task, 5)  # the stream ends once the source is closed


async def test_replay_source_reports_damage_and_plays_what_is_readable(
    small_recording: tuple[Path, list[SnapshotDiff]], tmp_path: Path
) -> None:
    path, diffs = small_recording
    data = path.read_bytes()
    cut = tmp_path / "cut.nsrec"
    cut.write_bytes(data[: frame_ends(data)[6] - 10])  # frames 0-5 whole, frame 6 cut
    source = ReplaySource(cut, speed=1000.0)
    pump = Pump(source)
    failure = await asyncio.wait_for(pump.queue.get(), 5)
    assert isinstance(failure, CollectionFailure)
    assert "recording truncated after frame 6" in failure.message and source.damage
    seen = [await pump.next() for _ in range(6)]
    assert [d.snapshot.sockets for d in seen] == [d.snapshot.sockets for d in diffs[:6]]
    assert await pump.nothing_for(0.3) and source.at_end
    await source.aclose()
    await asyncio.wait_for(pump.task, 5)


async def test_recording_tee_records_what_the_live_source_gives(tmp_path: Path) -> None:
    path = tmp_path / "tee.nsrec"
    source = RecordingTee(ConnectionCollector(interval=0.2), RecordingWriter(path, interval=0.2))
    assert source.interval == 0.2 and not source.is_replay and source.recording
    stream = source.stream()
    seen: list[dict[SocketKey, Socket]] = []
    for _ in range(3):
        update = await _next(stream, timeout=60)
        assert isinstance(update, SnapshotDiff)
        seen.append(copy_sockets(update.snapshot))
    await _next(stream, timeout=60)  # the tee writes a diff once it has been handed on: ask for one more
    await stream.aclose()
    await source.aclose()
    with RecordingReader(path) as reader:
        assert reader.complete and len(reader) >= 3
        assert [reader.snapshot_at(i).sockets for i in range(3)] == seen


def test_writer_refuses_writes_after_close(tmp_path: Path) -> None:
    writer = record(tmp_path / "closed.nsrec", list(synthetic(2, n=5)))
    writer.close()  # twice is fine
    with pytest.raises(ValueError):
        writer.write(next(synthetic(1, n=5)))
    assert os.path.getsize(tmp_path / "closed.nsrec") == writer.bytes_written
