"""`k` / `K` on a row: show exactly which process would be signalled, and ask."""

from __future__ import annotations

import shlex
import signal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from netscope.collectors.model import ProcessDetails
from netscope.widgets.formatting import capped, printable

# A command line or name can be megabytes long (argv is the process's to choose): the dialog shows this much so its
# question and keys always fit on screen; the details (Enter) show all of it, scrollable.
PROGRAM_CHARS = 80
COMMAND_CHARS = 240


class ConfirmKillScreen(ModalScreen[bool]):
    """Dismisses with True to send the signal; y or Enter confirm, n or Escape cancel."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes, send it"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, details: ProcessDetails, socket_count: int, sig: signal.Signals, note: str = "") -> None:
        """`socket_count`: the sockets the process holds as just checked; `note`: a line on how fresh that is."""
        super().__init__()
        self.details = details
        self.socket_count = socket_count
        self.sig = sig
        self.note = note

    def compose(self) -> ComposeResult:
        details = self.details
        body = Text()
        for label, value in (
            ("PID", str(details.pid)),
            ("Program", capped(printable(details.name), PROGRAM_CHARS)),
            ("User", capped(printable(details.user), PROGRAM_CHARS)),
            ("Command", capped(printable(shlex.join(details.cmdline)), COMMAND_CHARS) if details.cmdline else "-"),
            ("Sockets", f"{self.socket_count} held by this process now"),
        ):
            body.append(f"{label:<9}", "bold")
            body.append(f"{value}\n")
        if self.note:
            body.append(self.note, "italic")
        with Vertical(id="confirm-dialog"):
            yield Static(Text(f"Send {self.sig.name} to process {details.pid}?"), id="confirm-title")
            yield Static(body, id="confirm-body")
            yield Static("y / Enter: send it     n / Escape: cancel", id="confirm-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
