"""Where the connection screen's refreshes come from, and what each source can do besides.

A source streams diffs. What else it can do is asked through these members, never by testing its class: whether
it is a replay (and its controls), whether it can record, and whether it can collect tcp_info. `SourceDefaults`
answers "none of these", so a source states only what it adds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol, TypeAlias

from netscope.collectors.model import FirstScreen, SnapshotDiff

if TYPE_CHECKING:
    from netscope.collectors.connections import CollectionFailure
    from netscope.collectors.pace import PaceState
    from netscope.collectors.recording import RecordingWriter
    from netscope.collectors.view_data import ViewData, ViewSource

    # What a source streams: refreshes, failures, and (from a worker asked for one) a first screen before the
    # first refresh.
    SourceUpdate: TypeAlias = SnapshotDiff | CollectionFailure | FirstScreen


class ReplayControls(Protocol):
    """Play, pause, step and seek a recording (the UI's space , . [ ] - +)."""

    @property
    def speed(self) -> float: ...

    @property
    def current_time(self) -> float | None: ...

    def toggle(self) -> None: ...

    def pause(self) -> None: ...

    def step(self, frames: int) -> None: ...

    def seek_time(self, when: float) -> None: ...

    def set_speed(self, speed: float) -> None: ...

    def describe(self) -> str:
        """The position, for the status line."""
        ...

    def recorded_views(self) -> ViewSource:
        """Views 2-5 as recorded, following the replay's position."""
        ...


class Recorder(Protocol):
    """Records the refreshes passing through it, from `start` to `stop` (the UI's R)."""

    @property
    def recording(self) -> bool: ...

    @property
    def writer(self) -> RecordingWriter | None: ...

    def start(self, writer: RecordingWriter) -> None: ...

    def stop(self) -> RecordingWriter | None: ...

    def write_views(self, data: ViewData) -> str | None: ...


class SnapshotSource(Protocol):
    """Anything the connections screen can take refreshes from: the live collector, or a recording."""

    interval: float

    def stream(self) -> AsyncIterator[SourceUpdate]: ...

    async def aclose(self) -> None: ...

    @property
    def replay(self) -> ReplayControls | None:
        """Its controls if it is a recording being replayed; None for live data (which may be killed from)."""
        ...

    @property
    def recorder(self) -> Recorder | None:
        """What records it, if it can be recorded."""
        ...

    def set_tcp_info(self, enabled: bool) -> None:
        """Collect tcp_info (or stop) from the next refresh on, where the source can."""
        ...

    @property
    def pace(self) -> PaceState | None:
        """How often it refreshes now, if it paces itself to a CPU share (collectors/pace.py); else None."""
        ...


class SourceDefaults:
    """A live source that cannot record, has no tcp_info and is not a replay: subclass and add what you can."""

    @property
    def is_replay(self) -> bool:
        return self.replay is not None

    @property
    def replay(self) -> ReplayControls | None:
        return None

    @property
    def recorder(self) -> Recorder | None:
        return None

    @property
    def pace(self) -> PaceState | None:
        return None

    def set_tcp_info(self, enabled: bool) -> None:
        """No tcp_info here: the columns show '-'."""
