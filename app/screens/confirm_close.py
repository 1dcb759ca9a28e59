"""`x` on a TCP row: close just that connection (SOCK_DESTROY, like `ss -K`), after asking."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from netscope.collectors.model import Socket
from netscope.widgets.formatting import format_endpoint, printable, state_label


class ConfirmCloseScreen(ModalScreen[bool]):
    """Dismisses with True to close the connection; y or Enter confirm, n or Escape cancel."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes, close it"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, sock: Socket) -> None:
        super().__init__()
        self.sock = sock

    def compose(self) -> ComposeResult:
        sock = self.sock
        owner = f"{sock.pid}/{printable(sock.program)}" if sock.pid is not None else "no process (kernel-owned)"
        body = Text()
        for label, value in (
            ("Local", format_endpoint(sock.local_ip, sock.local_port)),
            ("Remote", format_endpoint(sock.remote_ip, sock.remote_port)),
            ("State", state_label(sock)),
            ("Owner", owner),
        ):
            body.append(f"{label:<8}", "bold")
            body.append(f"{value}\n")
        body.append("\nThe kernel aborts this one socket: the peer gets a reset, the program gets an error on "
                     "its next use of it, and keeps running.")
        with Vertical(id="confirm-dialog"):
            yield Static(Text(f"Close this {sock.proto} connection?"), id="confirm-title")
            yield Static(body, id="confirm-body")
            yield Static("y / Enter: close it     n / Escape: cancel", id="confirm-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
