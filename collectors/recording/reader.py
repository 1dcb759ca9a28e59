"""Reading a recording: an index of its sound frames (damage found and said), and cursors that decode a
keyframe and the deltas after it. The cursors use the reader's public frame API (`socket_frames`, `payload`,
`decode`, `undecodable`).

Longer than most files here, and one thing: the reader and its cursors share one index and one decoding path, and
a change to how frames are found (damage, resync, version 1) changes both."""

from __future__ import annotations

import bisect
import json
import mmap
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netscope.collectors.gc_pause import gc_paused
from netscope.collectors.limits import interval_problem
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket, SocketKey
from netscope.collectors.recording.fileformat import (
    _CHAINS,
    _CRC_FROM,
    _FILE_HEAD,
    _HEADER_LIMIT,
    _LAYOUTS,
    _U32,
    _ZDICT_LIMIT,
    DELTA,
    END,
    KEYFRAME,
    MAGIC,
    MAX_PAYLOAD,
    SOCKETS,
    SYNC,
    VERSION,
    NotARecording,
    RecordingDamaged,
    _Bad,
    _clock,
    _decompress,
    _describe,
    _float,
    _is_time,
    _list,
    _str,
)
from netscope.collectors.recording.socket_codec import (
    _changed_socket,
    _known,
    _socket,
)
from netscope.collectors.recording.view_codecs import (
    _decode_routes,
    _decode_views,
    _ViewState,
)
from netscope.collectors.regular_files import open_regular
from netscope.collectors.routes import RouteSnapshot
from netscope.collectors.view_data import ViewData

# --- reading -----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Index:
    """Where each readable frame of one chain is, and which keyframe it builds on."""

    offsets: list[int] = field(default_factory=list)  # of the payload
    lengths: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    base: list[int] = field(default_factory=list)  # index of the keyframe at or before each frame
    after_gap: list[bool] = field(default_factory=list)  # the first frame after lost frames of its chain

    def add(self, offset: int, length: int, taken_at: float, kind: int, after_gap: bool) -> None:
        self.offsets.append(offset)
        self.lengths.append(length)
        self.times.append(taken_at)
        self.kinds.append(kind)
        self.base.append(len(self.kinds) - 1 if _CHAINS[kind][1] else self.base[-1])
        self.after_gap.append(after_gap)


@dataclass(slots=True)
class _Gap:
    """Damaged bytes found by the scan of a version 2 file, and what they turned out to cost."""

    reason: str
    readable: int  # socket frames readable before it
    last: float | None  # taken_at of the last of those
    truncated: bool = False  # the file ends inside a frame
    sockets_lost: bool | None = None  # None: no socket frame came after it to tell
    resumes_at: float | None = None  # if socket frames were lost: the keyframe where they resume


_Undecodable = Callable[[int, BaseException], RecordingDamaged]


class RecordingReader:
    """Opens a recording, checks every frame's checksum once, and decodes snapshots on demand.

    Damage does not stop the opening: `damage` holds a RecordingDamaged describing it (or None), every readable
    frame can be read, and iterating raises that error after the last readable frame so a plain loop notices
    (unless it cost view data only: `damage.frames_lost` is then False).
    A file that is not a recording at all raises NotARecording; an unreadable one, OSError.

    Frames (len(), indexes, timestamps) are the socket frames; the views are read with `views_at()`, which is
    thread-safe (it has its own decoding state and lock), so a thread may read views while another plays sockets.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.damage: RecordingDamaged | None = None
        self.complete = False  # the writer closed the file properly (an end marker follows the last frame)
        self.version = VERSION
        self._layout = _LAYOUTS[VERSION]
        self.socket_frames = _Index()
        self.view_frames = _Index()
        self.route_frames = _Index()
        self._decoder: _Cursor | None = None
        self._views_lock = threading.Lock()
        self._views_cursor: _ViewsCursor | None = None
        self._routes_cursor: _RoutesCursor | None = None
        self._problems: list[RecordingDamaged] = []
        with open_regular(self.path) as handle:  # a FIFO or a device is refused, never waited on
            size = os.fstat(handle.fileno()).st_size
            self._map: mmap.mmap | bytes = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            self.header, start = self._read_header()
            if self._layout.seq:
                self._scan(start)
            else:
                self._scan_v1(start)
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
                f"this one reads versions up to {VERSION}"
            )
        end = fixed_end + length
        if length > _HEADER_LIMIT or len(data) < end + _U32.size:
            raise NotARecording(f"{name}: the recording's header is damaged or cut off; nothing can be read")
        (crc,) = _U32.unpack_from(data, end)
        if zlib.crc32(data[:end]) != crc:
            raise NotARecording(
                f"{name}: the recording's header is damaged (checksum mismatch); nothing can be read"
            )
        if version not in _LAYOUTS:
            raise NotARecording(f"{name}: the recording's header is damaged (version {version}); nothing is read")
        try:
            header = json.loads(bytes(data[fixed_end:end]))
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise NotARecording(f"{name}: the recording's header is damaged; nothing can be read")
        self.version, self._layout = version, _LAYOUTS[version]
        return header, end + _U32.size

    def _frame_at(self, pos: int) -> tuple[int, float, int, int] | str:
        """(length, taken_at, kind, seq) of a sound frame at `pos`, else why not: "truncated", or a reason."""
        data = self._map
        layout = self._layout
        size = layout.header.size
        if len(data) - pos < size:
            return "truncated"
        if layout.seq:
            sync, length, taken_at, kind, seq, crc = layout.header.unpack_from(data, pos)
        else:
            (sync, length, taken_at, kind, crc), seq = layout.header.unpack_from(data, pos), 0
        if sync != SYNC:
            return "the bytes there are not a frame"
        if kind not in layout.kinds or length > MAX_PAYLOAD or not _is_time(taken_at):
            return "its header is damaged"
        start = pos + size
        if start + length > len(data):
            # A damaged length can also point past the end; only a checksum could tell, and it is out of reach.
            return "truncated"
        view = memoryview(data)
        try:
            head_crc = zlib.crc32(view[pos + _CRC_FROM : pos + layout.crc_at])
            actual = zlib.crc32(view[start : start + length], head_crc)
        finally:
            view.release()
        if actual != crc:
            return "it fails its checksum"
        return length, taken_at, kind, seq

    def _scan(self, pos: int) -> None:
        """Index a version 2 file: every sound frame whose chain is whole up to it (checked by seq)."""
        size = len(self._map)
        header_size = self._layout.header.size
        indexes = (self.socket_frames, self.view_frames, self.route_frames)
        expected: list[int | None] = [0, 0, 0]  # each chain's next seq; None after lost frames, until a keyframe
        seen = [0, 0, 0]  # how many gaps had been found at each chain's last readable frame
        gaps: list[_Gap] = []
        undecided: list[_Gap] = []  # not yet known whether they cost socket frames
        waiting: list[_Gap] = []  # cost socket frames: resolved at the next socket keyframe

        def gap(reason: str, truncated: bool = False) -> None:
            times = self.socket_frames.times
            gaps.append(_Gap(reason, len(times), times[-1] if times else None, truncated))
            undecided.append(gaps[-1])

        while pos < size:
            found = self._frame_at(pos)
            if isinstance(found, str):
                resume = self._resync(pos + 1, keyframes_only=False)
                gap(found, truncated=found == "truncated" and resume is None)
                if resume is None:
                    break
                pos = resume[0]
                continue
            length, taken_at, kind, seq = found
            if kind == END:
                self.complete = pos + header_size == size
                break
            chain, key = _CHAINS[kind]
            follows = expected[chain] == seq and (key or seq > 0)
            if not follows and expected[chain] is not None and len(gaps) == seen[chain]:
                # A break that no damaged bytes explain (a crafted file) is damage all the same.
                gap("frames before it are missing" if key else "it builds on a frame that is missing")
            if chain == SOCKETS:
                for earlier in undecided:
                    earlier.sockets_lost = not follows
                if not follows:
                    waiting.extend(undecided)
                undecided.clear()
                if key:
                    for earlier in waiting:
                        earlier.resumes_at = taken_at
                    waiting.clear()
            usable = key or follows
            if usable:
                indexes[chain].add(pos + header_size, length, taken_at, kind, not follows)
                seen[chain] = len(gaps)
            expected[chain] = seq + 1 if usable else None
            pos += header_size + length
        for each in gaps:
            self._problems.append(self._gap_damage(each))

    def _gap_damage(self, gap: _Gap) -> RecordingDamaged:
        readable, reason = gap.readable, gap.reason
        first_time = self.socket_frames.times[0] if self.socket_frames.times else None
        if reason == "truncated":
            reason = "its length runs past the end of the file"
        where = (
            f"after frame {readable} at {_clock(gap.last, first_time)}" if readable else "before its first frame"
        )
        if gap.truncated:
            message = (
                f"recording truncated {where}; the first {readable} frames are readable"
                if readable
                else "recording truncated before its first frame was complete; no frame is readable"
            )
        elif gap.sockets_lost is False:
            message = (
                f"recording damaged {where} ({reason}); every frame of the connection table is readable, only "
                "some view data recorded there (interfaces, routes, statistics or multicast groups) is lost"
            )
        elif gap.resumes_at is not None:
            message = (
                f"recording damaged {where} (frame {readable + 1}: {reason}); the frames up to the next keyframe "
                f"at {_clock(gap.resumes_at, first_time or gap.resumes_at)} are lost, the rest is readable"
            )
        else:
            message = f"recording damaged {where} (frame {readable + 1}: {reason}); " + (
                f"the first {readable} frames are readable" if readable else "no frame is readable"
            )
        return RecordingDamaged(message, readable_frames=readable, bad_frame=readable + 1,
                                truncated=gap.truncated, at_time=gap.last,
                                frames_lost=gap.truncated or gap.sockets_lost is not False)  # fmt: skip

    def _scan_v1(self, pos: int) -> None:
        """Index a version 1 file (sockets only, no seq): after damage, deltas wait for the next keyframe."""
        index = self.socket_frames
        size = len(self._map)
        header_size = self._layout.header.size
        after_gap = False
        while pos < size:
            found = self._frame_at(pos)
            if isinstance(found, tuple):
                length, taken_at, kind, _ = found
                if kind == END:
                    self.complete = pos + header_size == size
                    return
                if kind == DELTA and (not index.offsets or after_gap):
                    found = "it is a delta with no keyframe before it"
                else:
                    index.add(pos + header_size, length, taken_at, kind, after_gap)
                    after_gap = False
                    pos += header_size + length
                    continue
            resume = self._resync(pos + 1, keyframes_only=True)
            self._note_damage(found, resume)
            if resume is None:
                return
            pos, after_gap = resume[0], True

    def _resync(self, pos: int, *, keyframes_only: bool) -> tuple[int, float] | None:
        """The next sound frame after damaged bytes (version 1: keyframe or end marker): (offset, its time)."""
        data = self._map
        while True:
            pos = data.find(SYNC, pos)
            if pos < 0:
                return None
            found = self._frame_at(pos)
            if isinstance(found, tuple) and (not keyframes_only or found[2] in (KEYFRAME, END)):
                return pos, found[1]
            # A sound delta here still depends on the lost frames: skip it whole; anything else, byte by byte.
            pos += self._layout.header.size + found[0] if isinstance(found, tuple) else 1

    def _note_damage(self, reason: str, resume: tuple[int, float] | None) -> None:
        index = self.socket_frames
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
        return len(self.socket_frames.times)

    @property
    def timestamps(self) -> list[float]:
        """taken_at of every readable frame, in file order."""
        return self.socket_frames.times

    @property
    def keyframes(self) -> list[int]:
        return [i for i, kind in enumerate(self.socket_frames.kinds) if kind == KEYFRAME]

    @property
    def interval(self) -> float:
        value = self.header.get("interval")
        if isinstance(value, int | float) and not isinstance(value, bool) and interval_problem(value) is None:
            return float(value)
        return 1.0  # a header's interval out of range (a crafted file): replay at the usual pace

    @property
    def start_time(self) -> float | None:
        return self.socket_frames.times[0] if self.socket_frames.times else None

    @property
    def end_time(self) -> float | None:
        return self.socket_frames.times[-1] if self.socket_frames.times else None

    @property
    def has_views(self) -> bool:
        """Whether the recording holds views 2-5 (interfaces, routes, statistics, multicast): version 1 files and
        recordings made without them hold sockets only."""
        return bool(self.view_frames.times or self.route_frames.times)

    @property
    def views_timestamps(self) -> list[float]:
        """When the readable view frames (interfaces, statistics, multicast) were recorded."""
        return self.view_frames.times

    @property
    def routes_timestamps(self) -> list[float]:
        """When the readable routing tables were recorded (each read, changed or not)."""
        return self.route_frames.times

    def index_at(self, when: float) -> int:
        """The frame on screen at time `when`: the last one taken at or before it (the first, if `when` is
        earlier). Raises IndexError on an empty recording."""
        if not self.socket_frames.times:
            raise IndexError("the recording holds no frames")
        return max(0, bisect.bisect_right(self.socket_frames.times, when) - 1)

    def check(self) -> None:
        """Raise `damage` if it cost frames (damage that cost view data only is in `damage`, not raised)."""
        for problem in self._problems:
            if problem.frames_lost:
                raise problem

    def snapshot_at(self, index: int) -> Snapshot:
        """The full snapshot at frame `index` (negative: from the end). Raises IndexError, RecordingDamaged."""
        if self._decoder is None:
            self._decoder = self.cursor()
        return self._decoder.seek(self.normal_index(index)).snapshot

    def snapshot_at_time(self, when: float) -> Snapshot:
        return self.snapshot_at(self.index_at(when))

    def views_at(self, when: float) -> ViewData:
        """Views 2-5 as recorded at time `when`: each of interfaces, routes, statistics and multicast the latest
        recorded at or before `when` (None if none was). Thread-safe; never raises for damage: what cannot be
        decoded is said in the ViewData's warnings, and the latest decodable data before it is given instead.

        Cheap when `when` moves forward a little (it applies the frames in between); a jump back decodes from
        the chain's keyframe before `when`."""
        with self._views_lock:
            if self._views_cursor is None or self._routes_cursor is None:
                self._views_cursor, self._routes_cursor = _ViewsCursor(self), _RoutesCursor(self)
            problems: list[str] = []
            for cursor in (self._views_cursor, self._routes_cursor):
                position = bisect.bisect_right(cursor.chain.times, when) - 1
                try:
                    cursor.seek(position)
                except RecordingDamaged as error:
                    problems.append(error.message)
            views, routes = self._views_cursor.state, self._routes_cursor.routes
            data = ViewData(views.interfaces, routes, views.statistics, views.multicast, list(views.warnings),
                            views.conntrack, views.unix)
            for part in (data.interfaces, data.routes, data.statistics, data.multicast):
                if part is not None:
                    data.warnings.extend(part.warnings)
            data.warnings.extend(problems)
            return data

    def cursor(self) -> _Cursor:
        """An independent position in the recording: `seek(i)` and `step()` give SnapshotDiffs."""
        return _Cursor(self)

    def diffs(self, start: int = 0) -> Iterator[SnapshotDiff]:
        """Every frame's SnapshotDiff from `start` on: the first is a full reload (first=True), then each diff is
        against the frame before (first=True again after damaged bytes or where the source started over).
        Raises `damage` after the last readable frame, if it cost frames (see check())."""
        cursor = self.cursor()
        if len(self):
            yield cursor.seek(self.normal_index(start))
            while (diff := cursor.step()) is not None:
                yield diff
        self.check()

    def __iter__(self) -> Iterator[SnapshotDiff]:
        return self.diffs()

    def normal_index(self, index: int) -> int:
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"frame {index} is outside the recording's {count} frames")
        return index % count

    def payload(self, index: int, zdict: bytes) -> tuple[dict[str, Any], bytes]:
        """Decode socket frame `index`: its JSON object and its raw bytes. Raises RecordingDamaged."""
        return self.decode(self.socket_frames, index, zdict, self.undecodable)

    def decode(
        self, chain: _Index, index: int, zdict: bytes, undecodable: _Undecodable
    ) -> tuple[dict[str, Any], bytes]:
        start, length = chain.offsets[index], chain.lengths[index]
        try:
            raw = _decompress(bytes(self._map[start : start + length]), zdict)
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise _Bad("it is not a JSON object")
        except (ValueError, zlib.error, RecursionError) as error:  # _Bad and JSONDecodeError are ValueErrors
            raise undecodable(index, error) from None
        return body, raw

    def undecodable(self, index: int, error: BaseException) -> RecordingDamaged:
        at = self.socket_frames.times[index - 1] if index else None
        return RecordingDamaged(
            f"frame {index + 1} of the recording passes its checksum but cannot be decoded ({_describe(error)}); "
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
        base = reader.socket_frames.base[index]
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
        if reader.socket_frames.kinds[index] == DELTA:
            return self._apply(index)
        before = self._sockets
        first = self._load(index) or reader.socket_frames.after_gap[index]
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
        taken_at = reader.socket_frames.times[index]
        body, raw = reader.payload(index, b"")
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
            raise reader.undecodable(index, error) from None
        self._by_id, self._sockets, self._next_id = by_id, sockets, len(by_id)
        self._warnings, self._zdict, self.position = warnings, raw[-_ZDICT_LIMIT:], index
        self.snapshot = Snapshot(taken_at, dict(sockets), owners_incomplete, list(warnings), collect)
        return restart or index == 0

    def _apply(self, index: int) -> SnapshotDiff:
        """Apply delta `index` to the state at `index - 1`."""
        reader = self.reader
        taken_at = reader.socket_frames.times[index]
        body, _ = reader.payload(index, self._zdict)
        by_id = self._by_id
        # A new dict per frame, as DiffAssembler does: a Snapshot handed out earlier must not change under anyone.
        sockets = dict(self._sockets)
        try:
            removed = []
            for ident in body["r"]:
                removed.append(_known(by_id, ident))
                del by_id[ident]
            for sock in removed:
                del sockets[sock.key]
            changed_before: list[Socket] = []
            changed: list[Socket] = []
            for row in body["x"]:
                old = _known(by_id, _list(row)[0] if row else None)
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
            raise reader.undecodable(index, error) from None
        self._sockets, self.position = sockets, index
        self.snapshot = Snapshot(taken_at, dict(sockets), owners_incomplete, list(self._warnings), collect)
        return SnapshotDiff(self.snapshot, added=added, changed=changed, removed=removed,
                            changed_before=changed_before)  # fmt: skip


class _ChainCursor:
    """Decoding state at one frame of the views or the routes chain, for RecordingReader.views_at()."""

    def __init__(self, reader: RecordingReader, chain: _Index) -> None:
        self.reader, self.chain = reader, chain
        self.position = -1
        self._broken: dict[int, RecordingDamaged] = {}  # frames known not to decode: not tried again
        self._keyframe: tuple[int, Any] | None = None  # the last keyframe decoded, and its state

    def seek(self, index: int) -> None:
        """Move to frame `index` of the chain (-1: before its first). Raises RecordingDamaged; the state is then
        that of the last frame before `index` that could be decoded (empty if none)."""
        if index < 0:
            self.position = -1
            self._reset()
            return
        base = self.chain.base[index]
        if not base <= self.position <= index:  # cannot walk forward from here: start at the keyframe
            self.position = -1
            if self._keyframe is not None and self._keyframe[0] == base:
                # Decoded states are never changed, only replaced: the keyframe's can be taken up again as it is
                # (a jump back over a million routes then costs their changes, not seconds of decoding).
                self._restore(self._keyframe[1])
                self.position = base
            else:
                self._reset()
                self._apply(base)
                self._keyframe = (base, self._saved())
        while self.position < index:
            self._apply(self.position + 1)

    def _apply(self, index: int) -> None:
        error = self._broken.get(index)
        if error is None:
            try:
                with gc_paused():
                    body, _ = self.reader.decode(self.chain, index, b"", self.undecodable)
                    self._take(body, _CHAINS[self.chain.kinds[index]][1])
                self.position = index
                return
            except RecordingDamaged as damaged:
                error = damaged
            except (_Bad, KeyError, TypeError, IndexError, ValueError) as bad:
                error = self.undecodable(index, bad)
            self._broken[index] = error
        raise error

    def undecodable(self, index: int, error: BaseException) -> RecordingDamaged:
        reader = self.reader
        at = self.chain.times[index]
        return RecordingDamaged(
            f"the {self.what} recorded at {_clock(at, reader.start_time)} pass their checksum but cannot be "
            f"decoded ({_describe(error)}); the {self.what} recorded before are shown",
            readable_frames=len(reader), bad_frame=0, truncated=False, at_time=at, frames_lost=False,
        )  # fmt: skip

    what = ""

    def _reset(self) -> None:
        raise NotImplementedError

    def _saved(self) -> Any:
        raise NotImplementedError

    def _restore(self, state: Any) -> None:
        raise NotImplementedError

    def _take(self, body: dict[str, Any], keyframe: bool) -> None:
        """Apply a decoded frame (a keyframe stands alone); raises _Bad and the like, changing nothing then."""
        raise NotImplementedError


class _ViewsCursor(_ChainCursor):
    what = "interfaces, statistics and multicast groups"

    def __init__(self, reader: RecordingReader) -> None:
        super().__init__(reader, reader.view_frames)
        self.state = _ViewState()

    def _reset(self) -> None:
        self.state = _ViewState()

    def _saved(self) -> _ViewState:
        return self.state

    def _restore(self, state: _ViewState) -> None:
        self.state = state

    def _take(self, body: dict[str, Any], keyframe: bool) -> None:
        self.state = _decode_views(body, None if keyframe else self.state)


class _RoutesCursor(_ChainCursor):
    what = "routes"

    def __init__(self, reader: RecordingReader) -> None:
        super().__init__(reader, reader.route_frames)
        self.routes: RouteSnapshot | None = None

    def _reset(self) -> None:
        self.routes = None

    def _saved(self) -> RouteSnapshot | None:
        return self.routes

    def _restore(self, state: RouteSnapshot | None) -> None:
        self.routes = state

    def _take(self, body: dict[str, Any], keyframe: bool) -> None:
        if not keyframe and self.routes is None:
            raise _Bad("a change of the routes with no table before it")
        self.routes = _decode_routes(body, None if keyframe else self.routes)
