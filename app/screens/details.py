"""Enter on a row: the owning process (command line, user, start time, cwd) and all of its sockets."""

from __future__ import annotations

import shlex
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from netscope.collectors.connections import missing_owner_reason
from netscope.collectors.model import ProcessDetails, Socket
from netscope.widgets.connection_table import ConnectionTable
from netscope.widgets.formatting import format_endpoint, state_label
from netscope.widgets.text import printable


def describe_socket(sock: Socket) -> Text:
    text = Text()
    text.append(f"{sock.proto}  {format_endpoint(sock.local_ip, sock.local_port)}", "bold")
    text.append(f" → {format_endpoint(sock.remote_ip, sock.remote_port)}", "bold")
    text.append(f"  {state_label(sock)}  Recv-Q {sock.recv_q}  Send-Q {sock.send_q}  inode {sock.inode}")
    return text


def describe_process(details: ProcessDetails | None, sock: Socket) -> Text:
    """Everything here came from the system, so it is appended as plain text, never parsed as markup."""
    text = describe_socket(sock)
    text.append("\n\n")
    if details is None:
        text.append(f"No process is shown for this socket: {missing_owner_reason(sock)}.")
        return text
    if details.error:
        text.append(printable(details.error), "bold red")
        return text
    rows = [
        ("PID", str(details.pid)),
        ("Program", printable(details.name)),
        ("User", printable(details.user)),
        ("Started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(details.start_time))),
        ("Status", details.status),
        ("Parent PID", str(details.parent_pid)),
        ("Executable", printable(details.exe) or "(unreadable)"),
        ("Working dir", printable(details.cwd) or "(unreadable)"),
        ("Command", printable(shlex.join(details.cmdline)) if details.cmdline else "(none: a kernel thread?)"),
    ]
    for label, value in rows:
        text.append(f"{label:<12}", "bold")
        text.append(f"{value}\n")
    return text


class DetailsScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(
        self, sock: Socket, details: ProcessDetails | None, process_sockets: list[Socket], now: float
    ) -> None:
        super().__init__()
        self.sock = sock
        self.details = details
        self.process_sockets = process_sockets
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical(id="details-dialog"):
            yield Static(describe_process(self.details, self.sock), id="details-info")
            if self.details is not None and not self.details.error:
                yield Static(f"All {len(self.process_sockets)} sockets of this process:", id="details-hint")
                yield ConnectionTable(id="details-sockets")
            yield Static("Escape closes", id="confirm-hint")

    def on_mount(self) -> None:
        for table in self.query(ConnectionTable):
            table.load(self.process_sockets, self.now)
