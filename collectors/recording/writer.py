"""Writing a recording: socket frames (keyframes and deltas) and the view and route chains beside them."""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from netscope import __version__
from netscope.collectors.gc_pause import gc_paused
from netscope.collectors.model import SnapshotDiff, SocketKey
from netscope.collectors.recording.fileformat import (
    _CHAINS,
    _CRC_FROM,
    _FILE_HEAD,
    _FRAME,
    _JSON,
    _LAYOUTS,
    _U32,
    _ZDICT_LIMIT,
    DELTA,
    END,
    FRAME_HEADER_SIZE,
    KEYFRAME,
    MAGIC,
    ROUTES_DELTA,
    ROUTES_KEYFRAME,
    SOCKETS,
    SYNC,
    VERSION,
    VIEWS,
    VIEWS_DELTA,
    VIEWS_KEYFRAME,
    _compress,
)
from netscope.collectors.recording.socket_codec import (
    _change,
    _row,
)
from netscope.collectors.recording.table_codecs import conntrack_entry, unix_entry
from netscope.collectors.recording.view_codecs import (
    _interfaces_entry,
    _multicast_entry,
    _own_warnings,
    _routes_delta,
    _routes_keyframe,
    _statistics_entry,
    _ViewState,
)
from netscope.collectors.regular_files import open_regular
from netscope.collectors.routes import RouteSnapshot
from netscope.collectors.view_data import ViewData

# --- writing -----------------------------------------------------------------------------------------------------

_Encoded = tuple[int, bytes, Callable[[], None]]  # kind, payload, what to remember once it is written


class _ViewsChain:
    """The writer's views chain: what was last recorded (deltas are taken against it) and when to keyframe."""

    def __init__(self, ratio: float, seconds: float) -> None:
        self.ratio, self.seconds = ratio, seconds
        self.state = _ViewState()
        self.started = False
        self.keyframe_at = 0.0
        self.keyframe_bytes = 0
        self.delta_bytes = 0

    def encode(self, taken_at: float, data: ViewData) -> _Encoded | None:
        """The frame for `data`, or None if it holds nothing to record."""
        old = self.state
        own = _own_warnings(data)
        parts_read = (data.interfaces, data.statistics, data.multicast, data.conntrack, data.unix)
        if all(part is None for part in parts_read) and own == old.warnings:
            return None
        keyframe = (
            not self.started
            or taken_at - self.keyframe_at >= self.seconds
            or self.delta_bytes >= self.ratio * self.keyframe_bytes
        )
        new = _ViewState(
            old.interfaces if data.interfaces is None else data.interfaces,
            old.statistics if data.statistics is None else data.statistics,
            old.multicast if data.multicast is None else data.multicast,
            list(own),
            old.conntrack if data.conntrack is None else data.conntrack,
            old.unix if data.unix is None else data.unix,
        )
        body: dict[str, Any] = {}
        parts: tuple[tuple[str, Any, Any, Any, Any], ...] = (
            ("i", _interfaces_entry, old.interfaces, new.interfaces, data.interfaces),
            ("s", _statistics_entry, old.statistics, new.statistics, data.statistics),
            ("m", _multicast_entry, old.multicast, new.multicast, data.multicast),
            ("n", conntrack_entry, old.conntrack, new.conntrack, data.conntrack),
            ("u", unix_entry, old.unix, new.unix, data.unix),
        )
        for tag, entry, before, now, read in parts:
            if keyframe:  # stands alone: every part recorded so far, whole
                if now is not None:
                    body[tag] = entry(None, now)
            elif read is not None:
                body[tag] = entry(before, read)
        if own:
            body["w"] = own
        payload = _compress(_JSON.encode(body).encode("ascii"), level=6 if keyframe else 9)

        def commit() -> None:
            self.state, self.started = new, True
            if keyframe:
                self.keyframe_at, self.keyframe_bytes, self.delta_bytes = taken_at, len(payload), 0
            else:
                self.delta_bytes += len(payload)

        return (VIEWS_KEYFRAME if keyframe else VIEWS_DELTA), payload, commit


class _RoutesChain:
    """The writer's routes chain: the table last recorded, and when a whole table is due."""

    def __init__(self, ratio: float, seconds: float) -> None:
        self.ratio, self.seconds = ratio, seconds
        self.state: RouteSnapshot | None = None
        self.keyframe_at = 0.0
        self.keyframe_bytes = 0
        self.delta_bytes = 0
        self.changed = False  # a route changed since the last keyframe

    def encode(self, taken_at: float, routes: RouteSnapshot) -> tuple[_Encoded, bool]:
        """The frame for `routes`, and whether it changes any route."""
        delta = None
        old = self.state
        # An unchanged table costs an empty delta a read; it is written whole again only once those add up to
        # `ratio` times its size (a small table every few minutes, a million routes practically never). A
        # changing one is, now and then, so that seeking does not apply an hour of changes to a million routes.
        if not (
            old is None
            or self.delta_bytes >= self.ratio * self.keyframe_bytes
            or (self.changed and taken_at - self.keyframe_at >= self.seconds)
        ):
            delta = _routes_delta(old, routes)
        if delta is None:
            payload = _compress(_JSON.encode(_routes_keyframe(routes)).encode("ascii"), level=6)
            changed = True
        else:
            body, changed = delta
            payload = _compress(_JSON.encode(body).encode("ascii"), level=9)

        def commit() -> None:
            self.state = routes
            if delta is None:
                self.keyframe_at, self.keyframe_bytes, self.delta_bytes, self.changed = (
                    taken_at, len(payload), 0, False)  # fmt: skip
            else:
                self.delta_bytes += len(payload)
                self.changed = self.changed or changed

        return ((ROUTES_KEYFRAME if delta is None else ROUTES_DELTA), payload, commit), changed


class RecordingWriter:
    """Writes SnapshotDiffs and view data to a recording file, one flushed frame each.

    `write()` (sockets) and `write_views()` (views 2-5) may be called from two different threads, each from one
    thread at a time; frames never interleave in the file. Both block for the encoding and the write: about
    0.4 ms for a delta of a few dozen sockets, 0.3 to 0.5 s for a keyframe of 100,000 sockets, 1 to 2 ms for the
    views of a second, seconds for a changed table of a million routes (run them in a thread from an event loop:
    RecordingTee's callers do). The file is created (or truncated) at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        keyframe_ratio: float = 4.0,
        keyframe_seconds: float = 600.0,
        route_keyframe_seconds: float = 1800.0,
        fsync: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.keyframe_ratio = keyframe_ratio
        self.keyframe_seconds = keyframe_seconds
        self.fsync = fsync  # survive a power cut too, at one disk sync per frame
        self.frames = 0  # socket frames
        self.keyframes = 0
        self.view_frames = 0
        self.route_frames = 0  # every routes frame, an unchanged table's empty delta included
        self.route_keyframes = 0
        self.route_changes = 0  # routes deltas that change a route
        self.closed = False
        self._lock = threading.Lock()  # the file, the sequence numbers and the counts
        self._views_lock = threading.Lock()  # write_views()'s chains
        self._seq = [0, 0, 0]  # the next frame's seq, by chain
        self._views = _ViewsChain(keyframe_ratio, keyframe_seconds)
        self._routes = _RoutesChain(keyframe_ratio, route_keyframe_seconds)
        self._views_at = -math.inf
        self._file = open_regular(self.path, write=True)  # held open across writes, closed by close()
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

    def write_views(self, taken_at: float, data: ViewData) -> None:
        """Record views 2-5 as read at `taken_at` (time.time()): whichever of the four parts `data` holds.

        Call it after each read of the views (SystemViews.collect), roughly once per interval. Routes are
        recorded whenever `data` has them, as an empty delta when the table did not change. Raises OSError when
        the file cannot be written, ValueError when closed or when `data` holds what JSON cannot (NaN): then
        nothing of this call is recorded and the next call records against what was."""
        if not math.isfinite(taken_at):
            raise ValueError(f"write_views() needs a finite time, got {taken_at}")
        with self._views_lock:
            if self.closed:
                raise ValueError("write to a closed RecordingWriter")
            # A chain's times must not go back (a clock step), or seeking it by time would miss frames.
            taken_at = max(taken_at, self._views_at)
            encoded = self._views.encode(taken_at, data)
            if encoded is not None:
                kind, payload, commit = encoded
                self._frame(kind, taken_at, payload)
                commit()
            if data.routes is not None:
                with gc_paused():
                    (kind, payload, commit), changed = self._routes.encode(taken_at, data.routes)
                self._frame(kind, taken_at, payload)
                commit()
                with self._lock:
                    self.route_keyframes += int(kind == ROUTES_KEYFRAME)
                    self.route_changes += int(kind == ROUTES_DELTA and changed)
            self._views_at = taken_at

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
        chain = _CHAINS[kind][0]
        with self._lock:
            if self.closed:
                raise ValueError("write to a closed RecordingWriter")
            self._write_frame(kind, taken_at, data, self._seq[chain])
            self._seq[chain] += 1  # only once written: a failed write leaves no gap in the numbers
            if chain == SOCKETS:
                self.frames += 1
            elif chain == VIEWS:
                self.view_frames += 1
            else:
                self.route_frames += 1

    def _write_frame(self, kind: int, taken_at: float, data: bytes, seq: int) -> None:
        head = _FRAME.pack(SYNC, len(data), taken_at, kind, seq, 0)
        crc = zlib.crc32(data, zlib.crc32(head[_CRC_FROM : _LAYOUTS[VERSION].crc_at]))
        # One write of the whole frame, then a flush: a kill can cut only the frame being written.
        self._file.write(head[: _LAYOUTS[VERSION].crc_at] + _U32.pack(crc) + data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.bytes_written += FRAME_HEADER_SIZE + len(data)

    def close(self) -> None:
        """Write the end marker and close. Safe to call twice, and while another thread writes (it then waits
        for that frame; later writes raise ValueError)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self._write_frame(END, time.time(), b"", 0)
                os.fsync(self._file.fileno())
            finally:
                self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
