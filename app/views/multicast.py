"""View 5, `netstat -g` live: multicast group memberships per interface, IPv4 and IPv6."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from netscope.collectors.multicast import MulticastSnapshot
from netscope.widgets.live_table import LiveRow, LiveTable

COLUMNS = ("Interface", "Family", "Group", "RefCnt")


class MulticastView(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Held, not queried: data may arrive before this view is composed.
        self.summary = Static("", id="multicast-summary", markup=False)
        self.table = LiveTable(COLUMNS, id="multicast-table")
        self.snapshot: MulticastSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield self.summary
        yield self.table

    def show(self, snapshot: MulticastSnapshot) -> None:
        self.snapshot = snapshot
        memberships = snapshot.memberships
        interfaces = len({membership.interface for membership in memberships})
        self.summary.update(
            f"{len(memberships)} group memberships on {interfaces} interfaces (IPv4 from /proc/net/igmp, "
            "IPv6 from /proc/net/igmp6)"
        )
        rows = [
            LiveRow(
                (m.interface, m.family, m.group),
                [m.interface, f"IPv{m.family}", m.group, Text(str(m.users), justify="right")],
            )
            for m in memberships
        ]
        self.table.show_rows(rows, snapshot.taken_at)
