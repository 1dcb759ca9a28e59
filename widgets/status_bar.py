"""One line under the table: what is shown, how it is sorted, how fresh it is, and any standing warning."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget


@dataclass(frozen=True, slots=True)
class Status:
    filter_terms: tuple[str, ...] = ()
    sort_label: str = ""
    collect_ms: float = 0.0
    interval: float = 1.0
    paused: bool = False
    names: bool = False
    warning: str = ""
    late_seconds: int = 0  # how old the data is once it is late (no refresh for a while); 0 while it is fresh
    low_bandwidth: bool = False
    stretched_for: float = 0.0  # the CPU share (0.2) the interval was stretched to keep under; 0: not stretched
    loading: int = 0  # the sockets of a first refresh while only its first screen is shown; 0: all are
    filtering: int = 0  # the sockets a new filter is being applied to (the rows shown are from before it); 0: none
    waiting: bool = False  # nothing read yet: no read time to show


def rounded_ms(ms: float) -> str:
    """Two significant digits (`7`, `42`, `310`, `1200`): a read time that wobbles by a millisecond each refresh
    would otherwise rewrite the status line every second, bytes that cross the SSH link for nothing."""
    if ms < 10:
        return f"{ms:.0f}"
    magnitude = 10 ** (len(str(int(ms))) - 2)
    return str(round(ms / magnitude) * magnitude)


class StatusBar(Widget):
    COMPONENT_CLASSES = {"status-bar--warning", "status-bar--paused", "status-bar--term"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.status = Status()

    def show_status(self, status: Status) -> None:
        if status != self.status:
            self.status = status
            self.refresh()

    def render(self) -> Text:
        # Built at paint time: component styles exist only once the widget is mounted.
        status = self.status
        text = Text(no_wrap=True, overflow="ellipsis")
        if status.paused:
            text.append(" PAUSED ", self.get_component_rich_style("status-bar--paused", partial=True))
            text.append(" ")
        if status.low_bandwidth:
            text.append("LOW-BW ", self.get_component_rich_style("status-bar--term", partial=True))
        # How many sockets are shown and of how many is the counter bar's ALL: said once, and the status line is
        # not repainted every time a socket opens somewhere on a busy server.
        if status.filter_terms:
            text.append("filter:")
            term_style = self.get_component_rich_style("status-bar--term", partial=True)
            for term in status.filter_terms:
                text.append(" ")
                text.append(term, term_style)
        else:
            text.append("no filter")
        text.append(f"  sort: {status.sort_label}")
        text.append(f"  {'names' if status.names else 'numeric'}")
        if status.waiting:
            text.append("  waiting for the first read")
        elif status.loading:
            # Said while it lasts: scrolling, sorting and filtering see only the first screen's rows until then.
            text.append(f"  showing the top of {status.loading:,} sockets; loading the rest")
        elif status.filtering:
            text.append(f"  filtering {status.filtering:,} sockets")
        elif status.late_seconds:
            # Said instead of the read time: a stalled collector must never look like a live table.
            text.append("  ")
            text.append(f"no refresh for {status.late_seconds}s: the data is that old",
                        self.get_component_rich_style("status-bar--warning", partial=True))
        else:
            text.append(f"  every {status.interval:g}s")
            if status.stretched_for:
                # Said plainly: a table refreshing every 5 s must not pass for one refreshing every second.
                text.append(f" (slowed to stay under {status.stretched_for * 100:g}% CPU)",
                            self.get_component_rich_style("status-bar--warning", partial=True))
            text.append(f", read in {rounded_ms(status.collect_ms)} ms")
        if status.warning:
            text.append("  ")
            text.append(status.warning, self.get_component_rich_style("status-bar--warning", partial=True))
        return text
