"""Recordings as sources for the UI: ReplaySource plays a file back with controls, and RecordedViews shows views
2-5 as recorded. (RecordingTee, which records what a live source gives, is in tee.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
from collections.abc import AsyncIterator

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.recording.fileformat import (
    RecordingDamaged,
    _clock,
)
from netscope.collectors.recording.reader import (
    RecordingReader,
)
from netscope.collectors.sources import ReplayControls, SourceDefaults
from netscope.collectors.view_data import ViewData, ViewSource, ViewSourceDefaults

# --- sources for the UI ------------------------------------------------------------------------------------------


class ReplaySource(SourceDefaults):
    """A SnapshotSource that plays a recording back, with controls for the UI.

    `stream()` first yields the starting frame as a full reload (first=True), then one diff per recorded frame,
    spaced as they were recorded divided by `speed` (a gap longer than three intervals, e.g. while recording was
    stopped, is played as one interval). At the last frame it pauses and keeps waiting for controls; it never ends
    by itself. Jumps (seek_frame, seek_time, step back) yield a full reload; step forward yields the real diff.
    Damage in the file is reported once as a CollectionFailure; the readable frames play.

    Controls are plain methods meant to be called from the event loop's thread (as Textual handlers are); from
    another thread they are handed to the loop. Nothing may be killed while replaying: `replay` is itself.
    """

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
        self._target: int | None = self.reader.normal_index(start_frame) if len(self.reader) else None
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
    def replay(self) -> ReplayControls | None:
        return self

    def recorded_views(self) -> ViewSource:
        return RecordedViews(self)

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


class RecordedViews(ViewSourceDefaults):
    """A ViewSource for views 2-5 in a replay: the interfaces, routes, statistics and multicast groups recorded at
    the replay's current time (each the latest recorded at or before it), with the rates, changes and history
    they had live.

    `collect()` may be called from any thread, as SystemViews.collect is: it decodes with the reader's own views
    state, under its lock, never touching the replay's socket cursor."""

    def __init__(self, replay: ReplaySource) -> None:
        self.replay = replay

    @property
    def available(self) -> bool:
        """Whether the recording holds views at all (False for version 1 files: hide views 2-5 then)."""
        return self.replay.reader.has_views

    def collect(self, active_view: str) -> ViewData:
        when = self.replay.current_time
        if when is None:  # nothing played yet
            return ViewData()
        return self.replay.reader.views_at(when)
