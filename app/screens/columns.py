"""`c`: choose the optional tcp_info columns of the connection table (remembered in the config file)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from netscope.widgets.tcp_columns import CHOOSABLE_COLUMNS


class ColumnsScreen(ModalScreen[list[str] | None]):
    """Dismisses with the chosen column keys (Enter), or None (Escape: nothing changes)."""

    BINDINGS = [
        Binding("enter", "done", "Apply", priority=True),  # the list would take Enter as a toggle
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, chosen: list[str], note: str = "") -> None:
        super().__init__()
        self.chosen = chosen
        self.note = note

    def compose(self) -> ComposeResult:
        selections = [
            Selection(f"{label:<10} {description}", key, key in self.chosen)
            for key, label, description in CHOOSABLE_COLUMNS
        ]
        with Vertical(id="columns-dialog"):
            yield Static("Extra connection columns: the owner's container, and the kernel's tcp_info",
                         id="columns-title")
            yield SelectionList[str](*selections, id="columns-list")
            if self.note:
                yield Static(self.note, id="columns-note", markup=False)
            yield Static("Space: toggle   Enter: apply and remember   Escape: cancel", id="columns-hint")

    def action_done(self) -> None:
        chosen = set(self.query_one(SelectionList).selected)
        # In the order of the list, not the order they were ticked: the table reads the same every time.
        self.dismiss([key for key, _, _ in CHOOSABLE_COLUMNS if key in chosen])

    def action_cancel(self) -> None:
        self.dismiss(None)
