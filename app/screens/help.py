"""`?`: every key active in the view shown, from the bindings themselves; the filter language, from its table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from netscope.collectors.session.filters import GRAMMAR, GRAMMAR_EXAMPLES, GRAMMAR_RULES

# What the mouse does: not a binding, so said here.
MOUSE_HELP = ("mouse", "click a row to select it (double click: details), a column header to sort by it", "")


def key_help(app: App[Any], active: Mapping[str, ActiveBinding]) -> list[tuple[str, str, str]]:
    """(keys, what they do, their ids for `[keys]` in the config file) for the active bindings, in the order
    Textual gives them (the focused widget's first); keys that do the same thing (↑ ↓ PgUp ..., 1 to 6, s and S)
    share a row."""
    rows: dict[str, tuple[list[str], list[str]]] = {}
    for active_binding in active.values():
        binding = active_binding.binding
        what = binding.tooltip or binding.description or binding.action
        keys, ids = rows.setdefault(what, ([], []))
        key = app.get_key_display(binding)
        if key not in keys:
            keys.append(key)
        if binding.id and binding.id not in ids:
            ids.append(binding.id)
    return [(" ".join(keys), what, " ".join(ids)) for what, (keys, ids) in rows.items()]


def plain(written: str) -> str:
    """The README's `code` marks taken off, for the screen."""
    return written.replace("`", "")


def grammar_table() -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for term in GRAMMAR:
        table.add_row(plain(term.written), plain(term.meaning))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.keys = [*keys, MOUSE_HELP]

    def grammar_rows(self) -> list[str]:
        """The filter terms as the help shows them, in order."""
        return [plain(term.written) for term in GRAMMAR]

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True, max_width=16)
        table.add_column(ratio=1)
        for key, description, ids in self.keys:
            # The ids follow the description, dimmed, so that a narrow terminal wraps them rather than the text.
            text = Text(description)
            if ids:
                text.append(f"  [{ids}]", style="dim")
            table.add_row(key, text)
        with VerticalScroll(id="help-dialog"):
            yield Static(Text("netscope keys (this view; [ids] name them for [keys] in the config file)",
                              style="bold"))
            yield Static(table, id="help-keys")
            yield Static(Text(f"\nFilter (/): {plain(GRAMMAR_RULES)}", style="bold"))
            yield Static(grammar_table(), id="help-grammar")
            yield Static(Text("Examples:  " + "    ".join(plain(e) for e in GRAMMAR_EXAMPLES)))
            yield Static(Text("Escape closes this help.", style="dim"))
