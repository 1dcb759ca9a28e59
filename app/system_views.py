"""Polls the collectors behind views 2-5 (interfaces, routes, statistics, multicast) in one thread call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from netscope.collectors.interfaces import InterfaceCollector, InterfaceSnapshot
from netscope.collectors.multicast import MulticastCollector, MulticastSnapshot
from netscope.collectors.protostats import ProtocolStatsCollector, StatsSnapshot
from netscope.collectors.routes import RouteCollector, RouteSnapshot

T = TypeVar("T")


@dataclass(slots=True)
class ViewData:
    interfaces: InterfaceSnapshot | None = None
    routes: RouteSnapshot | None = None
    statistics: StatsSnapshot | None = None
    multicast: MulticastSnapshot | None = None
    warnings: list[str] = field(default_factory=list)


class ViewSource(Protocol):
    """Where views 2-5 get their data: this machine (SystemViews), or fixed data in tests."""

    def collect(self, active_view: str) -> ViewData: ...


class SystemViews:
    def __init__(self, proc_root: str = "/proc") -> None:
        self.interfaces = InterfaceCollector(proc_root=proc_root)
        self.routes = RouteCollector(proc_root=proc_root)
        self.statistics = ProtocolStatsCollector(proc_root=proc_root)
        self.multicast = MulticastCollector(proc_root=proc_root)

    def collect(self, active_view: str) -> ViewData:
        """Blocking: run in a thread.

        Interfaces and counters every interval (a few ms), so that history and "change in the last interval" stay
        true while another view is shown; the routing table, a million routes on a router, only while shown."""
        data = ViewData()
        data.interfaces = self._guarded("interfaces", self.interfaces.collect, data.warnings)
        data.statistics = self._guarded("protocol statistics", self.statistics.collect, data.warnings)
        data.multicast = self._guarded("multicast groups", self.multicast.collect, data.warnings)
        if active_view == "routes":
            data.routes = self._guarded("routes", self.routes.collect, data.warnings)
        for snapshot in (data.interfaces, data.routes, data.statistics, data.multicast):
            if snapshot is not None:
                data.warnings.extend(snapshot.warnings)
        return data

    @staticmethod
    def _guarded(what: str, collect: Callable[[], T], warnings: list[str]) -> T | None:
        # The collectors turn expected failures into warnings; this catches the unexpected, so one broken view
        # never takes the others (or the app) down.
        try:
            return collect()
        except Exception as error:  # one view's failure is reported, not fatal
            warnings.append(f"Reading {what} failed: {error.__class__.__name__}: {error}")
            return None
