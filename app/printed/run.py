"""One printed run: `--once`, `--json`, `--csv`, `--count` and -i/-r/-s/-g, read in this process (no worker, no
Textual: start-up stays fast)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from netscope.collectors.model import Snapshot, Socket
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.folding import Folder
from netscope.collectors.sockdiag_query import EVERYTHING, KernelQuery

if TYPE_CHECKING:  # only for annotations: one-shot output starts without importing every collector
    from netscope.collectors.view_data import ViewData

from netscope.app.printed.formats import (
    Names,
    connection_lines,
    csv_lines,
    interface_lines,
    iso_time,
    json_array,
    json_lines,
    multicast_lines,
    route_lines,
    socket_json,
    socket_record,
    statistics_lines,
    timer_of,
    unix_csv_lines,
    unix_lines,
    unix_record,
)
from netscope.app.printed.selection import Failure, Selection, sort_sockets
from netscope.widgets.formatting import owner_text


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
                      when: str = "", told: set[str] | None = None) -> None:  # fmt: skip
    sockets = selection.pick(snapshot.sockets.values())
    if selection.raw:
        sockets += selection.pick(raw_sockets(args, told if told is not None else set(snapshot.warnings)))
    if args.count:
        out.line(str(len(sockets)))
        return
    folded = bool(getattr(args, "fold", False))
    if folded:
        sockets = fold(sockets, snapshot)
    sockets = sort_sockets(sockets)
    timers = None
    if args.timers:
        from netscope.collectors.timers import read_timers

        timers, _source = read_timers()
    if args.json and not folded and timers is None:
        out.lines(json_array(socket_json(sock) for sock in sockets))
    elif args.json:
        out.lines(json_lines(socket_record(sock, folded, None if timers is None else timer_of(sock, timers))
                             for sock in sockets))  # fmt: skip
    elif args.csv:
        out.lines(csv_lines(sockets, folded, timers))
    else:
        names = Names([ip for s in sockets for ip in (s.local_ip, s.remote_ip)], hosts=not args.numeric_hosts,
                      ports=not args.numeric_ports) if args.names else None
        out.lines(
            connection_lines(
                sockets, listening_only=selection.listening_only, extended=args.extend,
                header=not args.no_header, names=names, when=when, numeric_users=args.numeric_users,
                timers=timers,
            )
        )  # fmt: skip


def raw_sockets(args: argparse.Namespace, told: set[str]) -> list[Socket]:
    """-w: the raw sockets with their owners and users; warnings not yet in `told` are said (in text only)."""
    from netscope.collectors.owners import attach_owners
    from netscope.collectors.processes import user_name
    from netscope.collectors.raw_sockets import read_raw_sockets

    sockets, source = read_raw_sockets()
    for message in attach_owners(sockets):
        if message not in told and not (args.json or args.csv or args.count):
            told.add(message)
            warn(message)
    for sock in sockets:
        sock.user = user_name(sock.uid) if sock.inode else ""
    if args.verbose:
        warn(f"read {len(sockets)} raw sockets from {source}")
    return sockets


def print_conntrack(args: argparse.Namespace, out: Output) -> None:
    """-M: every tracked flow as `conntrack -L` prints it (its count on stderr, as conntrack does), or as data."""
    from netscope.collectors.connections import ConnectionCollector
    from netscope.collectors.conntrack import (
        conntrack_problem,
        flow_line,
        flow_record,
        link_local_sockets,
        read_conntrack,
    )

    try:
        flows = read_conntrack()
    except OSError as error:
        raise Failure(conntrack_problem(error)) from None
    flows.sort(key=lambda flow: (flow.family, flow.protocol, flow.original.src, flow.original.sport or 0))
    if args.count:
        out.line(str(len(flows)))
        return
    if any(flow.protocol in (6, 17) for flow in flows):  # this host's own flows: which sockets, which programs
        try:
            link_local_sockets(flows, ConnectionCollector().collect().sockets.values())
        except OSError as error:
            warn(f"the flows are not linked to local sockets: reading them failed ({error})")
    if args.json:
        out.lines(json_lines(flow_record(flow) for flow in flows))
        return
    for flow in flows:  # conntrack -L's line, then where this host is an end: client=PID/program server=...
        ends = [f"{side}={owner_text(sock)}" for side, sock in (("client", flow.client), ("server", flow.server))
                if sock is not None]  # fmt: skip
        out.line(" ".join([flow_line(flow), *ends]))
    warn(f"{len(flows)} flow entries have been shown.")


def inet_wanted(args: argparse.Namespace) -> bool:
    """Whether the TCP/UDP table is asked for: -x alone asks for the unix table only, as in netstat."""
    return bool(args.tcp or args.udp or not args.unix)


def print_unix(args: argparse.Namespace, out: Output, told: set[str] | None = None) -> None:
    """-x: the unix sockets (-l: listening only), listeners first, then by path and inode."""
    from netscope.collectors.unix_sockets import as_sockets, read_unix_sockets

    table = read_unix_sockets()
    told = told if told is not None else set()
    for message in table.warnings:  # as for TCP/UDP: data says it with a null pid, text on stderr
        if message not in told and not (args.json or args.csv or args.count):
            told.add(message)
            warn(message)
    if args.verbose:
        warn(f"read {len(table.sockets)} unix sockets from {table.source}")
    sockets = [sock for sock in table.sockets if sock.state == "LISTENING" or not args.listening]
    if args.filter:  # the filter language reads them as the UI's rows (`path:`, `proc:`, `listen` ...)
        matches = parse_filter(args.filter).matches
        wanted = {row.inode for row in as_sockets(sockets, 0.0) if matches(row)}
        sockets = [sock for sock in sockets if sock.inode in wanted]
    sockets.sort(key=lambda sock: (sock.state != "LISTENING", sock.path, sock.inode))
    if args.count:
        out.line(str(len(sockets)))
    elif args.json:
        out.lines(json_lines(unix_record(sock) for sock in sockets))
    elif args.csv:
        out.lines(unix_csv_lines(sockets))
    else:
        out.lines(unix_lines(sockets, listening_only=args.listening, header=not args.no_header))


def fold(sockets: list[Socket], snapshot: Snapshot) -> list[Socket]:
    """`--fold`: look-alike ownerless sockets as one row each group, as the UI shows them (see folding.py)."""
    folder = Folder()
    folder.listening_ports = {s.local_port for s in snapshot.sockets.values() if s.state == "LISTEN"}
    folder.reset(sockets, snapshot.taken_at)
    return list(folder.rows.values())


def run_once(args: argparse.Namespace, out: Output, selection: Selection) -> int:
    """One snapshot of this machine's sockets, printed as asked (with -x, the unix sockets after them)."""
    from netscope.collectors.connections import ConnectionCollector

    if not inet_wanted(args):
        print_unix(args, out)
        return 0

    # The kernel leaves out what the filter and flags would drop (not with --fold, which looks at every listener).
    query = EVERYTHING if getattr(args, "fold", False) else selection.kernel_query()
    # A count of sockets the kernel chose exactly needs no owners: /proc/*/fd is not read.
    owners = not (args.count and query.exact and not selection.raw)
    collector = ConnectionCollector(query=query, owners=owners, incremental_owners=False)  # one read: all at once
    try:
        snapshot = collector.collect()
    except OSError as error:
        raise Failure(f"cannot read the socket tables: {error}") from None
    if args.verbose:
        warn(read_summary(snapshot, collector.source, query, owners))
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
    if args.unix:
        print_unix(args, out, set(snapshot.warnings))
    return 0


def read_summary(snapshot: Snapshot, source: str, query: KernelQuery = EVERYTHING, owners: bool = True) -> str:
    """-v: what was read, from where, and how long it took."""
    where = "netlink sock_diag" if source == "netlink" else "/proc/net/{tcp,tcp6,udp,udp6}"
    if source == "netlink" and query.narrows:
        where += f", asking the kernel for {query.describe()}"
    pids = {sock.pid for sock in snapshot.sockets.values() if sock.pid is not None}
    whose = f" and their owners ({len(pids)} processes) from /proc/*/fd" if owners else " (no owners: a count)"
    return (f"read {len(snapshot.sockets)} TCP and UDP sockets from {where}{whose} in "
            f"{snapshot.collect_seconds * 1000:.0f} ms")


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
        }.get(view_flag(args), (recorded.multicast, "multicast groups"))  # fmt: skip
        if part is None:
            raise Failure(f"{args.replay} holds no {what} recorded at or before that time")
    if args.interfaces:
        try:
            lines, records, warnings = interface_lines(part, args.interface)
        except KeyError as error:
            raise Failure(f"no interface named {args.interface!r}; there are: {error.args[0]}") from None
    elif args.route:
        lines, records, warnings = route_lines(v4, v6, part)
    elif args.statistics:
        lines, records, warnings = statistics_lines(part)
        if part is not None:
            lines.insert(0, "Protocol statistics")
    else:
        lines, records, warnings = multicast_lines(v4, v6, part)
    if recorded is not None:
        lines[0] += f" as recorded at {iso_time(part.taken_at)}"
        # What could not be decoded is said too (views_at puts it among the warnings).
        others = {w for p in (recorded.interfaces, recorded.routes, recorded.statistics, recorded.multicast)
                  if p is not None and p is not part for w in p.warnings}  # fmt: skip
        warnings = list(warnings) + [w for w in recorded.warnings if w not in others and w not in warnings]
    for message in warnings:
        warn(message)
    out.lines(json_lines(records) if args.json else lines)
    return 0


def view_flag(args: argparse.Namespace) -> str:
    return next((name for name in ("interfaces", "route", "statistics", "groups") if getattr(args, name)), "")
