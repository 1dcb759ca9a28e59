"""Output without the full-screen UI: `--once`, `--json`, `--csv`, `--count`, netstat's flags and views (-tulnp46e,
-i, -r, -s, -g), `--watch`, headless `--record`, and printing a recorded moment with `--replay`.

No Textual here (start-up stays fast) and the sockets are read in this process with ConnectionCollector: one
snapshot needs no worker. Text output never holds colours or escape codes; every system-supplied string
(program and user names, interface names, host names) goes through `printable()`, and JSON is ASCII with every
control character escaped.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import io
import json
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from netscope.collectors.model import COUNTED_STATES, Snapshot, SnapshotDiff, Socket
from netscope.collectors.regular_files import open_regular
from netscope.collectors.session.filters import Filter
from netscope.widgets.formatting import (
    format_endpoint,
    ip_order,
    owner_text,
    printable,
    spreadsheet_safe,
    state_label,
)

if TYPE_CHECKING:  # only for annotations: one-shot output starts without importing every collector
    from netscope.collectors.interfaces import InterfaceSnapshot
    from netscope.collectors.multicast import MulticastSnapshot
    from netscope.collectors.protostats import StatsSnapshot
    from netscope.collectors.recording import RecordingWriter
    from netscope.collectors.routes import RouteSnapshot
    from netscope.collectors.view_data import ViewData

# The JSON/CSV fields of a socket, in order. Stable: scripts depend on them (README, "Scripting").
FIELDS: tuple[str, ...] = (
    "proto", "recv_q", "send_q", "local_address", "local_port", "remote_address", "remote_port", "state",
    "pid", "program", "user", "uid", "inode",
)  # fmt: skip

_PROTO_ORDER = {"tcp": 0, "tcp6": 1, "udp": 2, "udp6": 3}


class UsageError(Exception):
    """A command line that cannot be carried out: exit status 2, the message on stderr."""


class Failure(Exception):
    """Something went wrong that is not the user's typing: exit status 1, the message on stderr."""


# --- which sockets -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """netstat's selection flags and the filter: -t/-u protocol, -4/-6 family, -l listening only."""

    tcp: bool = True
    udp: bool = True
    ipv4: bool = True
    ipv6: bool = True
    listening_only: bool = False
    filter: Filter = field(default_factory=Filter)

    @classmethod
    def from_args(cls, args: argparse.Namespace, flt: Filter) -> Selection:
        # Neither flag of a pair means both, as in netstat.
        tcp, udp = args.tcp or not args.udp, args.udp or not args.tcp
        v4, v6 = args.ipv4 or not args.ipv6, args.ipv6 or not args.ipv4
        return cls(tcp, udp, v4, v6, args.listening, flt)

    def matches(self, sock: Socket) -> bool:
        if not (self.tcp if sock.is_tcp else self.udp):
            return False
        if not (self.ipv6 if sock.family == 6 else self.ipv4):
            return False
        if self.listening_only and not sock.is_listening:
            return False
        return self.filter.matches(sock)

    def pick(self, sockets: Iterable[Socket]) -> list[Socket]:
        return [sock for sock in sockets if self.matches(sock)]


def sort_sockets(sockets: Iterable[Socket]) -> list[Socket]:
    """tcp, tcp6, udp, udp6; listeners first; then by local and remote address and port, as numbers."""
    return sorted(
        sockets,
        key=lambda s: (
            _PROTO_ORDER.get(s.proto, 9), not s.is_listening, ip_order(s.local_ip), s.local_port,
            ip_order(s.remote_ip), s.remote_port, s.inode,
        ),
    )  # fmt: skip


# --- sockets as text, JSON and CSV -------------------------------------------------------------------------------


def socket_record(sock: Socket) -> dict[str, Any]:
    """A socket under the documented field names. Unknown owner: pid and program null; no owner at all
    (TIME_WAIT, inode 0): user null as well."""
    return {
        "proto": sock.proto,
        "recv_q": sock.recv_q,
        "send_q": sock.send_q,
        "local_address": sock.local_ip,
        "local_port": sock.local_port,
        "remote_address": sock.remote_ip,
        "remote_port": sock.remote_port,
        "state": state_label(sock),
        "pid": sock.pid,
        "program": sock.program if sock.pid is not None else None,
        "user": sock.user or None,
        "uid": sock.uid,
        "inode": sock.inode,
    }


class Names:
    """Host and service names for `--names`: reverse lookups run in daemon threads and are waited for at most
    `timeout` seconds in all, so a dead DNS server delays the output by that much and no more."""

    WORKERS = 16

    def __init__(self, addresses: Iterable[str], timeout: float = 2.0) -> None:
        # glibc's resolver has no per-call timeout; RES_OPTIONS bounds each query (a user's own setting wins).
        os.environ.setdefault("RES_OPTIONS", "timeout:1 attempts:1")
        self.hosts: dict[str, str] = {}
        wanted = [ip for ip in dict.fromkeys(addresses) if ip not in ("0.0.0.0", "::")]
        jobs: queue.Queue[str] = queue.Queue()
        for ip in wanted:
            jobs.put(ip)
        done = threading.Semaphore(0)

        def work() -> None:
            while True:
                try:
                    ip = jobs.get_nowait()
                except queue.Empty:
                    return
                with contextlib.suppress(OSError, UnicodeError):
                    self.hosts[ip] = socket.gethostbyaddr(ip)[0]
                done.release()

        # Daemon threads: a lookup still hanging when the output is done must not keep the process alive.
        for _ in range(min(self.WORKERS, len(wanted))):
            threading.Thread(target=work, daemon=True, name="netscope-dns").start()
        deadline = time.monotonic() + timeout
        for _ in wanted:
            if not done.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
        self.hosts = dict(self.hosts)  # a snapshot: late answers must not change the table while it is printed
        self._services: dict[tuple[int, str], str | None] = {}

    def endpoint(self, ip: str, port: int, proto: str) -> str:
        host = printable(self.hosts.get(ip, ip))
        if not port:
            port_text = "*"
        else:
            kind = "udp" if proto.startswith("udp") else "tcp"
            if (port, kind) not in self._services:
                try:
                    self._services[(port, kind)] = socket.getservbyport(port, kind)
                except (OSError, OverflowError):
                    self._services[(port, kind)] = None
            port_text = self._services[(port, kind)] or str(port)
        return f"[{host}]:{port_text}" if ":" in host else f"{host}:{port_text}"


def connection_lines(
    sockets: list[Socket],
    *,
    listening_only: bool = False,
    extended: bool = False,
    header: bool = True,
    names: Names | None = None,
    when: str = "",
) -> list[str]:
    """The table `netstat -antup` prints (with -e: User and Inode before the owner), in netscope's sort order.

    Columns widen to the longest address rather than cutting it (netstat's -W). An unconnected UDP socket has an
    empty State, as in netstat.
    """
    if names is None:
        local = [format_endpoint(s.local_ip, s.local_port, s.proto) for s in sockets]
        remote = [format_endpoint(s.remote_ip, s.remote_port, s.proto) for s in sockets]
    else:
        local = [names.endpoint(s.local_ip, s.local_port, s.proto) for s in sockets]
        remote = [names.endpoint(s.remote_ip, s.remote_port, s.proto) for s in sockets]
    lw = max([23, *map(len, local)])
    rw = max([23, *map(len, remote)])
    lines: list[str] = []
    if header:
        kind = "only servers" if listening_only else "servers and established"
        lines.append(f"Active Internet connections ({kind}){when}")
        extra = f"{'User':<10} {'Inode':<10} " if extended else ""
        lines.append(
            f"Proto Recv-Q Send-Q {'Local Address':<{lw}} {'Foreign Address':<{rw}} {'State':<11} {extra}"
            "PID/Program name"
        )
    for sock, here, there in zip(sockets, local, remote, strict=True):
        state = "" if sock.state == "UNCONN" else state_label(sock)
        extra = f"{printable(sock.user) or sock.uid:<10} {sock.inode:<10} " if extended else ""
        lines.append(
            f"{sock.proto:<5} {sock.recv_q:>6} {sock.send_q:>6} {here:<{lw}} {there:<{rw}} {state:<11} {extra}"
            f"{owner_text(sock)}"
        )
    return lines


def json_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A JSON array with one object per line: valid JSON, and still greppable."""
    yield "["
    previous: str | None = None
    for record in records:
        if previous is not None:
            yield previous + ","
        previous = json.dumps(record, ensure_ascii=True)
    if previous is not None:
        yield previous
    yield "]"


def csv_lines(sockets: Iterable[Socket]) -> Iterator[str]:
    out = _LineBuffer()
    writer = csv.writer(out, lineterminator="")
    writer.writerow(FIELDS)
    yield out.take()
    for sock in sockets:
        record = socket_record(sock)
        # CSV is read in terminals and spreadsheets: escape control characters as the text table does, and never
        # let a name start a formula.
        writer.writerow(["" if v is None else spreadsheet_safe(printable(v)) if isinstance(v, str) else v
                         for v in record.values()])
        yield out.take()


class _LineBuffer:
    """A file-like object for csv.writer that hands back one row at a time."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        return text


# --- per-state counts (--watch) ----------------------------------------------------------------------------------


def state_counts(sockets: Iterable[Socket]) -> tuple[dict[str, int], int]:
    """Counts per counter-bar state (every one, zeros included, so a log's columns never move) and the total."""
    found = Counter(sock.counter_name for sock in sockets)
    return {state: found.get(state, 0) for state in COUNTED_STATES}, sum(found.values())


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def watch_line(taken_at: float, sockets: Iterable[Socket], fmt: str) -> str:
    counts, total = state_counts(sockets)
    if fmt == "json":
        return json.dumps({"time": _iso(taken_at), "timestamp": round(taken_at, 3), "counts": counts,
                           "total": total})  # fmt: skip
    if fmt == "csv":
        return ",".join([_iso(taken_at), *map(str, counts.values()), str(total)])
    return " ".join([_iso(taken_at), *(f"{state} {n}" for state, n in counts.items()), f"total {total}"])


def watch_header(fmt: str) -> str | None:
    return ",".join(["time", *COUNTED_STATES, "total"]) if fmt == "csv" else None


# --- netstat -i, -r, -s, -g --------------------------------------------------------------------------------------


def interface_lines(
    snapshot: InterfaceSnapshot | None = None,
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """`netstat -i`: text lines, JSON records and warnings; of this machine, or of `snapshot` (a recording's)."""
    if snapshot is None:
        from netscope.collectors.interfaces import InterfaceCollector

        snapshot = InterfaceCollector().collect()
    lines = [
        "Kernel Interface table",
        f"{'Iface':<16}{'MTU':>5} {'RX-OK':>8} {'RX-ERR':>6} {'RX-DRP':>6} {'RX-OVR':<6} {'TX-OK':>8} "
        f"{'TX-ERR':>6} {'TX-DRP':>6} {'TX-OVR':>6} Flg",
    ]
    records: list[dict[str, Any]] = []
    for iface in snapshot.interfaces:
        c = iface.counters
        lines.append(
            f"{printable(iface.name):<16}{iface.mtu:>5} {c.rx_packets:>8} {c.rx_errors:>6} {c.rx_dropped:>6} "
            f"{c.rx_fifo:<6} {c.tx_packets:>8} {c.tx_errors:>6} {c.tx_dropped:>6} {c.tx_fifo:>6} {iface.flags}"
        )
        records.append({
            "name": iface.name, "index": iface.index, "up": iface.up, "running": iface.running,
            "operstate": iface.operstate, "mtu": iface.mtu, "flags": iface.flags, "speed_mbps": iface.speed_mbps,
            "mac": iface.mac, "ipv4": iface.ipv4, "ipv6": iface.ipv6, **asdict(c),
        })  # fmt: skip
    return lines, records, snapshot.warnings


def _genmask(prefix: str) -> str:
    bits = int(prefix) if prefix.isdigit() else 32
    return socket.inet_ntoa(((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF).to_bytes(4, "big"))


def route_lines(
    ipv4: bool, ipv6: bool, snapshot: RouteSnapshot | None = None
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """`netstat -rn` and `netstat -rn -A inet6`: the main table (the Routes view shows every table)."""
    if snapshot is None:
        from netscope.collectors.routes import RouteCollector

        snapshot = RouteCollector().collect()
    # /proc/net/ipv6_route (the fallback) does not say the table: "" then.
    routes = [r for r in snapshot.routes if r.table in ("main", "")]
    lines: list[str] = []
    if ipv4:
        lines.append("Kernel IP routing table")
        lines.append(f"{'Destination':<15} {'Gateway':<15} {'Genmask':<15} Flags Metric Iface")
        for r in routes:
            if r.family == 4:
                dest, _, prefix = r.destination.partition("/")
                lines.append(
                    f"{dest:<15} {r.gateway or '0.0.0.0':<15} {_genmask(prefix):<15} {r.flags:<5} {r.metric:>6} "
                    f"{printable(r.interface) or '*'}"
                )
    if ipv6:
        if lines:
            lines.append("")
        lines += ["Kernel IPv6 routing table", f"{'Destination':<30} {'Next Hop':<26} Flag {'Met':>6} If"]
        for r in routes:
            if r.family == 6:
                lines.append(
                    f"{r.destination:<30} {r.gateway or '::':<26} {r.flags:<4} {r.metric:>6} "
                    f"{printable(r.interface) or '*'}"
                )
    records = [asdict(r) for r in routes if (ipv4 and r.family == 4) or (ipv6 and r.family == 6)]
    return lines, records, snapshot.warnings


def statistics_lines(snapshot: StatsSnapshot | None = None) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """`netstat -s`: every counter by group, in the kernel's order, with readable labels where there are."""
    if snapshot is None:
        from netscope.collectors.protostats import ProtocolStatsCollector

        snapshot = ProtocolStatsCollector().collect()
    lines: list[str] = []
    group = None
    for c in snapshot.counters:
        if c.group != group:
            group = c.group
            lines.append(f"{group}:")
        if not c.label:
            lines.append(f"    {c.name}: {c.value}")
        elif c.is_gauge:  # a level or a setting reads better as "label: value"
            lines.append(f"    {c.label}: {c.value}")
        else:
            lines.append(f"    {c.value} {c.label}")
    records = [
        {"group": c.group, "name": c.name, "value": c.value, "label": c.label, "is_gauge": c.is_gauge}
        for c in snapshot.counters
    ]
    return lines, records, snapshot.warnings


def multicast_lines(
    ipv4: bool, ipv6: bool, snapshot: MulticastSnapshot | None = None
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """`netstat -g`: IPv4 memberships, then IPv6."""
    if snapshot is None:
        from netscope.collectors.multicast import MulticastCollector

        snapshot = MulticastCollector().collect()
    chosen = [m for m in snapshot.memberships if (ipv4 and m.family == 4) or (ipv6 and m.family == 6)]
    chosen.sort(key=lambda m: m.family)  # stable: keeps the collector's order within a family
    lines = ["IPv6/IPv4 Group Memberships", "Interface       RefCnt Group", "--------------- ------ " + "-" * 21]
    lines += [f"{printable(m.interface):<15} {m.users:<6} {m.group}" for m in chosen]
    return lines, [asdict(m) for m in chosen], snapshot.warnings


# --- running -----------------------------------------------------------------------------------------------------


class Output:
    """Writes lines to stdout. Undecodable or unencodable text is escaped, never an error."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        with contextlib.suppress(AttributeError, ValueError):
            self.stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]

    def lines(self, lines: Iterable[str]) -> None:
        write = self.stream.write
        for line in lines:
            write(line)
            write("\n")
        self.stream.flush()

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()  # one line per refresh: a `tee` or log shows it at once


def warn(message: str) -> None:
    print(f"netscope: {message}", file=sys.stderr, flush=True)


def print_connections(args: argparse.Namespace, out: Output, snapshot: Snapshot, selection: Selection,
                      when: str = "") -> None:  # fmt: skip
    sockets = selection.pick(snapshot.sockets.values())
    if args.count:
        out.line(str(len(sockets)))
        return
    sockets = sort_sockets(sockets)
    if args.json:
        out.lines(json_lines(socket_record(sock) for sock in sockets))
    elif args.csv:
        out.lines(csv_lines(sockets))
    else:
        names = Names([ip for s in sockets for ip in (s.local_ip, s.remote_ip)]) if args.names else None
        out.lines(
            connection_lines(
                sockets, listening_only=selection.listening_only, extended=args.extend,
                header=not args.no_header, names=names, when=when,
            )
        )  # fmt: skip


def run_once(args: argparse.Namespace, out: Output, selection: Selection) -> int:
    """One snapshot of this machine's sockets, printed as asked."""
    from netscope.collectors.connections import ConnectionCollector

    try:
        snapshot = ConnectionCollector().collect()
    except OSError as error:
        raise Failure(f"cannot read the socket tables: {error}") from None
    if not (args.json or args.csv or args.count):
        # Why some owners show "-", on stderr as netstat's "(Not all processes could be identified ...)". Data
        # for programs says it with a null pid.
        for message in snapshot.warnings:
            warn(message)
        if (hidden := unseen_owners(snapshot, selection)):
            warn(f"{hidden} socket(s) have an owner that netscope cannot see (PID/Program '-'): their processes "
                 "are outside its view, in another PID namespace (netscope runs in a container, or under unshare: "
                 "run it on the host, or with the host's PID namespace), or they exited just now")
    print_connections(args, out, snapshot, selection)
    return 0


def unseen_owners(snapshot: Snapshot, selection: Selection) -> int:
    """As root, with every /proc readable: the shown sockets that some process holds (an inode) but no process in
    /proc does. Without root, the not-root warning already says why owners are missing."""
    if os.geteuid() != 0 or snapshot.owners_incomplete:
        return 0
    return sum(1 for sock in selection.pick(snapshot.sockets.values()) if sock.inode and sock.pid is None)


def run_view(args: argparse.Namespace, out: Output, recorded: ViewData | None = None) -> int:
    """-i, -r, -s or -g: of this machine, or (`recorded`) of a recording, with when it was recorded."""
    v4, v6 = args.ipv4 or not args.ipv6, args.ipv6 or not args.ipv4
    part: Any = None
    if recorded is not None:
        part, what = {
            "interfaces": (recorded.interfaces, "interfaces"), "route": (recorded.routes, "routing table"),
            "statistics": (recorded.statistics, "protocol statistics"),
        }.get(_view_flag(args), (recorded.multicast, "multicast groups"))  # fmt: skip
        if part is None:
            raise Failure(f"{args.replay} holds no {what} recorded at or before that time")
    if args.interfaces:
        lines, records, warnings = interface_lines(part)
    elif args.route:
        lines, records, warnings = route_lines(v4, v6, part)
    elif args.statistics:
        lines, records, warnings = statistics_lines(part)
        if part is not None:
            lines.insert(0, "Protocol statistics")
    else:
        lines, records, warnings = multicast_lines(v4, v6, part)
    if recorded is not None:
        lines[0] += f" as recorded at {_iso(part.taken_at)}"
        # What could not be decoded is said too (views_at puts it among the warnings).
        others = {w for p in (recorded.interfaces, recorded.routes, recorded.statistics, recorded.multicast)
                  if p is not None and p is not part for w in p.warnings}  # fmt: skip
        warnings = list(warnings) + [w for w in recorded.warnings if w not in others and w not in warnings]
    for message in warnings:
        warn(message)
    out.lines(json_lines(records) if args.json else lines)
    return 0


def _view_flag(args: argparse.Namespace) -> str:
    return next((name for name in ("interfaces", "route", "statistics", "groups") if getattr(args, name)), "")


class StopSignals:
    """Turns SIGINT and SIGTERM into a flag, so a loop finishes what it is writing and ends with status 0."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def wait(self, seconds: float) -> bool:
        return self.event.wait(max(0.0, seconds))


_R = TypeVar("_R")


def stall_after(interval: float) -> float:
    """How long a read may take before it is said to be stuck (the UI restarts its worker after as long)."""
    return max(10.0, 5 * interval)


def watched_read(read: Callable[[], _R], stop: threading.Event, stall: float) -> _R:
    """`read()` in a thread, saying on stderr how long it has been stuck every `stall` seconds it does not finish,
    so that a `--watch` log never goes quiet without a word. Raises StopIteration if `stop` is set meanwhile."""
    results: list[_R] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            results.append(read())
        except BaseException as error:  # handed to the caller's thread
            errors.append(error)
        finally:
            done.set()

    threading.Thread(target=run, name="netscope-read", daemon=True).start()
    started = time.monotonic()
    told = 0
    while not done.wait(0.2):
        if stop.is_set():
            raise StopIteration
        waited = time.monotonic() - started
        if waited >= (told + 1) * stall:
            told += 1
            warn(f"reading sockets has not finished for {waited:.0f}s: the last line printed is that old")
    if errors:
        raise errors[0]
    if told:
        warn(f"reading sockets took {time.monotonic() - started:.0f}s; the line below is from when it began")
    return results[0]


def run_loop(
    args: argparse.Namespace, out: Output, selection: Selection, on_diff: Callable[[SnapshotDiff], None] | None
) -> int:
    """`--watch` and headless `--record`: a refresh every interval until a signal, `--duration`, or a closed pipe.

    Ticks keep to the interval's grid (a slow refresh does not push every later one back); a refresh that
    overruns skips the ticks it missed rather than bunching up.
    """
    from netscope.collectors.connections import ConnectionCollector

    fmt = "json" if args.json else "csv" if args.csv else "text"
    collector = ConnectionCollector(interval=args.interval)
    started = time.monotonic()
    deadline = started + args.duration if args.duration else None
    tick = started
    with StopSignals() as stop:
        if args.watch and (header := watch_header(fmt)) is not None:
            out.line(header)
        while not stop.event.is_set():
            try:
                diff = watched_read(collector.next_diff, stop.event, stall_after(args.interval))
            except StopIteration:  # stopped while a read was stuck: nothing more to print
                break
            except Exception as error:  # one failed refresh is reported; the next may work
                warn(f"reading sockets failed: {error.__class__.__name__}: {error}")
            else:
                if on_diff is not None:
                    on_diff(diff)
                if args.watch:
                    snapshot = diff.snapshot
                    out.line(watch_line(snapshot.taken_at, selection.pick(snapshot.sockets.values()), fmt))
            now = time.monotonic()
            tick += args.interval
            if tick < now:
                tick += (now - tick) // args.interval * args.interval + args.interval
            if deadline is not None and tick >= deadline:
                break
            stop.wait(tick - now)
    return 0


def run_record(args: argparse.Namespace, out: Output, selection: Selection) -> int:
    """Headless recording (`--record FILE --no-ui`, or with `--watch`): the sockets in this thread, views 2-5
    (interfaces, statistics, multicast every interval, routes every 10 s) in another."""
    from netscope.collectors.recording import RecordingWriter

    try:
        writer = RecordingWriter(args.record, interval=args.interval)
    except OSError as error:
        raise Failure(f"cannot create the recording {args.record}: {error.strerror or error}") from None
    if not args.watch:
        warn(f"recording every {args.interval:g}s to {args.record}; Ctrl-C or SIGTERM stops")
    stop_views = threading.Event()
    problems: list[str] = []
    views = threading.Thread(
        target=record_views, args=(writer, args.interval, stop_views, problems), name="netscope-views", daemon=True
    )
    views.start()
    try:
        try:
            run_loop(args, out, selection, writer.write)
        except OSError as error:
            if isinstance(error, BrokenPipeError):
                raise
            raise Failure(f"recording to {args.record} failed: {error.strerror or error}") from None
    finally:
        stop_views.set()
        views.join(timeout=60)  # a read of a huge routing table may be under way: it is left to finish
        with contextlib.suppress(OSError):
            writer.close()
        for message in problems:
            warn(message)
        if not args.watch:
            warn(
                f"recorded {writer.frames} frames and {writer.view_frames} of views "
                f"({_size(writer.bytes_written)}) to {args.record}"
            )
    return 0


def record_views(writer: RecordingWriter, interval: float, stop: threading.Event, problems: list[str]) -> None:
    """Headless recording's second thread: views 2-5 every `interval`, on the same kind of grid as run_loop's,
    until `stop`. A failed write ends it (the sockets go on being recorded); `problems` says why."""
    from netscope.collectors.view_data import SystemViews

    views = SystemViews()
    views.recording = True  # routes too, every ROUTES_WHILE_RECORDING seconds
    tick = time.monotonic()
    while not stop.is_set():
        data = views.collect("connections")
        try:
            writer.write_views(time.time(), data)
        except OSError as error:
            if not writer.closed:
                problems.append(f"recording views to {writer.path} failed: {error.strerror or error}")
            return
        except ValueError as error:  # closed meanwhile, or data JSON cannot hold: that read only is lost
            if writer.closed:
                return
            if not problems:
                problems.append(f"some views could not be recorded: {error}")
        now = time.monotonic()
        tick += interval
        if tick < now:
            tick += (now - tick) // interval * interval + interval
        stop.wait(tick - now)


def _size(n: int) -> str:
    if n < 10_000:
        return f"{n} bytes"
    if n < 10_000_000:
        return f"{n / 1000:.0f} KB"
    return f"{n / 1_000_000:.0f} MB"


# --- replaying ---------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d*)?)([hms]?)")


def _duration(text: str) -> float | None:
    """"90", "90s", "5m", "1h30m", "1.5h" -> seconds; None if not a duration."""
    total, pos = 0.0, 0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None or (not match.group(2) and match.end() != len(text)):
            return None
        total += float(match.group(1)) * {"h": 3600, "m": 60, "s": 1, "": 1}[match.group(2)]
        pos = match.end()
    return total if text else None


def parse_at(text: str, start: float, end: float) -> float:
    """When `--at` points to, as time.time() seconds. Raises UsageError with the accepted forms."""
    text = text.strip()
    forms = (
        "give a time of day (12:03 or 12:03:04), a date and time (2026-11-23T12:03:04), an offset from the "
        "start (+90, +5m, +1h30m) or from the end (-30s), or @ and seconds since 1970"
    )
    if text[:1] in "+-" and len(text) > 1:
        offset = _duration(text[1:])
        if offset is None:
            raise UsageError(f"--at {text!r} is not an offset — {forms}")
        return start + offset if text[0] == "+" else end - offset
    if text.startswith("@"):
        try:
            return float(text[1:])
        except ValueError:
            raise UsageError(f"--at {text!r} is not a number of seconds — {forms}") from None
    if match := re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?", text):
        hour, minute, second = int(match.group(1)), int(match.group(2)), float(match.group(3) or 0)
        if hour > 23 or minute > 59 or second >= 60:
            raise UsageError(f"--at {text!r} is not a time of day — {forms}")
        clock = datetime.time(hour, minute, int(second), int(second % 1 * 1_000_000))
        day = datetime.date.fromtimestamp(start)
        moment = datetime.datetime.combine(day, clock).timestamp()
        # A recording that runs past midnight: 00:30 means the next day's.
        return moment + 86400 if moment < start - 1 else moment
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"--at {text!r} is not a time — {forms}") from None


def _open_recording(path: str) -> Any:
    from netscope.collectors.recording import RecordingError, RecordingReader

    try:
        return RecordingReader(path)
    except RecordingError as error:
        raise Failure(str(error)) from None
    except OSError as error:
        raise Failure(f"cannot read {path}: {error.strerror or error}") from None


def run_replay(args: argparse.Namespace, out: Output, selection: Selection) -> int:
    """`--replay FILE` with --once/--json/--csv/--count (one moment), --watch (every frame's counts) or --info."""
    from netscope.collectors.recording import RecordingDamaged

    with _open_recording(args.replay) as reader:
        if args.info:
            out.lines(recording_info(reader))
            return 0
        if _view_flag(args):
            return _replay_view(args, out, reader)
        if not len(reader):
            raise Failure(f"{args.replay} holds no frames" + (f" ({reader.damage})" if reader.damage else ""))
        start, end = reader.start_time, reader.end_time
        try:
            if args.watch:
                fmt = "json" if args.json else "csv" if args.csv else "text"
                if (header := watch_header(fmt)) is not None:
                    out.line(header)
                lines = (
                    watch_line(diff.snapshot.taken_at, selection.pick(diff.snapshot.sockets.values()), fmt)
                    for diff in reader.diffs()
                )
                out.lines(lines)
                return 0
            if args.at is not None:
                when = parse_at(args.at, start, end)
                if when < start - 0.5:
                    raise UsageError(f"--at {args.at}: the recording starts later, at {_iso(start)}")
                index = reader.index_at(when)
            else:
                index = len(reader) - 1
            snapshot = reader.snapshot_at(index)
        except RecordingDamaged as error:
            raise Failure(str(error)) from None
        if reader.damage is not None:
            warn(f"{args.replay}: {reader.damage}")
        recorded = f" as recorded at {_iso(snapshot.taken_at)}, frame {index + 1}/{len(reader)}"
        print_connections(args, out, snapshot, selection, when=recorded)
    return 0


def _replay_view(args: argparse.Namespace, out: Output, reader: Any) -> int:
    """`--replay FILE -i/-r/-s/-g [--at TIME]`: a view as recorded (the last, without --at)."""
    if not reader.has_views:
        raise Failure(
            f"{args.replay} holds sockets only (no interfaces, routes, statistics or multicast groups): it was "
            "recorded by an older netscope"
        )
    times = [*reader.timestamps[:1], *reader.views_timestamps[:1], *reader.routes_timestamps[:1]]
    lasts = [*reader.timestamps[-1:], *reader.views_timestamps[-1:], *reader.routes_timestamps[-1:]]
    start, end = min(times), max(lasts)
    when = end
    if args.at is not None:
        when = parse_at(args.at, start, end)
        if when < start - 0.5:
            raise UsageError(f"--at {args.at}: the recording starts later, at {_iso(start)}")
    if reader.damage is not None:
        warn(f"{args.replay}: {reader.damage}")
    return run_view(args, out, reader.views_at(when))


def recording_info(reader: Any) -> list[str]:
    header = reader.header
    start, end = reader.start_time, reader.end_time
    size = os.path.getsize(reader.path)
    lines = [
        f"file       {reader.path} ({_size(size)})",
        f"made by    netscope {header.get('netscope', '?')} on {printable(str(header.get('hostname', '?')))}, "
        f"every {reader.interval:g}s",
    ]
    if start is not None:
        lines += [
            f"from       {_iso(start)}",
            f"to         {_iso(end)} ({datetime.timedelta(seconds=round(end - start))})",
        ]
    lines.append(f"frames     {len(reader)} ({len(reader.keyframes)} keyframes)")
    if reader.has_views:
        views, routes = len(reader.views_timestamps), len(reader.routes_timestamps)
        lines.append(
            f"views      interfaces, statistics and multicast groups {views} time{'s' * (views != 1)}, "
            f"routing tables {routes} time{'s' * (routes != 1)}"
        )
    else:
        lines.append("views      none: sockets only (views 2-5 are recorded since recording format 2)")
    if reader.damage is not None:
        lines.append(f"state      damaged: {reader.damage}")
    elif reader.complete:
        lines.append("state      complete")
    else:
        lines.append("state      not closed: netscope was killed, or is still recording; every frame is sound")
    return lines


def write_table_export(path: Path, labels: list[str], rows: list[list[str]], fmt: str) -> int:
    """The UI's export of views 2-6: a table's rows as shown, CSV with its column labels as the header, or JSON
    objects keyed by them; returns the row count. Cells are the text on screen (rates as "1.2 MB/s")."""
    if fmt == "csv":
        out = _LineBuffer()
        writer = csv.writer(out, lineterminator="")
        writer.writerow(labels)
        lines = [out.take()]
        for row in rows:
            writer.writerow([spreadsheet_safe(printable(cell)) for cell in row])
            lines.append(out.take())
    else:
        lines = list(json_lines(dict(zip(labels, row, strict=True)) for row in rows))
    with open_regular(path, write=True) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as file:
        for line in lines:
            file.write(line + "\n")
    return len(rows)


def write_export(path: Path, sockets: list[Socket], fmt: str) -> int:
    """The UI's export: `sockets` as shown (filtered, sorted) to a CSV or JSON file; returns the row count."""
    lines = csv_lines(sockets) if fmt == "csv" else json_lines(socket_record(sock) for sock in sockets)
    with open_regular(path, write=True) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as file:
        for line in lines:
            file.write(line + "\n")
    return len(sockets)
