"""A DataTable for the smaller live views (interfaces, routes, statistics, multicast).

Rows have identities; each refresh highlights rows that are new or changed and lets removed rows linger, marked,
the way the connection table does. Tens to a few thousand rows: DataTable is fine at that size (the connection
table, which must take 100,000 rows, has its own Line API widget). Every cell is plain `Text`, never markup.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from netscope.widgets.formatting import printable

Cell = str | Text


@dataclass(slots=True)
class LiveRow:
    key: Hashable
    cells: Sequence[Cell]
    emphasis: str = ""  # a component class suffix for the whole row, e.g. "default" for the default route


class LiveTable(DataTable[Text]):
    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {
        "live-table--added",
        "live-table--changed",
        "live-table--removed",
        "live-table--default",
        "live-table--moving",
        "live-table--dim",
    }

    def __init__(
        self, columns: Sequence[str], *, flash_seconds: float = 3.0, highlight_changes: bool = True,
        id: str | None = None, classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._column_labels = list(columns)
        self.flash_seconds = flash_seconds
        # Off where rows change every refresh by nature (rates, counters): only new and removed rows flash.
        self.highlight_changes = highlight_changes
        self._shown: dict[Hashable, tuple[tuple[str, ...], str]] = {}  # key -> (plain cells, style name)
        self._order: list[Hashable] = []
        self._previous: dict[Hashable, tuple[str, ...]] = {}
        self._flash: dict[Hashable, tuple[str, float]] = {}
        self._gone: dict[Hashable, LiveRow] = {}
        self._last_rows: list[LiveRow] = []
        self._first = True
        self._pending: tuple[Sequence[LiveRow], float, bool] | None = None

    def on_mount(self) -> None:
        self.add_columns(*self._column_labels)
        if self._pending is not None:
            rows, now, highlight = self._pending
            self._pending = None
            self.show_rows(rows, now, highlight=highlight)

    def show_rows(self, rows: Sequence[LiveRow], now: float, *, highlight: bool = True) -> None:
        """Show `rows` in this order; flash what is new or changed since the last call; linger what went."""
        if not self.columns:
            # Data can arrive before the table is mounted (the first poll races the layout): keep the newest.
            self._pending = (rows, now, highlight)
            return
        current = {row.key: tuple(_plain(cell) for cell in row.cells) for row in rows}
        if highlight and not self._first:
            until = now + self.flash_seconds
            for key, cells in current.items():
                before = self._previous.get(key)
                if before is None:
                    self._flash[key] = ("added", until)
                    self._gone.pop(key, None)
                elif before != cells and self.highlight_changes:
                    self._flash[key] = ("changed", until)
            by_key = {row.key: row for row in self._last_rows}
            for key in self._previous.keys() - current.keys():
                if key in by_key:
                    self._gone[key] = by_key[key]
                    self._flash[key] = ("removed", until)
        self._first = False
        for key in [key for key, (_, until) in self._flash.items() if until <= now]:
            del self._flash[key]
            self._gone.pop(key, None)
        self._previous = current
        self._last_rows = list(rows)
        shown = list(rows) + [row for key, row in self._gone.items() if key not in current]
        self._render_rows(shown)

    def reset_highlights(self) -> None:
        """Forget what was shown: the next rows are a different set (another grouping), not changes to flash."""
        self._previous.clear()
        self._flash.clear()
        self._gone.clear()
        self._last_rows = []
        self._shown.clear()  # every cell restyled; `_order` stays what is on screen, so no rows at all clears it
        self._first = True

    def _row_style(self, row: LiveRow) -> tuple[str, Style]:
        flash = self._flash.get(row.key)
        name = flash[0] if flash else row.emphasis
        if not name:
            return "", Style()
        try:
            return name, self.get_component_rich_style(f"live-table--{name}")
        except KeyError:
            # Styles not applied yet (a table in a tab not shown so far): plain now; the row is recorded as
            # unstyled, so the next refresh styles it.
            return "", Style()

    def _render_rows(self, rows: Sequence[LiveRow]) -> None:
        keys = [row.key for row in rows]
        styled = [(row, *self._row_style(row)) for row in rows]
        if keys != self._order:
            selected = self._selected_key()
            scroll_y = self.scroll_y
            self.clear()
            for row, style_name, style in styled:
                self.add_row(*(_cell(cell, style) for cell in row.cells), key=repr(row.key))
                self._shown[row.key] = (tuple(_plain(cell) for cell in row.cells), style_name)
            self._order = keys
            self._shown = {row.key: self._shown[row.key] for row in rows}
            if selected is not None and selected in keys:
                self.move_cursor(row=keys.index(selected), animate=False, scroll=False)
            self.scroll_to(y=scroll_y, animate=False)
            return
        # Same rows in the same order: touch only the cells that changed. A column is re-measured only when a
        # cell outgrows it: DataTable re-measures the whole column for every narrower cell it is told about,
        # which with 400 counters a second cost most of a core.
        columns = list(self.columns.values())
        for index, (row, style_name, style) in enumerate(styled):
            plain = tuple(_plain(cell) for cell in row.cells)
            shown = self._shown.get(row.key)
            if shown == (plain, style_name):
                continue
            restyle = shown is None or shown[1] != style_name
            for column, cell in enumerate(row.cells):
                if not restyle and shown is not None and shown[0][column] == plain[column]:
                    continue
                text = _cell(cell, style)
                wider = cell_len(text.plain) > columns[column].content_width
                self.update_cell_at(Coordinate(index, column), text, update_width=wider)
            self._shown[row.key] = (plain, style_name)

    def _selected_key(self) -> Hashable | None:
        if 0 <= self.cursor_row < len(self._order):
            return self._order[self.cursor_row]
        return None

    @property
    def selected_key(self) -> Hashable | None:
        return self._selected_key()

    def export_rows(self) -> tuple[list[str], list[list[str]]]:
        """The column labels and the rows shown, in order, as plain text, lingering removed rows left out."""
        return list(self._column_labels), [[_plain(cell) for cell in row.cells] for row in self._last_rows]

    def flash_of(self, key: Hashable) -> str | None:
        """The highlight a row has now ("added", "changed", "removed"), for tests."""
        flash = self._flash.get(key)
        return flash[0] if flash else None


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _cell(cell: Cell, style: Style) -> Text:
    """System text becomes literal, escaped Text; the row's highlight goes over any style of its own."""
    text = cell.copy() if isinstance(cell, Text) else Text(printable(cell))
    if style:
        text.stylize(style)
    return text
