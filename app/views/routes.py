"""View 3, `netstat -r` and `netstat -rn -A inet6` live: every table, the default routes standing out."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from netscope.collectors.routes import Route, RouteSnapshot
from netscope.widgets.live_table import LiveRow, LiveTable

COLUMNS = ("Destination", "Gateway", "Flags", "Metric", "Iface", "Proto", "Scope", "Table", "Pref. source", "Type")


def route_row(route: Route) -> LiveRow:
    cells: list[str | Text] = [
        route.destination,
        route.gateway or "*",
        route.flags,
        Text(str(route.metric), justify="right"),
        route.interface or "-",
        route.protocol or "-",
        route.scope or "-",
        route.table,
        route.preferred_source or "-",
        route.type,
    ]
    return LiveRow(route.key, cells, emphasis="default" if route.is_default else "")


class RoutesView(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Held, not queried: data may arrive before this view is composed.
        self.summary = Static("", id="routes-summary", markup=False)
        self.table = LiveTable(COLUMNS, id="routes-table")
        self.snapshot: RouteSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield self.summary
        yield self.table

    def show(self, snapshot: RouteSnapshot) -> None:
        self.snapshot = snapshot
        routes = snapshot.routes
        ipv4 = sum(1 for route in routes if route.family == 4)
        defaults = [route for route in routes if route.is_default and route.table == "main"]
        via = ", ".join(f"{route.gateway or 'on-link'} dev {route.interface}" for route in defaults) or "none"
        self.summary.update(
            f"{ipv4} IPv4 and {len(routes) - ipv4} IPv6 routes in all tables (from {snapshot.source}); "
            f"default via {via}.  Flags: U up, G gateway, H host, ! reject."
        )
        self.table.show_rows([route_row(route) for route in routes], snapshot.taken_at)
