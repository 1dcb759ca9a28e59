"""The alert strip shown above every view: floods, leaks and overflows, in words, with where to look."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from netscope.collectors.session.alerts import Alert
from netscope.widgets.formatting import printable

SHOWN = 3  # more than this and the strip would push the table off a small screen


class AlertBar(Widget):
    COMPONENT_CLASSES = {"alert-bar--error", "alert-bar--warning", "alert-bar--detail", "alert-bar--hint"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.alerts: list[Alert] = []
        self.display = False

    def show_alerts(self, alerts: Sequence[Alert]) -> None:
        alerts = list(alerts)
        if alerts == self.alerts:
            return  # unchanged: nothing to send over the wire
        self.alerts = alerts
        self.display = bool(alerts)
        self.set_class(any(alert.severity == "error" for alert in alerts), "-error")
        self.refresh(layout=True)

    def render(self) -> Text:
        error = self.get_component_rich_style("alert-bar--error", partial=True)
        warning = self.get_component_rich_style("alert-bar--warning", partial=True)
        detail = self.get_component_rich_style("alert-bar--detail", partial=True)
        hint = self.get_component_rich_style("alert-bar--hint", partial=True)
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, alert in enumerate(self.alerts[:SHOWN]):
            if index:
                text.append("\n")
            text.append("▲ " + printable(alert.title), error if alert.severity == "error" else warning)
            if index == 0 and alert.filter_text:
                text.append("  (a: show them)", hint)  # before the detail, which an ellipsis may cut
            text.append("  " + printable(alert.detail), detail)
        hidden = len(self.alerts) - SHOWN
        if hidden > 0:
            text.append(f"  … and {hidden} more (view 6)", hint)
        return text
