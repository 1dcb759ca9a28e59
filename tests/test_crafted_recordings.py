"""Recordings crafted to hurt: valid checksums around impossible times, bombs and values out of range. Each is
refused in words, by the reader, the printed outputs and the replay UI alike; none crashes or hangs netscope."""

from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from support import wait_for
from test_recording import frame_ends, synthetic

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.recording import (
    INFLATE_RATIO,
    SYNC,
    RecordingDamaged,
    RecordingReader,
    RecordingWriter,
    ReplaySource,
)

NETSCOPE = [sys.executable, "-m", "netscope"]
GOOD_ROW = ["tcp", "1.2.3.4", 1, "5.6.7.8", 2, "ESTABLISHED", 0, 0, 1, 0, "u", None, "", None, 0]


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def crafted(tmp_path: Path, payload: bytes, *, taken_at: float = 1_763_900_100.0, kind: int = 1,
            seq: int = 1) -> Path:
    """Three sound frames from a real writer, then one frame with a correct checksum around `payload`."""
    path = tmp_path / "crafted.nsrec"
    with RecordingWriter(path) as writer:
        for diff in synthetic(3, n=3):
            writer.write(diff)
    data = path.read_bytes()
    head = struct.pack("!IdBI", len(payload), taken_at, kind, seq)
    frame = SYNC + head + struct.pack("!I", zlib.crc32(payload, zlib.crc32(head))) + payload
    path.write_bytes(data[: frame_ends(data)[2]] + frame)  # the end marker dropped, the crafted frame after
    return path


def netscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=60)


def test_a_frame_time_out_of_range_is_damage_not_a_crash(tmp_path: Path) -> None:
    path = crafted(tmp_path, deflate(json.dumps({"s": [GOOD_ROW]}).encode()), taken_at=1e300, kind=1, seq=0)
    with RecordingReader(path) as reader:
        assert len(reader) == 3 and reader.damage is not None
    # --info prints what it found; the one-moment outputs warn and print the moment; --watch prints every readable
    # frame, then ends with status 1 as it does for any damaged recording.
    for args, status in ((["--info"], 0), (["--json"], 0), (["--at", "+1", "--json"], 0), (["--watch"], 1)):
        result = netscope("--replay", str(path), *args)
        assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr, args
        assert result.returncode == status and "its header is damaged" in result.stdout + result.stderr, args


@pytest.mark.parametrize(("field", "value", "words"), [
    (14 - 1, 1e300, "outside the years 1970 to 9999"),  # first_seen
    (2, 70000, "a port 70000 is out of range"),
    (11, 2**40, "a PID 1099511627776 is out of range"),
    (1, "1.2.3.4\x1b[31m", "is not an IP address"),
    (5, "BOGUS", "unknown state"),
    (12, "x" * 5000, "a program name is 5,000 characters long"),
])  # fmt: skip
def test_decoded_fields_are_range_checked(tmp_path: Path, field: int, value: object, words: str) -> None:
    row = list(GOOD_ROW)
    row[field] = value
    path = crafted(tmp_path, deflate(json.dumps({"s": [row]}).encode()), kind=1, seq=1)
    with RecordingReader(path) as reader, pytest.raises(RecordingDamaged, match=words):
        reader.snapshot_at(3)


def test_a_delta_that_refers_to_an_unknown_socket_says_so(tmp_path: Path) -> None:
    path = crafted(tmp_path, deflate(b'{"a": [], "x": [], "r": [-1]}'), kind=0, seq=3)
    with RecordingReader(path) as reader, pytest.raises(
        RecordingDamaged, match="it refers to socket number -1, which no frame since the last keyframe added"
    ):
        reader.snapshot_at(3)


def test_a_decompression_bomb_stops_at_its_bound_quickly_and_small(tmp_path: Path) -> None:
    bomb = deflate(b'{"s": [' + b" " * (500 << 20) + b"]}")  # about 500 KB that would inflate to 500 MiB
    path = crafted(tmp_path, bomb, kind=1, seq=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()
    with RecordingReader(path) as reader, pytest.raises(RecordingDamaged, match=f"over {INFLATE_RATIO} times"):
        reader.snapshot_at(3)
    # Bounded by the ratio: at most 128 x 0.5 MB is ever inflated (before: 8 s of CPU and 1 GB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB: under 200 MiB
    assert time.process_time() - started < 5


async def test_the_replay_ui_shows_what_is_readable_of_a_crafted_recording(tmp_path: Path) -> None:
    path = crafted(tmp_path, deflate(json.dumps({"s": [GOOD_ROW]}).encode()), taken_at=1e300, kind=1, seq=0)
    app = NetscopeApp(source=ReplaySource(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 3)
        await pilot.press("full_stop", "full_stop", "right_square_bracket")
        await pilot.pause(0.5)  # a crash in the app (as 1e300 once did) would be raised here by run_test
