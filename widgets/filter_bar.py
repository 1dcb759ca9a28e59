"""The filter prompt: an input line with the error (if any) of the last filter typed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from netscope.collectors.session.filters import Filter, FilterError, parse_filter


class FilterBar(Vertical):
    """Enter submits the filter; Escape clears it. The app validates and calls `show_error` if it is bad."""

    BINDINGS = [
        Binding("escape", "clear", "Clear filter", show=False, tooltip="clear the filter and close the bar"),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Cleared(Message):
        pass

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder=":80 established   state:syn_recv,syn_sent !ip:127.0.0.0/8   proc:nginx   pid:1234",
            id="filter-input",
        )
        yield Static("", id="filter-error", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    def open(self, text: str) -> None:
        self.display = True
        self.input.value = text
        self.input.cursor_position = len(text)
        self.input.focus()

    def close(self) -> None:
        self.show_error("")
        self.display = False

    def parsed(self, text: str, kept: Filter) -> Filter | None:
        """The filter `text` says, the bar closed; or None, with what is wrong shown and the filter that stays."""
        try:
            new_filter = parse_filter(text)
        except FilterError as error:
            self.show_error(f"{error}  (the previous filter stays: {kept.text or 'none'})")
            return None
        self.close()
        return new_filter

    def show_error(self, message: str) -> None:
        error = self.query_one("#filter-error", Static)
        error.update(message)
        error.display = bool(message)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(event.value))

    def action_clear(self) -> None:
        self.input.value = ""
        self.post_message(self.Cleared())
