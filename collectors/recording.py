"""Recording snapshots to a file and replaying them (`netscope --record FILE`, `netscope --replay FILE`).

No Textual here: the one-shot CLI, the headless recorder and the UI all use this module.

File format, version 1 (integers big-endian):

    file header   magic b"\\x89NETSCOPE\\r\\n\\x1a\\n" (12 bytes), version u16, length u32, that many bytes of
                  UTF-8 JSON (format, version, created, hostname, netscope, interval), CRC-32 u32 of all of it
    frame ...     sync b"\\x89NSF", length u32, taken_at f64 (time.time()), kind u8, CRC-32 u32 of length..kind
                  and the payload, then `length` bytes of payload: raw deflate of compact JSON
    end frame     kind 2, no payload: written by close(), so a reader can tell a finished recording from a
                  process that was killed

Kinds: 1 keyframe (every socket), 0 delta (what changed since the frame before), 2 end. A keyframe's payload is
`{"s": [row ...], "f": reload, "o": owners_incomplete, "w": [warning ...], "c": collect_seconds}`; a delta's is
`{"a": [row ...], "x": [[id, state, recv_q, send_q, inode, uid, user, pid, program] ...], "r": [id ...], "o", "c"}`
plus `"w"` only when the warnings changed. A row is `[proto, local_ip, local_port, remote_ip, remote_port, state,
recv_q, send_q, inode, uid, user, pid, program, first_seen, seen_since_start]`, first_seen null meaning the
frame's own time. Sockets are referred to by id: a keyframe numbers its rows 0, 1, 2 ... and each later added
socket takes the next number, so a closed or changed socket costs a few bytes instead of its whole address.
Deltas are compressed with the last keyframe's JSON as deflate's preset dictionary: addresses, program and user
names already seen compress to back-references.

Why this shape: a frame is written with one write() and flushed, and carries its own length and checksum, so a
process killed mid-write leaves every earlier frame readable and the reader says exactly where the file ends. A
keyframe is written at the start, whenever the source starts over, and whenever the deltas since the last one add
up to `keyframe_ratio` times its size or `keyframe_seconds` have passed: keyframes stay a bounded share of the file
(its size follows the churn, not the number of sockets), seeking decodes one keyframe and a bounded run of
deltas, and a damaged frame loses only the frames up to the next keyframe, where reading resumes (the sync marker
finds it). Payloads are JSON, never pickle: a recording may come from someone else, and loading it must not run
code; every decoded value is type-checked before it becomes a Socket.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import mmap
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from netscope import __version__
from netscope.collectors.connections import CollectionFailure, SnapshotSource
from netscope.collectors.model import PROTOCOLS, Snapshot, SnapshotDiff, Socket, SocketKey

MAGIC = b"\x89NETSCOPE\r\n\x1a\n"
VERSION = 1
_FILE_HEAD = struct.Struct("!HI")  # version, header JSON length
_U32 = struct.Struct("!I")
SYNC = b"\x89NSF"
_FRAME = struct.Struct("!4sIdBI")  # sync, payload length, taken_at, kind, crc
FRAME_HEADER_SIZE = _FRAME.size  # 21
_CRC_FROM = 4  # the CRC covers the header from the length on (not the sync marker), then the payload
_CRC_TO = 17

DELTA, KEYFRAME, END = 0, 1, 2
_KINDS = (DELTA, KEYFRAME, END)

# A payload larger than this (compressed or not) is treated as damage: 100,000 sockets take about 10 MB of JSON,
# and a damaged length field or a crafted deflate stream must not make the reader allocate without bound.
MAX_PAYLOAD = 512 << 20
_ZDICT_LIMIT = 32 << 10  # deflate's window: only the last 32 KiB of a preset dictionary are ever used
_HEADER_LIMIT = 1 << 20

_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


# --- errors ------------------------------------------------------------------------------------------------------


class RecordingError(Exception):
    """Anything wrong with a recording file, said in plain words."""


class NotARecording(RecordingError):
    """The file is not a netscope recording, or its header is damaged: nothing in it can be read."""


class RecordingDamaged(RecordingError):
    """Part of a recording is truncated or corrupt. Everything before the damage (and after the next keyframe,
    when reading could resume there) stays readable; `readable_frames` says how many frames are."""

    def __init__(
        self, message: str, *, readable_frames: int, bad_frame: int, truncated: bool, at_time: float | None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.readable_frames = readable_frames
        self.bad_frame = bad_frame  # 1-based number the first unreadable frame would have had
        self.truncated = truncated  # the file ends inside a frame (a killed writer), rather than bad bytes
        self.at_time = at_time  # taken_at of the last good frame before the damage, if any


def _clock(seconds: float | None, first: float | None = None) -> str:
    """12:03:04, with the date when it is not the recording's first day (the reader then knows which 12:03)."""
    if seconds is None:
        return "the start"
    local = time.localtime(seconds)
    if first is not None and time.localtime(first)[:3] != local[:3]:
        return time.strftime("%Y-%m-%d %H:%M:%S", local)
    return time.strftime("%H:%M:%S", local)


# --- encoding ----------------------------------------------------------------------------------------------------

_PROTOCOL_SET = frozenset(PROTOCOLS)
Row = list[Any]


def _row(sock: Socket, taken_at: float) -> Row:
    return [
        sock.proto, sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port, sock.state,
        sock.recv_q, sock.send_q, sock.inode, sock.uid, sock.user, sock.pid, sock.program,
        None if sock.first_seen == taken_at else sock.first_seen, 1 if sock.seen_since_start else 0,
    ]  # fmt: skip


def _change(ident: int, sock: Socket) -> Row:
    # Endpoints are the identity and first_seen is carried over by the diff, so only these can differ.
    return [ident, sock.state, sock.recv_q, sock.send_q, sock.inode, sock.uid, sock.user, sock.pid, sock.program]


class _Bad(ValueError):
    """A decoded payload that does not have the shape this format promises."""


def _int(value: object) -> int:
    if type(value) is not int:  # bool is an int subclass: refuse it too
        raise _Bad(f"expected an integer, found {type(value).__name__}")
    return value


def _str(value: object) -> str:
    if type(value) is not str:
        raise _Bad(f"expected a string, found {type(value).__name__}")
    return value


def _pid(value: object) -> int | None:
    return None if value is None else _int(value)


def _float(value: object) -> float:
    if type(value) is float or type(value) is int:
        with contextlib.suppress(OverflowError):  # an integer too big for a float
            number = float(value)
            if math.isfinite(number):
                return number
    raise _Bad(f"expected a finite number, found {str(value)[:40]}")


def _socket(row: object, taken_at: float) -> Socket:
    if type(row) is not list or len(row) != 15:
        raise _Bad("a socket row is not a list of 15 fields")
    proto, lip, lport, rip, rport, state, rq, sq, inode, uid, user, pid, program, first, since = row
    if proto not in _PROTOCOL_SET:
        raise _Bad(f"unknown protocol {proto!r:.20}")
    return Socket(
        proto, _str(lip), _int(lport), _str(rip), _int(rport), _str(state), _int(rq), _int(sq), _int(inode),
        _int(uid), _str(user), _pid(pid), _str(program),
        taken_at if first is None else _float(first), bool(_int(since)),
    )  # fmt: skip


def _changed_socket(row: object, before: Socket) -> Socket:
    if type(row) is not list or len(row) != 9:
        raise _Bad("a changed-socket row is not a list of 9 fields")
    _, state, rq, sq, inode, uid, user, pid, program = row
    return Socket(
        before.proto, before.local_ip, before.local_port, before.remote_ip, before.remote_port, _str(state),
        _int(rq), _int(sq), _int(inode), _int(uid), _str(user), _pid(pid), _str(program),
        before.first_seen, before.seen_since_start,
    )  # fmt: skip


def _compress(data: bytes, zdict: bytes = b"") -> bytes:
    # Raw deflate (no zlib header or Adler-32): the frame's CRC already guards it, and small deltas save 6 bytes.
    # Level 9 for deltas (small: it costs nothing); 6 for keyframes, where 9 is 5x slower for 10% less size
    # (measured at 100,000 sockets: 0.12 s against 0.6 s).
    if zdict:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=zdict)
    else:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _decompress(data: bytes, zdict: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, zdict=zdict) if zdict else zlib.decompressobj(-15)
    out = unpacker.decompress(data, MAX_PAYLOAD)
    if unpacker.unconsumed_tail:
        raise _Bad(f"it expands to more than {MAX_PAYLOAD >> 20} MiB")
    if not unpacker.eof:
        raise _Bad("its compressed data ends early")
    return out


# --- writing -----------------------------------------------------------------------------------------------------


class RecordingWriter:
    """Writes SnapshotDiffs to a recording file, one flushed frame each. Not thread-safe: call from one thread.

    `write()` blocks for the encoding and the write: about 0.4 ms for a delta of a few dozen sockets, 0.3 to
    0.5 s for a keyframe of 100,000 sockets (run it in a thread from an event loop: RecordingTee does). The file
    is created (or truncated) at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        keyframe_ratio: float = 4.0,
        keyframe_seconds: float = 600.0,
        fsync: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.keyframe_ratio = keyframe_ratio
        self.keyframe_seconds = keyframe_seconds
        self.fsync = fsync  # survive a power cut too, at one disk sync per frame
        self.frames = 0
        self.keyframes = 0
        self.closed = False
        self._file = open(self.path, "wb")  # noqa: SIM115 - held open across writes, closed by close()
        self._ids: dict[SocketKey, int] = {}
        self._next_id = 0
        self._zdict = b""
        self._keyframe_at = 0.0
        self._keyframe_bytes = 0
        self._delta_bytes = 0
        self._warnings: list[str] | None = None
        header = _JSON.encode({
            "format": "netscope recording",
            "version": VERSION,
            "created": time.time(),
            "hostname": socket.gethostname(),
            "netscope": __version__,
            "interval": interval,
        }).encode("ascii")
        head = MAGIC + _FILE_HEAD.pack(VERSION, len(header)) + header
        self._file.write(head + _U32.pack(zlib.crc32(head)))
        self._file.flush()
        self.bytes_written = len(head) + _U32.size

    def write(self, diff: SnapshotDiff) -> None:
        if self.closed:
            raise ValueError("write to a closed RecordingWriter")
        snapshot = diff.snapshot
        taken_at = snapshot.taken_at
        if not (
            diff.first
            or self.frames == 0
            or self._delta_bytes >= self.keyframe_ratio * self._keyframe_bytes
            or taken_at - self._keyframe_at >= self.keyframe_seconds
        ):
            payload = self._delta(diff)
            if payload is not None:
                data = _compress(payload, self._zdict)
                self._delta_bytes += len(data)
                self._frame(DELTA, taken_at, data)
                return
        self._keyframe(diff)

    def _keyframe(self, diff: SnapshotDiff) -> None:
        snapshot = diff.snapshot
        taken_at = snapshot.taken_at
        rows = [_row(sock, taken_at) for sock in snapshot.sockets.values()]
        payload = _JSON.encode({
            "s": rows,
            "f": diff.first,
            "o": snapshot.owners_incomplete,
            "w": snapshot.warnings,
            "c": round(snapshot.collect_seconds, 6),
        }).encode("ascii")
        self._ids = {key: ident for ident, key in enumerate(snapshot.sockets)}
        self._next_id = len(self._ids)
        self._zdict = payload[-_ZDICT_LIMIT:]
        self._warnings = list(snapshot.warnings)
        data = _compress(payload)
        self._keyframe_at, self._keyframe_bytes, self._delta_bytes = taken_at, len(data), 0
        self.keyframes += 1
        self._frame(KEYFRAME, taken_at, data)

    def _delta(self, diff: SnapshotDiff) -> bytes | None:
        """The delta's JSON, or None when the diff does not fit what was written (then a keyframe is safer)."""
        snapshot = diff.snapshot
        ids = self._ids
        if any(sock.key not in ids for sock in diff.removed) or any(sock.key not in ids for sock in diff.changed):
            return None
        if any(sock.key in ids for sock in diff.added):
            return None
        if len(ids) - len(diff.removed) + len(diff.added) != len(snapshot.sockets):
            return None  # the diff's lists and its snapshot disagree: record the snapshot itself
        removed = [ids.pop(sock.key) for sock in diff.removed]
        changes = [_change(ids[sock.key], sock) for sock in diff.changed]
        rows = [_row(sock, snapshot.taken_at) for sock in diff.added]
        for sock in diff.added:
            ids[sock.key] = self._next_id
            self._next_id += 1
        body: dict[str, object] = {
            "a": rows,
            "x": changes,
            "r": removed,
            "o": snapshot.owners_incomplete,
            "c": round(snapshot.collect_seconds, 6),
        }
        if snapshot.warnings != self._warnings:
            body["w"] = snapshot.warnings
            self._warnings = list(snapshot.warnings)
        return _JSON.encode(body).encode("ascii")

    def _frame(self, kind: int, taken_at: float, data: bytes) -> None:
        head = _FRAME.pack(SYNC, len(data), taken_at, kind, 0)
        crc = zlib.crc32(data, zlib.crc32(head[_CRC_FROM:_CRC_TO]))
        # One write of the whole frame, then a flush: a kill can cut only the frame being written.
        self._file.write(head[:_CRC_TO] + _U32.pack(crc) + data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.bytes_written += FRAME_HEADER_SIZE + len(data)
        if kind != END:
            self.frames += 1

    def close(self) -> None:
        """Write the end marker and close. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            self._frame(END, time.time(), b"")
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reading -----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Index:
    """Where each readable frame is, and which keyframe it builds on."""

    offsets: list[int] = field(default_factory=list)  # of the payload
    lengths: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    base: list[int] = field(default_factory=list)  # index of the keyframe at or before each frame
    after_gap: list[bool] = field(default_factory=list)  # the first frame after damaged bytes


class RecordingReader:
    """Opens a recording, checks every frame's checksum once, and decodes snapshots on demand.

    Damage does not stop the opening: `damage` holds a RecordingDamaged describing it (or None), every readable
    frame can be read, and iterating raises that error after the last readable frame so a plain loop notices.
    A file that is not a recording at all raises NotARecording; an unreadable one, OSError.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.damage: RecordingDamaged | None = None
        self.complete = False  # the writer closed the file properly (an end marker follows the last frame)
        self._index = _Index()
        self._decoder: _Cursor | None = None
        self._problems: list[RecordingDamaged] = []
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self._map: mmap.mmap | bytes = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            self.header, start = self._read_header()
            self._scan(start)
        except BaseException:
            self.close()
            raise
        if self._problems:
            first = self._problems[0]
            more = len(self._problems) - 1
            if more:
                first.message += f" (and {more} more damaged place{'s' if more > 1 else ''} after it)"
                first.args = (first.message,)
            self.damage = first

    # --- scanning

    def _read_header(self) -> tuple[dict[str, Any], int]:
        data = self._map
        name = os.path.basename(self.path)
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise NotARecording(f"{name} is not a netscope recording (it does not start like one)")
        fixed_end = len(MAGIC) + _FILE_HEAD.size
        if len(data) < fixed_end + _U32.size:
            raise NotARecording(f"{name} ends inside its header: the recording was cut off before any frame")
        version, length = _FILE_HEAD.unpack_from(data, len(MAGIC))
        if version > VERSION:
            raise NotARecording(
                f"{name} is a version {version} recording, made by a newer netscope; "
                f"this one reads version {VERSION}"
            )
        end = fixed_end + length
        if length > _HEADER_LIMIT or len(data) < end + _U32.size:
            raise NotARecording(f"{name}: the recording's header is damaged or cut off; nothing can be read")
        (crc,) = _U32.unpack_from(data, end)
        if zlib.crc32(data[:end]) != crc:
            raise NotARecording(
                f"{name}: the recording's header is damaged (checksum mismatch); nothing can be read"
            )
        try:
            header = json.loads(bytes(data[fixed_end:end]))
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise NotARecording(f"{name}: the recording's header is damaged; nothing can be read")
        return header, end + _U32.size

    def _frame_at(self, pos: int) -> tuple[int, float, int] | str:
        """(length, taken_at, kind) of a sound frame at `pos`, else why not: "truncated", or a reason."""
        data = self._map
        if len(data) - pos < FRAME_HEADER_SIZE:
            return "truncated"
        sync, length, taken_at, kind, crc = _FRAME.unpack_from(data, pos)
        if sync != SYNC:
            return "the bytes there are not a frame"
        if kind not in _KINDS or length > MAX_PAYLOAD or not math.isfinite(taken_at):
            return "its header is damaged"
        start = pos + FRAME_HEADER_SIZE
        if start + length > len(data):
            # A damaged length can also point past the end; only a checksum could tell, and it is out of reach.
            return "truncated"
        view = memoryview(data)
        try:
            actual = zlib.crc32(view[start : start + length], zlib.crc32(view[pos + _CRC_FROM : pos + _CRC_TO]))
        finally:
            view.release()
        if actual != crc:
            return "it fails its checksum"
        return length, taken_at, kind

    def _scan(self, pos: int) -> None:
        index = self._index
        size = len(self._map)
        after_gap = False
        while pos < size:
            found = self._frame_at(pos)
            if isinstance(found, tuple):
                length, taken_at, kind = found
                if kind == END:
                    self.complete = pos + FRAME_HEADER_SIZE == size
                    return
                if kind == DELTA and (not index.offsets or after_gap):
                    found = "it is a delta with no keyframe before it"
                else:
                    self._add(pos, length, taken_at, kind, after_gap)
                    after_gap = False
                    pos += FRAME_HEADER_SIZE + length
                    continue
            resume = self._resync(pos + 1)
            self._note_damage(found, resume)
            if resume is None:
                return
            pos, after_gap = resume[0], True

    def _add(self, pos: int, length: int, taken_at: float, kind: int, after_gap: bool) -> None:
        index = self._index
        index.offsets.append(pos + FRAME_HEADER_SIZE)
        index.lengths.append(length)
        index.times.append(taken_at)
        index.kinds.append(kind)
        index.base.append(len(index.kinds) - 1 if kind == KEYFRAME else index.base[-1])
        index.after_gap.append(after_gap)

    def _resync(self, pos: int) -> tuple[int, float] | None:
        """The next sound keyframe (or end marker) after damaged bytes: (offset, its time), or None."""
        data = self._map
        while True:
            pos = data.find(SYNC, pos)
            if pos < 0:
                return None
            found = self._frame_at(pos)
            if isinstance(found, tuple) and found[2] in (KEYFRAME, END):
                return pos, found[1]
            # A sound delta here still depends on the lost frames: skip it whole; anything else, byte by byte.
            pos += FRAME_HEADER_SIZE + found[0] if isinstance(found, tuple) else 1

    def _note_damage(self, reason: str, resume: tuple[int, float] | None) -> None:
        index = self._index
        readable = len(index.times)
        first_time = index.times[0] if index.times else None
        last = index.times[-1] if index.times else None
        truncated = reason == "truncated" and resume is None
        if reason == "truncated":
            reason = "its length runs past the end of the file"
        where = f"after frame {readable} at {_clock(last, first_time)}" if readable else "before its first frame"
        if truncated:
            message = (
                f"recording truncated {where}; the first {readable} frames are readable"
                if readable
                else "recording truncated before its first frame was complete; no frame is readable"
            )
        elif resume is None:
            message = f"recording damaged {where} (frame {readable + 1}: {reason}); " + (
                f"the first {readable} frames are readable" if readable else "no frame is readable"
            )
        else:
            message = (
                f"recording damaged {where} (frame {readable + 1}: {reason}); the frames up to the next keyframe "
                f"at {_clock(resume[1], first_time or resume[1])} are lost, the rest is readable"
            )
        self._problems.append(
            RecordingDamaged(message, readable_frames=readable, bad_frame=readable + 1, truncated=truncated,
                             at_time=last)
        )  # fmt: skip

    # --- what is in it

    def __len__(self) -> int:
        return len(self._index.times)

    @property
    def timestamps(self) -> list[float]:
        """taken_at of every readable frame, in file order."""
        return self._index.times

    @property
    def keyframes(self) -> list[int]:
        return [i for i, kind in enumerate(self._index.kinds) if kind == KEYFRAME]

    @property
    def interval(self) -> float:
        value = self.header.get("interval")
        return float(value) if type(value) in (int, float) and value > 0 else 1.0

    @property
    def start_time(self) -> float | None:
        return self._index.times[0] if self._index.times else None

    @property
    def end_time(self) -> float | None:
        return self._index.times[-1] if self._index.times else None

    def index_at(self, when: float) -> int:
        """The frame on screen at time `when`: the last one taken at or before it (the first, if `when` is
        earlier). Raises IndexError on an empty recording."""
        if not self._index.times:
            raise IndexError("the recording holds no frames")
        return max(0, bisect.bisect_right(self._index.times, when) - 1)

    def check(self) -> None:
        """Raise `damage`, if any."""
        if self.damage is not None:
            raise self.damage

    def snapshot_at(self, index: int) -> Snapshot:
        """The full snapshot at frame `index` (negative: from the end). Raises IndexError, RecordingDamaged."""
        if self._decoder is None:
            self._decoder = self.cursor()
        return self._decoder.seek(self._normal(index)).snapshot

    def snapshot_at_time(self, when: float) -> Snapshot:
        return self.snapshot_at(self.index_at(when))

    def cursor(self) -> _Cursor:
        """An independent position in the recording: `seek(i)` and `step()` give SnapshotDiffs."""
        return _Cursor(self)

    def diffs(self, start: int = 0) -> Iterator[SnapshotDiff]:
        """Every frame's SnapshotDiff from `start` on: the first is a full reload (first=True), then each diff is
        against the frame before (first=True again after damaged bytes or where the source started over).
        Raises `damage` after the last readable frame."""
        cursor = self.cursor()
        if len(self):
            yield cursor.seek(self._normal(start))
            while (diff := cursor.step()) is not None:
                yield diff
        self.check()

    def __iter__(self) -> Iterator[SnapshotDiff]:
        return self.diffs()

    def _normal(self, index: int) -> int:
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"frame {index} is outside the recording's {count} frames")
        return index % count

    def _payload(self, index: int, zdict: bytes) -> tuple[dict[str, Any], bytes]:
        """Decode frame `index`: its JSON object and its raw bytes. Raises RecordingDamaged if undecodable."""
        start, length = self._index.offsets[index], self._index.lengths[index]
        try:
            raw = _decompress(bytes(self._map[start : start + length]), zdict)
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise _Bad("it is not a JSON object")
        except (ValueError, zlib.error, RecursionError) as error:  # _Bad and JSONDecodeError are ValueErrors
            raise self._undecodable(index, error) from None
        return body, raw

    def _undecodable(self, index: int, error: BaseException) -> RecordingDamaged:
        at = self._index.times[index - 1] if index else None
        return RecordingDamaged(
            f"frame {index + 1} of the recording passes its checksum but cannot be decoded ({error}); "
            f"frames before it are readable",
            readable_frames=index, bad_frame=index + 1, truncated=False, at_time=at,
        )  # fmt: skip

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._map = b""

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Cursor:
    """Decoding state at one frame of a recording: the sockets, by key and by the ids deltas refer to."""

    def __init__(self, reader: RecordingReader) -> None:
        self.reader = reader
        self.position = -1
        self.snapshot = Snapshot(0.0, {})
        self._sockets: dict[SocketKey, Socket] = {}
        self._by_id: dict[int, Socket] = {}
        self._next_id = 0
        self._warnings: list[str] = []
        self._zdict = b""

    def seek(self, index: int) -> SnapshotDiff:
        """Move to frame `index` and return its snapshot as a full reload (first=True)."""
        reader = self.reader
        base = reader._index.base[index]
        if not base <= self.position <= index:  # cannot walk forward from here: start at the keyframe
            self._load(base)
        while self.position < index:
            self._apply(self.position + 1)
        return SnapshotDiff(self.snapshot, added=list(self.snapshot.sockets.values()), changed=[], removed=[],
                            first=True)  # fmt: skip

    def step(self) -> SnapshotDiff | None:
        """Move to the next frame and return the diff from this one to it; None at the end."""
        index = self.position + 1
        if self.position < 0 or index >= len(self.reader):
            return None
        reader = self.reader
        if reader._index.kinds[index] == DELTA:
            return self._apply(index)
        before = self._sockets
        first = self._load(index) or reader._index.after_gap[index]
        if first:
            return SnapshotDiff(self.snapshot, added=list(self.snapshot.sockets.values()), changed=[], removed=[],
                                first=True)  # fmt: skip
        # A keyframe written only to bound seeking: give the same diff the live collector gave.
        now = self._sockets
        added = [sock for key, sock in now.items() if key not in before]
        changed: list[Socket] = []
        changed_before: list[Socket] = []
        for key, sock in now.items():
            old = before.get(key)
            if old is not None and not sock.same_content(old):
                changed.append(sock)
                changed_before.append(old)
        removed = [sock for key, sock in before.items() if key not in now]
        return SnapshotDiff(self.snapshot, added=added, changed=changed, removed=removed,
                            changed_before=changed_before)  # fmt: skip

    def _load(self, index: int) -> bool:
        """Load keyframe `index`; returns whether it marks a restart of the source (a reload)."""
        reader = self.reader
        taken_at = reader._index.times[index]
        body, raw = reader._payload(index, b"")
        try:
            rows = body["s"]
            if type(rows) is not list:
                raise _Bad("its socket list is not a list")
            by_id = {ident: _socket(row, taken_at) for ident, row in enumerate(rows)}
            sockets = {sock.key: sock for sock in by_id.values()}
            if len(sockets) != len(by_id):
                raise _Bad("it lists a socket twice")
            warnings = [_str(w) for w in body.get("w", [])]
            owners_incomplete = bool(body.get("o", False))
            collect = _float(body.get("c", 0.0))
            restart = bool(body.get("f", False))
        except (_Bad, KeyError, TypeError) as error:
            raise reader._undecodable(index, error) from None
        self._by_id, self._sockets, self._next_id = by_id, sockets, len(by_id)
        self._warnings, self._zdict, self.position = warnings, raw[-_ZDICT_LIMIT:], index
        self.snapshot = Snapshot(taken_at, dict(sockets), owners_incomplete, list(warnings), collect)
        return restart or index == 0

    def _apply(self, index: int) -> SnapshotDiff:
        """Apply delta `index` to the state at `index - 1`."""
        reader = self.reader
        taken_at = reader._index.times[index]
        body, _ = reader._payload(index, self._zdict)
        by_id = self._by_id
        # A new dict per frame, as DiffAssembler does: a Snapshot handed out earlier must not change under anyone.
        sockets = dict(self._sockets)
        try:
            removed = [by_id.pop(_int(ident)) for ident in body["r"]]
            for sock in removed:
                del sockets[sock.key]
            changed_before: list[Socket] = []
            changed: list[Socket] = []
            for row in body["x"]:
                old = by_id[_int(row[0])]
                new = _changed_socket(row, old)
                changed_before.append(old)
                changed.append(new)
                by_id[row[0]] = sockets[new.key] = new
            added = [_socket(row, taken_at) for row in body["a"]]
            for sock in added:
                if sock.key in sockets:
                    raise _Bad("it adds a socket that is already there")
                by_id[self._next_id] = sockets[sock.key] = sock
                self._next_id += 1
            if "w" in body:
                self._warnings = [_str(w) for w in body["w"]]
            owners_incomplete = bool(body.get("o", False))
            collect = _float(body.get("c", 0.0))
        except (_Bad, KeyError, TypeError, IndexError) as error:
            # The state is now half-applied: forget it, so the next seek starts again from a keyframe.
            self.position = -1
            raise reader._undecodable(index, error) from None
        self._sockets, self.position = sockets, index
        self.snapshot = Snapshot(taken_at, dict(sockets), owners_incomplete, list(self._warnings), collect)
        return SnapshotDiff(self.snapshot, added=added, changed=changed, removed=removed,
                            changed_before=changed_before)  # fmt: skip


# --- sources for the UI ------------------------------------------------------------------------------------------


class RecordingTee:
    """A SnapshotSource that passes another source's refreshes through unchanged and records each diff.

    Writing happens in a thread after the diff has been handed on, so the screen never waits for the disk. A
    failed write (disk full) is reported once as a CollectionFailure and recording stops; the live view goes on.
    """

    is_replay = False

    def __init__(self, source: SnapshotSource, writer: RecordingWriter | None = None) -> None:
        self.source = source
        self.writer = writer  # None: passing through, not recording (the UI starts and stops it with a key)
        self.error = ""

    @property
    def interval(self) -> float:
        return self.source.interval

    @interval.setter
    def interval(self, value: float) -> None:
        self.source.interval = value

    @property
    def recording(self) -> bool:
        return self.writer is not None and not self.writer.closed and not self.error

    def start(self, writer: RecordingWriter) -> None:
        """Record from the next refresh on (its first frame is a full keyframe)."""
        self.stop()
        self.writer, self.error = writer, ""

    def stop(self) -> RecordingWriter | None:
        """Stop recording; returns the writer that was recording, closed, if any."""
        writer, self.writer = self.writer, None
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        return writer

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        async for update in self.source.stream():
            yield update
            writer = self.writer
            if isinstance(update, SnapshotDiff) and writer is not None and self.recording:
                try:
                    await asyncio.to_thread(writer.write, update)
                except (OSError, ValueError) as error:
                    self.error = f"Recording to {writer.path} stopped: {error}"
                    with contextlib.suppress(OSError):
                        writer.close()
                    yield CollectionFailure(self.error)

    async def aclose(self) -> None:
        try:
            await self.source.aclose()
        finally:
            self.stop()


class ReplaySource:
    """A SnapshotSource that plays a recording back, with controls for the UI.

    `stream()` first yields the starting frame as a full reload (first=True), then one diff per recorded frame,
    spaced as they were recorded divided by `speed` (a gap longer than three intervals, e.g. while recording was
    stopped, is played as one interval). At the last frame it pauses and keeps waiting for controls; it never ends
    by itself. Jumps (seek_frame, seek_time, step back) yield a full reload; step forward yields the real diff.
    Damage in the file is reported once as a CollectionFailure; the readable frames play.

    Controls are plain methods meant to be called from the event loop's thread (as Textual handlers are); from
    another thread they are handed to the loop. Nothing may be killed while replaying: `is_replay` is True.
    """

    is_replay = True
    MIN_SPEED, MAX_SPEED = 0.01, 1000.0

    def __init__(
        self,
        recording: str | os.PathLike[str] | RecordingReader,
        *,
        speed: float = 1.0,
        start_frame: int = 0,
        playing: bool = True,
    ) -> None:
        self._owns_reader = not isinstance(recording, RecordingReader)
        self.reader = RecordingReader(recording) if not isinstance(recording, RecordingReader) else recording
        self.interval = self.reader.interval
        self._cursor = self.reader.cursor()
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._speed = 1.0
        self.set_speed(speed)
        self._playing = playing
        self._target: int | None = self.reader._normal(start_frame) if len(self.reader) else None
        self._natural = False  # the pending target is the next frame: give its real diff, not a reload

    # --- state the UI shows

    @property
    def position(self) -> int:
        """Index of the frame last yielded (-1 before the first)."""
        return self._cursor.position

    @property
    def frame_count(self) -> int:
        return len(self.reader)

    @property
    def current_time(self) -> float | None:
        position = self._cursor.position
        return self.reader.timestamps[position] if position >= 0 else None

    @property
    def start_time(self) -> float | None:
        return self.reader.start_time

    @property
    def end_time(self) -> float | None:
        return self.reader.end_time

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def at_end(self) -> bool:
        return self._cursor.position == len(self.reader) - 1

    @property
    def damage(self) -> str:
        return self.reader.damage.message if self.reader.damage else ""

    def describe(self) -> str:
        """One line for a status bar: "▶ 2× 12:03:04  frame 120/3600"."""
        sign = "▶" if self._playing else "⏸"
        speed = f"{self._speed:g}×"
        now = _clock(self.current_time, self.start_time) if self.current_time is not None else "--:--:--"
        return f"{sign} {speed} {now}  frame {self._cursor.position + 1}/{len(self.reader)}"

    # --- controls

    def play(self) -> None:
        if self.at_end and self._target is None:
            self._set_target(0)  # play again from the start, as media players do
        self._playing = True
        self._wake()

    def pause(self) -> None:
        self._playing = False
        self._wake()

    def toggle(self) -> None:
        """Play/pause."""
        if self._playing:
            self.pause()
        else:
            self.play()

    def step(self, frames: int = 1) -> None:
        """Pause and move `frames` forward (negative: back), clamped to the recording."""
        self._playing = False
        here = self._target if self._target is not None else max(self._cursor.position, 0)
        self._set_target(here + frames)

    def seek_frame(self, index: int) -> None:
        """Jump to frame `index` (0-based, clamped; negative counts from the end). Keeps playing if playing."""
        count = len(self.reader)
        self._set_target(index + count if index < 0 else index)

    def seek_time(self, when: float) -> None:
        """Jump to the frame on screen at wall-clock time `when` (time.time() seconds)."""
        if len(self.reader):
            self._set_target(self.reader.index_at(when))

    def set_speed(self, speed: float) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"replay speed must be a positive number, got {speed}")
        self._speed = min(self.MAX_SPEED, max(self.MIN_SPEED, speed))
        self._wake()

    def _set_target(self, index: int) -> None:
        count = len(self.reader)
        if not count:
            return
        index = min(count - 1, max(0, index))
        with self._lock:
            self._target = index
            self._natural = index == self._cursor.position + 1 and self._cursor.position >= 0
        self._wake()

    def _wake(self) -> None:
        loop, event = self._loop, self._wakeup
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    # --- SnapshotSource

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        self._loop = asyncio.get_running_loop()
        self._wakeup = wakeup = asyncio.Event()
        if self.reader.damage is not None:
            yield CollectionFailure(f"{os.path.basename(self.reader.path)}: {self.reader.damage.message}")
        if not len(self.reader):
            yield CollectionFailure(f"{os.path.basename(self.reader.path)} holds no frames to replay")
        shown_at = self._loop.time()
        while not self._closed:
            with self._lock:
                target, natural = self._target, self._natural
                self._target = None
            update: SnapshotDiff | CollectionFailure | None = None
            if target is not None:
                update = self._move(target, natural)
            elif self._playing and not self.at_end and self._cursor.position >= 0:
                delay = self._delay() - (self._loop.time() - shown_at)
                if delay > 0:
                    wakeup.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(wakeup.wait(), delay)
                    continue  # woken by a control, or the time has come: decide again
                update = self._move(self._cursor.position + 1, True)
            else:
                if self.at_end:
                    self._playing = False
                wakeup.clear()
                if self._target is None:
                    await wakeup.wait()
                continue
            shown_at = self._loop.time()
            if update is not None:
                yield update

    def _move(self, index: int, natural: bool) -> SnapshotDiff | CollectionFailure:
        try:
            if natural and index == self._cursor.position + 1:
                diff = self._cursor.step()
                if diff is not None:
                    return diff
            return self._cursor.seek(index)
        except RecordingDamaged as error:
            self._playing = False
            return CollectionFailure(f"{os.path.basename(self.reader.path)}: {error.message}")

    def _delay(self) -> float:
        times = self.reader.timestamps
        position = self._cursor.position
        gap = max(0.0, times[position + 1] - times[position])
        if gap > 3 * self.interval:
            gap = self.interval
        return gap / self._speed

    async def aclose(self) -> None:
        self._closed = True
        self._wake()
        if self._owns_reader:
            self.reader.close()
