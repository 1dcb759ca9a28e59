"""Enter on a row: the owning process (command line, user, start time, cwd) and all of its sockets."""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from netscope.collectors.connections import missing_owner_reason
from netscope.collectors.model import ProcessDetails, Socket, SocketKey, is_unix
from netscope.collectors.session.throughput import Throughput
from netscope.collectors.tcpinfo import TcpInfo
from netscope.collectors.timers import SocketProbe, timer_text
from netscope.widgets.connection_table import ConnectionTable
from netscope.widgets.formatting import format_endpoint, format_rate, printable, sparkline, state_label
from netscope.widgets.tcp_columns import format_bytes, format_micros


def describe_socket(sock: Socket) -> Text:
    text = Text()
    local = printable(format_endpoint(sock.local_ip, sock.local_port, sock.proto))
    remote = printable(format_endpoint(sock.remote_ip, sock.remote_port, sock.proto))
    text.append(f"{sock.proto}  {local}", "bold")
    text.append(f" → {remote}", "bold")
    text.append(f"  {state_label(sock)}  Recv-Q {sock.recv_q}  Send-Q {sock.send_q}  inode {sock.inode}")
    return text


def describe_recorded_owner(sock: Socket) -> Text:
    """A replay's row: its owner as recorded. The live process that has this PID now may be another program."""
    text = Text()
    if sock.pid is None:
        text.append(f"No process was recorded for this socket: {missing_owner_reason(sock)}.")
        return text
    for label, value in (
        ("PID", str(sock.pid)),
        ("Program", printable(sock.program) or "-"),
        ("User", printable(sock.user) or "-"),
    ):
        text.append(f"{label:<12}", "bold")
        text.append(f"{value}\n")
    text.append(
        "As recorded. This is a replay: the process that has this PID on this machine now is not looked at (it "
        "may be another program), and nothing can be killed from here.", "italic")
    return text


def describe_process(details: ProcessDetails | None, sock: Socket) -> Text:
    """Everything here came from the system, so it is appended as plain text, never parsed as markup."""
    text = Text()
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
        ("Container", printable(details.container) or "- (the host)"),
        ("Cgroup", printable(details.cgroup) or "(unreadable)"),
        ("Command", printable(shlex.join(details.cmdline)) if details.cmdline else "(none: a kernel thread?)"),
    ]
    for label, value in rows:
        text.append(f"{label:<12}", "bold")
        text.append(f"{value}\n")
    return text


def describe_peer(sock: Socket, peer: Socket | None) -> Text:
    """A unix socket's other end and who holds it: both ends of a socketpair or of a /run/*.sock connection."""
    text = Text()
    text.append("Peer        ", "bold")
    if not sock.remote_port:
        text.append("none: " + ("a listening socket; its connections are the rows whose peer is this one"
                                if sock.state == "LISTEN" else "not connected"))
        return text
    if peer is None:
        text.append(f"inode {sock.remote_port}, not in the table (it closed just now, or is not in this network "
                    "namespace)")
        return text
    text.append(f"inode {peer.inode}  {printable(peer.local_ip) or '(unnamed)'}  {state_label(peer)}\n")
    text.append("Peer owner  ", "bold")
    if peer.pid is None:
        text.append(f"- ({missing_owner_reason(peer)})")
    else:
        text.append(f"{peer.pid}/{printable(peer.program) or '?'}  user {printable(peer.user) or '-'}")
        if peer.container:
            text.append(f"  container {printable(peer.container)}")
    return text


# The connection's kernel counters, its rates, and its recent (send, receive) rate history.
TcpDetails = tuple[TcpInfo | None, Throughput | None, list[tuple[float, float]]]
HISTORY_WIDTH = 40


def _optional(value: int | None, show: Callable[[float], str] = str) -> str:
    return "-" if value is None else show(value)


def describe_tcp(sock: Socket, tcp: TcpDetails | None) -> Text:
    """The connection's TCP internals (what `ss -ti` prints), or why there are none."""
    text = Text()
    info, rate, history = tcp if tcp is not None else (None, None, [])
    if info is None:
        if not sock.is_tcp:
            text.append("UDP has no tcp_info.", "dim")
        elif tcp is None:
            text.append("TCP internals: press c and choose a tcp_info column to collect them.", "dim")
        else:
            text.append("No tcp_info for this socket (TIME_WAIT, a half-open request, or read from /proc).", "dim")
        return text
    send = rate.send_rate if rate else None
    recv = rate.recv_rate if rate else None
    text.append("Traffic     ", "bold")
    text.append(f"sent {format_bytes(info.bytes_acked)}B ({info.bytes_acked:,})"
                f"  received {format_bytes(info.bytes_received)}B ({info.bytes_received:,})")
    text.append(f"  now ↑ {format_rate(send) if send is not None else '-'}"
                f"  ↓ {format_rate(recv) if recv is not None else '-'}\n")
    if history:
        text.append("Send/s      ", "bold")
        text.append(sparkline([pair[0] for pair in history], HISTORY_WIDTH) + "\n")
        text.append("Recv/s      ", "bold")
        text.append(sparkline([pair[1] for pair in history], HISTORY_WIDTH) + "\n")
    text.append("TCP         ", "bold")
    text.append(
        f"rtt {format_micros(info.rtt_us)}/{format_micros(info.rttvar_us)}"
        f"  min_rtt {_optional(info.min_rtt_us, format_micros)}  cwnd {info.snd_cwnd}  mss {info.snd_mss}"
        f"  retrans {info.retransmits}/{info.total_retrans}  lost {info.lost}"
        f"  delivery {_optional(info.delivery_rate, format_rate)}\n"
    )
    text.append("Buffers     ", "bold")
    text.append(
        f"send {_optional(info.send_buffer_used, format_bytes)}/{_optional(info.send_buffer, format_bytes)}"
        f"  receive {_optional(info.recv_buffer_used, format_bytes)}/{_optional(info.recv_buffer, format_bytes)}"
        f"  not sent {_optional(info.notsent_bytes, format_bytes)}\n"
    )
    return text


class DetailsScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(
        self, sock: Socket, details: ProcessDetails | None, process_sockets: list[Socket], now: float,
        tcp: Callable[[SocketKey], TcpDetails | None] | None = None, recorded: bool = False,
        probe: Callable[[Socket], SocketProbe | None] | None = None,
        peer: Callable[[Socket], Socket | None] | None = None,
    ) -> None:
        """`tcp` gives the connection's current TCP internals (None: not collected); `probe` looks the one socket
        up in the kernel (its timer, and tcp_info when `tcp` has none); both are asked each second, `probe` in a
        thread. `recorded`: a replay's row, described as recorded (`details` is then not used). `peer` finds a unix
        socket's other end among the sockets read last (asked each second, as the peer may come and go)."""
        super().__init__()
        self.peer = peer
        self.probe = probe
        self.sock = sock
        self.details = details
        self.process_sockets = process_sockets
        self.now = now
        self.tcp = tcp
        self.recorded = recorded
        self.tcp_info = Static("", id="details-tcp")

    def compose(self) -> ComposeResult:
        info = describe_recorded_owner(self.sock) if self.recorded else describe_process(self.details, self.sock)
        shows_sockets = (self.recorded and self.sock.pid is not None) or (
            self.details is not None and not self.details.error)
        with Vertical(id="details-dialog"):
            # Focused first, so the keys scroll a long command line; Tab goes on to the process's sockets.
            with VerticalScroll(id="details-scroll"):
                # The connection, then its timer and TCP internals (short, live), then the owner (long).
                yield Static(describe_socket(self.sock), id="details-socket")
                yield self.tcp_info
                yield Static(info, id="details-info")
            if shows_sockets:
                yield Static(f"All {len(self.process_sockets)} sockets of this process:", id="details-hint")
                yield ConnectionTable(id="details-sockets")
            keys = "Escape closes · ↑ ↓ PgUp PgDn scroll"
            keys += " · Tab: the sockets below" if shows_sockets else ""
            yield Static(keys, id="confirm-hint")

    async def on_mount(self) -> None:
        for table in self.query(ConnectionTable):
            table.load(self.process_sockets, self.now)
        self.query_one("#details-scroll", VerticalScroll).focus()
        self.set_interval(1.0, self.show_tcp)
        await self.show_tcp()

    async def show_tcp(self) -> None:
        if is_unix(self.sock.proto):  # the peer as read (or recorded) with it
            self.tcp_info.update(describe_peer(self.sock, self.peer(self.sock) if self.peer is not None else None))
            return
        if self.recorded:
            self.tcp_info.update(Text("A recording holds no tcp_info.", "dim"))
            return
        tcp = self.tcp(self.sock.key) if self.tcp is not None else None
        probed = await asyncio.to_thread(self.probe, self.sock) if self.probe is not None else None
        if probed is not None and (tcp is None or tcp[0] is None) and probed.tcp_info is not None:
            tcp = (probed.tcp_info, None, [])  # no column chosen: this second's counters, without rates
        text = Text()
        if probed is not None:
            text.append("Timer       ", "bold")
            text.append(f"{timer_text(probed.timer)}  s left/retransmits/probes\n")
        text.append_text(describe_tcp(self.sock, tcp))
        self.tcp_info.update(text)
