"""Reading views 2-5 for the App: one read at a time in a thread, recorded while recording. Textual-free."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from netscope.collectors.sources import SnapshotSource
from netscope.collectors.view_data import UnixRows, ViewData, ViewSource


class ViewsReader:
    """A read that outlasts the interval (a huge routing table) is left to finish rather than cancelled and
    restarted, which would never show anything; reads asked for meanwhile are skipped. In a replay every step must
    end with its own views shown, so one asked for meanwhile is owed (`owed()`) and made once this one is done."""

    def __init__(self, views: ViewSource, source: SnapshotSource) -> None:
        self.views = views
        self.source = source
        self._busy = self._owed = False

    async def read(self, active_view: str, unix: Callable[[], UnixRows | None] | None = None,
                   ) -> tuple[ViewData | None, list[tuple[str, str]]]:
        """(what was read, or None if a read was under way; (problem, severity) to tell: a failed recording is an
        error, a collector's trouble a warning). `unix` gives view 1's unix sockets, recorded with the views while
        recording."""
        if self._busy:
            self._owed = self.source.replay is not None
            return None, []
        recorder = self.source.recorder
        recording = recorder is not None and recorder.recording
        self.views.recording = recording  # routes are then read every few seconds on any view
        self._busy = True
        problems: list[tuple[str, str]] = []
        try:
            result = await asyncio.to_thread(self.views.collect, active_view)
            if recorder is not None and recording:
                if unix is not None and self.source.replay is None:
                    result.unix = unix()
                problem = await asyncio.to_thread(recorder.write_views, result)
                if problem:
                    problems.append((problem, "error"))
        finally:
            self._busy = False
        return result, problems + [(warning, "warning") for warning in result.warnings]

    def owed(self) -> bool:
        """Whether a read was skipped that must still be made (a replay's step); asking settles it."""
        owed, self._owed = self._owed, False
        return owed
