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
from netscope.widgets.text import printable


class ConfirmKillScreen(ModalScreen[bool]):
    """Dismisses with True to send the signal; y or Enter confirm, n or Escape cancel."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes, send it"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, details: ProcessDetails, socket_count: int, sig: signal.Signals) -> None:
        super().__init__()
        self.details = details
        self.socket_count = socket_count
        self.sig = sig

    def compose(self) -> ComposeResult:
        details = self.details
        body = Text()
        for label, value in (
            ("PID", str(details.pid)),
            ("Program", printable(details.name)),
            ("User", printable(details.user)),
            ("Command", printable(shlex.join(details.cmdline)) if details.cmdline else "-"),
            ("Sockets", f"{self.socket_count} held by this process"),
        ):
            body.append(f"{label:<9}", "bold")
            body.append(f"{value}\n")
        with Vertical(id="confirm-dialog"):
            yield Static(Text(f"Send {self.sig.name} to process {details.pid}?"), id="confirm-title")
            yield Static(body, id="confirm-body")
            yield Static("y / Enter: send it     n / Escape: cancel", id="confirm-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
