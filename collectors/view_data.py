"""The data behind views 2-5 and 7 (interfaces, routes, statistics, multicast, NAT) and SystemViews, which polls
it.

Here rather than in app/ so that the recorder (collectors/recording/) and the headless `--record` can use it
without Textual.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from netscope.collectors.conntrack import Flow, conntrack_problem, read_conntrack
from netscope.collectors.interfaces import InterfaceCollector, InterfaceSnapshot
from netscope.collectors.model import Socket
from netscope.collectors.multicast import MulticastCollector, MulticastSnapshot
from netscope.collectors.namespaces import enter_namespace, namespace_sysfs
from netscope.collectors.protostats import ProtocolStatsCollector, StatsSnapshot
from netscope.collectors.routes import RouteCollector, RouteSnapshot

T = TypeVar("T")

# While recording, the routing table is read at least this often (seconds) even when its view is not shown, so
# that a recording holds it; not every interval, as a router's million routes take seconds to read.
ROUTES_WHILE_RECORDING = 10.0
# The conntrack table is parsed in Python (13 µs a flow: 0.13 s for 10,000): while the NAT view is shown it is read
# again only after this many times its last read's cost has passed, so reading it takes at most a tenth of a core.
CONNTRACK_PACE = 10.0


@dataclass(slots=True)
class ConntrackSnapshot:
    """One read of the kernel's connection tracking table, for the NAT view."""

    flows: list[Flow]
    taken_at: float
    read_seconds: float = 0.0
    every: float = 0.0  # seconds until the next read at the earliest (CONNTRACK_PACE times read_seconds)
    error: str = ""  # why there is no table (not loaded, no CAP_NET_ADMIN): then `flows` is empty


@dataclass(slots=True)
class UnixRows:
    """The unix sockets view 1 showed (`u`), for a recording: they are read by a worker of their own, not here."""

    taken_at: float
    sockets: list[Socket]


@dataclass(slots=True)
class ViewData:
    interfaces: InterfaceSnapshot | None = None
    routes: RouteSnapshot | None = None
    statistics: StatsSnapshot | None = None
    multicast: MulticastSnapshot | None = None
    warnings: list[str] = field(default_factory=list)
    conntrack: ConntrackSnapshot | None = None  # read only while the NAT view is shown
    unix: UnixRows | None = None  # view 1's unix sockets while shown: given by the app, recorded, replayed


class ViewSource(Protocol):
    """Where views 2-5 get their data: this machine (SystemViews), a recording (RecordedViews), or fixed data."""

    recording: bool  # routes are then read every few seconds whatever view is shown (SystemViews)

    def collect(self, active_view: str) -> ViewData: ...

    @property
    def available(self) -> bool:
        """Whether there are views to show at all (a version-1 recording has none)."""
        ...

    def close(self) -> None: ...


class ViewSourceDefaults:
    """Views that are always there, need nothing closed, and read the same whether recording or not."""

    recording = False

    @property
    def available(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing held."""


class SystemViews(ViewSourceDefaults):
    """Views 2-5 of this machine, or with `netns` (a namespace file, see namespaces.namespace_path) of that
    network namespace.

    With `netns`, every read runs in one dedicated thread that entered the namespace at its start (setns moves
    only the calling thread): /proc is read through /proc/thread-self (which follows the thread; /proc/self would
    follow the main thread), and the netlink sockets of routes and of interface addresses are opened in that
    thread, so in that namespace. Interface details come from /sys/class/net, but sysfs shows the namespace of
    whoever mounted it, so that thread mounts (and at once detaches) a sysfs of its own; if it cannot, the
    details are left out with a warning rather than taken from the host's interfaces of the same name."""

    def __init__(
        self, proc_root: str = "/proc", *, routes_every: float = ROUTES_WHILE_RECORDING, netns: str = ""
    ) -> None:
        self.netns = netns
        if netns and proc_root.rstrip("/") == "/proc":
            proc_root = "/proc/thread-self"
        self.proc_root = proc_root
        self.interfaces = InterfaceCollector(proc_root=proc_root)
        self.routes = RouteCollector(proc_root=proc_root)
        self.statistics = ProtocolStatsCollector(proc_root=proc_root)
        self.multicast = MulticastCollector(proc_root=proc_root)
        self.routes_every = routes_every
        self._recording = False
        self._routes_read_at: float | None = None  # time.monotonic() of the last routes read
        self._conntrack_due = 0.0  # time.monotonic() before which the conntrack table is not read again
        self._netns_error = ""  # why the namespace could not be entered: then nothing is read
        self._netns_warnings: list[str] = []  # what cannot be shown of the namespace (interface details)
        self._sysfs_fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        if netns:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="netscope-netns", initializer=self._enter_netns
            )

    def _enter_netns(self) -> None:
        # Runs in the executor's only thread, before any read. It must not raise: a failed initializer breaks
        # the executor, and the error is better shown as a warning on every collect().
        try:
            enter_namespace(self.netns)
        except OSError as error:
            self._netns_error = f"Cannot look into network namespace {self.netns}: {error.strerror or error}"
            return
        try:
            self._sysfs_fd = namespace_sysfs()
        except OSError as error:
            self._netns_warnings.append(
                f"Interface state, MTU, flags, speed and MAC of namespace {self.netns} are not shown:"
                f" {error.strerror or error}"
            )
            sys_root = "/nonexistent-sysfs-of-netns"  # never the host's /sys: same names, other interfaces
        else:
            sys_root = f"/proc/self/fd/{self._sysfs_fd}"
        self.interfaces = InterfaceCollector(proc_root=self.proc_root, sys_root=sys_root)

    def close(self) -> None:
        """Stop the namespace's thread and release its sysfs (nothing to do without `netns`)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._sysfs_fd is not None:
            os.close(self._sysfs_fd)
            self._sysfs_fd = None

    @property
    def recording(self) -> bool:
        """True while what collect() returns is being recorded: routes are then read every `routes_every`
        seconds whichever view is shown (and at the first collect() after recording starts)."""
        return self._recording

    @recording.setter
    def recording(self, value: bool) -> None:
        if value and not self._recording:
            self._routes_read_at = None  # a new recording starts with the table, not up to 10 s later
            self._conntrack_due = 0.0  # and with the NAT view's, if it is shown, whatever its pace
        self._recording = value

    def collect(self, active_view: str) -> ViewData:
        """Blocking: run in a thread.

        Interfaces and counters every interval (a few ms), so that history and "change in the last interval" stay
        true while another view is shown; the routing table, a million routes on a router, only while shown, or
        every `routes_every` seconds while recording."""
        if self._executor is not None:
            return self._executor.submit(self._collect_in_netns, active_view).result()
        return self._collect(active_view)

    def _collect_in_netns(self, active_view: str) -> ViewData:
        if self._netns_error:
            return ViewData(warnings=[self._netns_error])
        data = self._collect(active_view)
        data.warnings[:0] = self._netns_warnings
        return data

    def _collect(self, active_view: str) -> ViewData:
        data = ViewData()
        data.interfaces = self._guarded("interfaces", self.interfaces.collect, data.warnings)
        data.statistics = self._guarded("protocol statistics", self.statistics.collect, data.warnings)
        data.multicast = self._guarded("multicast groups", self.multicast.collect, data.warnings)
        if self._wants_routes(active_view):
            self._routes_read_at = time.monotonic()
            data.routes = self._guarded("routes", self.routes.collect, data.warnings)
        if active_view == "nat" and time.monotonic() >= self._conntrack_due:
            data.conntrack = self._read_conntrack()
        for snapshot in (data.interfaces, data.routes, data.statistics, data.multicast):
            if snapshot is not None:
                data.warnings.extend(snapshot.warnings)
        return data

    def _read_conntrack(self) -> ConntrackSnapshot:
        started, taken_at = time.monotonic(), time.time()
        try:
            flows, error = read_conntrack(), ""
        except OSError as problem:
            flows, error = [], conntrack_problem(problem, "netscope")
        spent = time.monotonic() - started
        self._conntrack_due = started + CONNTRACK_PACE * spent
        return ConntrackSnapshot(flows, taken_at, spent, CONNTRACK_PACE * spent, error)

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
