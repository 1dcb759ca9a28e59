"""Per-state socket counts over the last hour, one chart line per state, newest on the right."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from netscope.collectors.session.history import HISTORY_STATES, StateHistory
from netscope.widgets.formatting import SPARK_LEVELS

LABEL_WIDTH = 12
# The chart spans the shortest of these that holds all the history kept: a minute after start it already shows a
# trend, instead of a sliver at the right of an hour-wide axis.
WINDOWS = (60.0, 300.0, 900.0, 1800.0, 3600.0)
FIGURES_WIDTH = 22  # "now 12345 peak 12345 "


def chart(values: list[int | None]) -> str:
    """Block characters scaled to the series' own peak; a gap (no sample yet) is a blank, zero the lowest block."""
    peak = max((value for value in values if value is not None), default=0)
    top = len(SPARK_LEVELS) - 1
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        elif peak <= 0 or value <= 0:
            out.append(SPARK_LEVELS[0])
        else:
            # Any non-zero count gets at least the second block, so one CLOSE_WAIT among thousands still shows.
            out.append(SPARK_LEVELS[max(1, min(top, round(value / peak * top)))])
    return "".join(out)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


class HistoryChart(Widget):
    COMPONENT_CLASSES = {"history-chart--label", "history-chart--chart", "history-chart--axis",
                         "history-chart--alert"}

    def __init__(self, history: StateHistory, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.history = history

    def render(self) -> Text:
        label_style = self.get_component_rich_style("history-chart--label", partial=True)
        chart_style = self.get_component_rich_style("history-chart--chart", partial=True)
        axis_style = self.get_component_rich_style("history-chart--axis", partial=True)
        history = self.history
        buckets = max(10, self.size.width - LABEL_WIDTH - FIGURES_WIDTH - 2)
        span = history.span()
        window = next((window for window in WINDOWS if window >= span), history.seconds)
        window = min(window, history.seconds)
        text = Text(no_wrap=True, overflow="crop")
        for name in HISTORY_STATES:
            values = history.series(name, buckets, window)
            peak = max((value for value in values if value is not None), default=0)
            text.append(f"{name[:LABEL_WIDTH]:<{LABEL_WIDTH}}", label_style)
            text.append(f"now {history.latest(name):>5} peak {peak:>5}  ")
            text.append(chart(values), chart_style)
            text.append("\n")
        axis = f"-{_minutes(window)}".ljust(buckets - 3) + "now"
        text.append(" " * (LABEL_WIDTH + FIGURES_WIDTH) + axis, axis_style)
        column = window / buckets
        text.append(f"\n{'':{LABEL_WIDTH}}{_minutes(span)} recorded (up to {_minutes(history.seconds)} kept); "
                    f"each column is {column:.1f} s, its highest count", axis_style)
        return text
