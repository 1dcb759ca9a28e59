"""One line under the table: what is shown, how it is sorted, how fresh it is, and any standing warning."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    COMPONENT_CLASSES = {"status-bar--warning", "status-bar--paused"}

    def show_status(
        self,
        *,
        shown: int,
        total: int,
        filter_text: str,
        sort_label: str,
        collect_ms: float,
        interval: float,
        paused: bool,
        names: bool,
        warning: str = "",
    ) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if paused:
            text.append(" PAUSED ", self.get_component_rich_style("status-bar--paused", partial=True))
            text.append(" ")
        text.append(f"{shown} of {total} sockets")
        text.append(f"  filter: {filter_text}" if filter_text else "  no filter")
        text.append(f"  sort: {sort_label}")
        text.append(f"  {'names' if names else 'numeric'}")
        text.append(f"  every {interval:g}s, read in {collect_ms:.0f} ms")
        if warning:
            text.append("  ")
            text.append(warning, self.get_component_rich_style("status-bar--warning", partial=True))
        self.update(text)
