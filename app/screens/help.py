"""`?`: every key, and the filter language."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

FILTER_HELP = """\
Filter (/): space-separated terms, all must match; a comma means "any of"; ! negates.
  :80             local or remote port 80        lport:80  rport:5432
  established     a state (or a prefix: estab)   state:syn_recv,syn_sent
  listen          listening sockets only (-l)    pid:1234  proc:nginx  user:www-data
  proto:tcp       tcp udp tcp6 udp6 4 6          ip:10.0.0.5  ip:10.0.0.0/8  lip:  rip:
Examples:  :80 established    state:syn_recv !ip:127.0.0.0/8    proc:postgres rport:5432
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, description in self.keys:
            table.add_row(key, description)
        with VerticalScroll(id="help-dialog"):
            yield Static(Text("netscope keys", style="bold"))
            yield Static(table)
            yield Static(Text("\n" + FILTER_HELP))
            yield Static(Text("Escape closes this help.", style="dim"))
