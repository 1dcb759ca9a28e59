"""The data behind views 2-5 (interfaces, routes, statistics, multicast) and SystemViews, which polls it.

Here rather than in app/ so that the recorder (collectors/recording.py) and the headless `--record` can use it
without Textual; `netscope.app.system_views` re-exports all of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from netscope.collectors.interfaces import InterfaceCollector, InterfaceSnapshot
from netscope.collectors.multicast import MulticastCollector, MulticastSnapshot
from netscope.collectors.protostats import ProtocolStatsCollector, StatsSnapshot
from netscope.collectors.routes import RouteCollector, RouteSnapshot

T = TypeVar("T")

# While recording, the routing table is read at least this often (seconds) even when its view is not shown, so
# that a recording holds it; not every interval, as a router's million routes take seconds to read.
ROUTES_WHILE_RECORDING = 10.0


@dataclass(slots=True)
class ViewData:
    interfaces: InterfaceSnapshot | None = None
    routes: RouteSnapshot | None = None
    statistics: StatsSnapshot | None = None
    multicast: MulticastSnapshot | None = None
    warnings: list[str] = field(default_factory=list)


class ViewSource(Protocol):
    """Where views 2-5 get their data: this machine (SystemViews), a recording (RecordedViews), or fixed data."""

    def collect(self, active_view: str) -> ViewData: ...


class SystemViews:
    def __init__(self, proc_root: str = "/proc", *, routes_every: float = ROUTES_WHILE_RECORDING) -> None:
        self.interfaces = InterfaceCollector(proc_root=proc_root)
        self.routes = RouteCollector(proc_root=proc_root)
        self.statistics = ProtocolStatsCollector(proc_root=proc_root)
        self.multicast = MulticastCollector(proc_root=proc_root)
        self.routes_every = routes_every
        self._recording = False
        self._routes_read_at: float | None = None  # time.monotonic() of the last routes read

    @property
    def recording(self) -> bool:
        """True while what collect() returns is being recorded: routes are then read every `routes_every`
        seconds whichever view is shown (and at the first collect() after recording starts)."""
        return self._recording

    @recording.setter
    def recording(self, value: bool) -> None:
        if value and not self._recording:
            self._routes_read_at = None  # a new recording starts with the table, not up to 10 s later
        self._recording = value

    def collect(self, active_view: str) -> ViewData:
        """Blocking: run in a thread.

        Interfaces and counters every interval (a few ms), so that history and "change in the last interval" stay
        true while another view is shown; the routing table, a million routes on a router, only while shown, or
        every `routes_every` seconds while recording."""
        data = ViewData()
        data.interfaces = self._guarded("interfaces", self.interfaces.collect, data.warnings)
        data.statistics = self._guarded("protocol statistics", self.statistics.collect, data.warnings)
        data.multicast = self._guarded("multicast groups", self.multicast.collect, data.warnings)
        if self._wants_routes(active_view):
            self._routes_read_at = time.monotonic()
            data.routes = self._guarded("routes", self.routes.collect, data.warnings)
        for snapshot in (data.interfaces, data.routes, data.statistics, data.multicast):
            if snapshot is not None:
                data.warnings.extend(snapshot.warnings)
        return data

    def _wants_routes(self, active_view: str) -> bool:
        if active_view == "routes":
            return True
        if not self._recording:
            return False
        last = self._routes_read_at
        return last is None or time.monotonic() - last >= self.routes_every

    @staticmethod
    def _guarded(what: str, collect: Callable[[], T], warnings: list[str]) -> T | None:
        # The collectors turn expected failures into warnings; this catches the unexpected, so one broken view
        # never takes the others (or the app) down.
        try:
            return collect()
        except Exception as error:  # one view's failure is reported, not fatal
            warnings.append(f"Reading {what} failed: {error.__class__.__name__}: {error}")
            return None
