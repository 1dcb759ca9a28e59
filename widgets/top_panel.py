"""The one-line "who is connected" panel on the connections screen: the busiest remote hosts, ports, programs."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from netscope.collectors.session.insights import Group
from netscope.widgets.formatting import printable

SHOWN = 3


class TopPanel(Widget):
    COMPONENT_CLASSES = {"top-panel--label", "top-panel--key", "top-panel--count"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.sections: list[tuple[str, list[Group]]] = []

    def show_groups(self, sections: list[tuple[str, list[Group]]]) -> None:
        # A group that just emptied is still reported once (with its negative change): not worth a place here.
        trimmed = [(label, [group for group in groups if group.total][:SHOWN]) for label, groups in sections]
        if _signature(trimmed) == _signature(self.sections):
            return  # the same text: repainting it would only cost bytes over SSH
        self.sections = trimmed
        self.refresh()

    def render(self) -> Text:
        label_style = self.get_component_rich_style("top-panel--label", partial=True)
        key_style = self.get_component_rich_style("top-panel--key", partial=True)
        count_style = self.get_component_rich_style("top-panel--count", partial=True)
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, (label, groups) in enumerate(self.sections):
            if index:
                text.append("  │  ")
            text.append(f"{label}: ", label_style)
            if not groups:
                text.append("-", label_style)
            for position, group in enumerate(groups):
                if position:
                    text.append("  ")
                text.append(printable(group.key), key_style)
                text.append(f" {group.total}", count_style)
        return text


def _signature(sections: list[tuple[str, list[Group]]]) -> list[tuple[str, list[tuple[str, int]]]]:
    return [(label, [(group.key, group.total) for group in groups]) for label, groups in sections]
