"""Sockets and views 2-5 as netstat prints them, as JSON and as CSV, and --watch's per-state lines. Text output
never holds colours or escape codes; every system-supplied string goes through `printable()`; JSON is ASCII."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from json.encoder import encode_basestring_ascii as _json_text  # json.dumps's own, in C
from typing import TYPE_CHECKING, Any

from netscope.collectors.model import COUNTED_STATES, Socket
from netscope.collectors.raw_sockets import protocol_name
from netscope.collectors.session.folding import socket_count
from netscope.collectors.timers import NO_TIMER, Timer, TimerKey, timer_text
from netscope.widgets.formatting import (
    format_endpoint,
    owner_text,
    printable,
    spreadsheet_safe,
    state_label,
)

if TYPE_CHECKING:  # only for annotations: one-shot output starts without importing every collector
    from netscope.collectors.interfaces import InterfaceSnapshot
    from netscope.collectors.multicast import MulticastSnapshot
    from netscope.collectors.protostats import StatsSnapshot
    from netscope.collectors.routes import RouteSnapshot
    from netscope.collectors.unix_sockets import UnixSocket



# The JSON/CSV fields of a socket, in order. Stable: scripts depend on them (README, "Scripting").
FIELDS: tuple[str, ...] = (
    "proto", "recv_q", "send_q", "local_address", "local_port", "remote_address", "remote_port", "state",
    "pid", "program", "user", "uid", "inode",
)  # fmt: skip


# With -o, after FIELDS: netstat's Timer column as data (kind off/on/keepalive/timewait/probe, seconds left).
TIMER_FIELDS: tuple[str, ...] = ("timer", "timer_seconds", "retransmits", "probes")


def timer_of(sock: Socket, timers: Mapping[TimerKey, Timer]) -> Timer:
    """The socket's TCP timer (UDP has none: off, as netstat prints it)."""
    key = (sock.proto, sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port, sock.inode)
    return timers.get(key, NO_TIMER)


def socket_record(sock: Socket, folded: bool = False, timer: Timer | None = None) -> dict[str, Any]:
    """A socket under the documented field names. Unknown owner: pid and program null; no owner at all
    (TIME_WAIT, inode 0): user null as well. `folded` (`--fold`): a last field, `sockets`, how many sockets the row
    stands for (1 for a socket on its own; a folded row's port 0 on the clients' side means any). `timer` (-o):
    TIMER_FIELDS last."""
    record = {
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
    if sock.proto.startswith("raw"):  # -w: the IP protocol, whose number stands where a port would
        record["protocol_name"] = protocol_name(sock.local_port)
    if folded:
        record["sockets"] = socket_count(sock)
    if timer is not None:
        record.update(zip(TIMER_FIELDS, (timer.kind, round(timer.seconds, 3), timer.retransmits, timer.probes),
                          strict=True))  # fmt: skip
    return record


class _Quoted(dict[str, str]):
    """Each text as a JSON string, made once: the addresses, protocols, states, programs and users of 100,000
    sockets are a few hundred texts. A dict's own lookup, with the escaping only on a miss, halves the cost of
    --json against calling the escaper per field (130 -> 80 ms at 100,000 sockets, measured). Bounded: cleared
    when full, as the texts come from the machine."""

    def __missing__(self, value: str) -> str:
        if len(self) >= 65_536:
            self.clear()
        quoted = self[value] = _json_text(value)
        return quoted


_QUOTED = _Quoted()


def socket_json(sock: Socket) -> str:
    """`json.dumps(socket_record(sock), ensure_ascii=True)`, character for character, made directly: at 100,000
    sockets `--once --json` spent half a second in json.dumps's set-up per call (measured; tests check the two
    agree). Strings go through the same C escaper json.dumps uses; the numbers are ints (the readers make them)."""
    if sock.proto.startswith("raw"):  # its extra field: the general way
        return json.dumps(socket_record(sock), ensure_ascii=True)
    quoted = _QUOTED
    owned = sock.pid is not None
    return (
        f'{{"proto": {quoted[sock.proto]}, "recv_q": {sock.recv_q}, "send_q": {sock.send_q}, '
        f'"local_address": {quoted[sock.local_ip]}, "local_port": {sock.local_port}, '
        f'"remote_address": {quoted[sock.remote_ip]}, "remote_port": {sock.remote_port}, '
        f'"state": {quoted[state_label(sock)]}, "pid": {sock.pid if owned else "null"}, '
        f'"program": {quoted[sock.program] if owned else "null"}, '
        f'"user": {quoted[sock.user] if sock.user else "null"}, "uid": {sock.uid}, "inode": {sock.inode}}}'
    )


class Names:
    """Host and service names for `--names`: reverse lookups run in daemon threads and are waited for at most
    `timeout` seconds in all, so a dead DNS server delays the output by that much and no more."""

    WORKERS = 16

    def __init__(self, addresses: Iterable[str], timeout: float = 2.0, hosts: bool = True,
                 ports: bool = True) -> None:  # fmt: skip
        """`hosts`, `ports`: False keeps those numeric (netstat's --numeric-hosts, --numeric-ports)."""
        self.ports = ports
        if not hosts:
            addresses = ()
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
        elif not self.ports:
            port_text = str(port)
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
    numeric_users: bool = False,
    timers: Mapping[TimerKey, Timer] | None = None,
) -> list[str]:
    """The table `netstat -antup` prints (with -e: User and Inode before the owner; with `timers`, -o: Timer
    last), in netscope's sort order.

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
            + ("PID/Program name     Timer" if timers is not None else "PID/Program name")
        )
    for sock, here, there in zip(sockets, local, remote, strict=True):
        if sock.proto.startswith("raw"):  # where netstat prints the kernel's state number (7): the protocol
            state = protocol_name(sock.local_port)
        else:
            state = "" if sock.state == "UNCONN" else state_label(sock)
        user = sock.uid if numeric_users else printable(sock.user) or sock.uid
        extra = f"{user:<10} {sock.inode:<10} " if extended else ""
        owner = owner_text(sock)
        if timers is not None:  # netstat pads PID/Program name to 20 then the Timer
            owner = f"{owner:<20} {timer_text(timer_of(sock, timers))}"
        lines.append(
            f"{sock.proto:<5} {sock.recv_q:>6} {sock.send_q:>6} {here:<{lw}} {there:<{rw}} {state:<11} {extra}"
            f"{owner}"
        )
    return lines


UNIX_FIELDS: tuple[str, ...] = (
    "proto", "type", "state", "recv_q", "send_q", "inode", "peer_inode", "path", "pid", "program",
)  # fmt: skip


def unix_record(sock: UnixSocket) -> dict[str, Any]:
    """A unix socket under UNIX_FIELDS: queues null when not known (/proc), peer_inode 0 for none."""
    return {
        "proto": "unix", "type": sock.type, "state": sock.state, "recv_q": sock.recv_q, "send_q": sock.send_q,
        "inode": sock.inode, "peer_inode": sock.peer_inode, "path": sock.path, "pid": sock.pid,
        "program": sock.program if sock.pid is not None else None,
    }  # fmt: skip


def unix_lines(sockets: list[UnixSocket], *, listening_only: bool = False, header: bool = True) -> list[str]:
    """`netstat -x` with the queues and the peer's inode (ss -x's) where netstat has RefCnt, which no interface
    but /proc gives. An unconnected socket's State is empty and a listener's Flags are `[ ACC ]`, as netstat's."""
    lines: list[str] = []
    if header:
        kind = "only servers" if listening_only else "servers and established"
        lines.append(f"Active UNIX domain sockets ({kind})")
        lines.append("Proto Recv-Q Send-Q Flags       Type       State         I-Node   Peer     "
                     "PID/Program name     Path")  # fmt: skip
    for sock in sockets:
        flags = "[ ACC ]" if sock.state == "LISTENING" else "[ ]"
        state = "" if sock.state == "UNCONNECTED" else sock.state
        recv_q = "-" if sock.recv_q is None else sock.recv_q
        send_q = "-" if sock.send_q is None else sock.send_q
        owner = "-" if sock.pid is None else f"{sock.pid}/{printable(sock.program) or '?'}"
        lines.append(f"unix  {recv_q:>6} {send_q:>6} {flags:<11} {sock.type:<10} {state:<13} {sock.inode:<8} "
                     f"{sock.peer_inode or '-':<8} {owner:<20} {printable(sock.path)}")  # fmt: skip
    return lines


def unix_csv_lines(sockets: Iterable[UnixSocket]) -> Iterator[str]:
    out = LineBuffer()
    writer = csv.writer(out, lineterminator="")
    writer.writerow(UNIX_FIELDS)
    yield out.take()
    for sock in sockets:
        writer.writerow(csv_cells(unix_record(sock).values()))
        yield out.take()


def json_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A JSON array with one object per line: valid JSON, and still greppable."""
    return json_array(json.dumps(record, ensure_ascii=True) for record in records)


def json_array(objects: Iterable[str]) -> Iterator[str]:
    """Objects already encoded, as json_lines() prints them."""
    yield "["
    previous: str | None = None
    for encoded in objects:
        if previous is not None:
            yield previous + ","
        previous = encoded
    if previous is not None:
        yield previous
    yield "]"


def csv_lines(
    sockets: Iterable[Socket], folded: bool = False, timers: Mapping[TimerKey, Timer] | None = None
) -> Iterator[str]:
    out = LineBuffer()
    writer = csv.writer(out, lineterminator="")
    header = (*FIELDS, *(("sockets",) if folded else ()), *(TIMER_FIELDS if timers is not None else ()))
    writer.writerow(header)
    yield out.take()
    for sock in sockets:
        full = socket_record(sock, folded, None if timers is None else timer_of(sock, timers))
        record = {name: full[name] for name in header}  # a raw socket's protocol_name is JSON's only
        writer.writerow(csv_cells(record.values()))
        yield out.take()


def csv_cells(values: Iterable[object]) -> list[object]:
    """CSV is read in terminals and spreadsheets: control characters escaped as the text table does them, no
    name ever starting a formula, None as an empty cell."""
    return ["" if v is None else spreadsheet_safe(printable(v)) if isinstance(v, str) else v for v in values]


class LineBuffer:
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


def state_counts(sockets: Iterable[Socket]) -> tuple[dict[str, int], int]:
    """Counts per counter-bar state (every one, zeros included, so a log's columns never move) and the total."""
    found = Counter(sock.counter_name for sock in sockets)
    return {state: found.get(state, 0) for state in COUNTED_STATES}, sum(found.values())


def iso_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def watch_line(taken_at: float, sockets: Iterable[Socket], fmt: str) -> str:
    counts, total = state_counts(sockets)
    if fmt == "json":
        return json.dumps({"time": iso_time(taken_at), "timestamp": round(taken_at, 3), "counts": counts,
                           "total": total})  # fmt: skip
    if fmt == "csv":
        return ",".join([iso_time(taken_at), *map(str, counts.values()), str(total)])
    return " ".join([iso_time(taken_at), *(f"{state} {n}" for state, n in counts.items()), f"total {total}"])


def watch_header(fmt: str) -> str | None:
    return ",".join(["time", *COUNTED_STATES, "total"]) if fmt == "csv" else None


def interface_lines(
    snapshot: InterfaceSnapshot | None = None, only: str | None = None
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """`netstat -i`: text lines, JSON records and warnings; of this machine, or of `snapshot` (a recording's).
    `only`: that interface alone (netstat -I); a KeyError naming the ones there are if there is none."""
    if snapshot is None:
        from netscope.collectors.interfaces import InterfaceCollector

        snapshot = InterfaceCollector().collect()
    interfaces = snapshot.interfaces
    if only is not None:
        interfaces = [iface for iface in interfaces if iface.name == only]
        if not interfaces:
            raise KeyError(", ".join(printable(iface.name) for iface in snapshot.interfaces))
    lines = [
        "Kernel Interface table",
        f"{'Iface':<16}{'MTU':>5} {'RX-OK':>8} {'RX-ERR':>6} {'RX-DRP':>6} {'RX-OVR':<6} {'TX-OK':>8} "
        f"{'TX-ERR':>6} {'TX-DRP':>6} {'TX-OVR':>6} Flg",
    ]
    records: list[dict[str, Any]] = []
    for iface in interfaces:
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
