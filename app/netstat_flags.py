"""netstat's command line as people type it from memory: its flags and what netscope makes of each, `-A`
families, `-I` interface, `-c` and a trailing interval, and the flags Linux gives no meaning today (refused with
a sentence that says why and what to use, never a bare usage dump)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

# -A's families: what each turns on. netstat also knows ipx, ax25, netrom, ddp, x25, bluetooth...: none is read.
FAMILIES = {"inet": "ipv4", "inet6": "ipv6", "unix": "unix"}
# The flags of Linux's netstat (net-tools 2.10) that netscope does not carry out, and why, in one table.
REFUSED: dict[tuple[str, ...], str] = {
    ("-N", "--symbolic"): "netstat's -N resolved hardware names; interfaces are always shown by name here",
    ("-C", "--cache"): "the kernel's route cache was removed in Linux 3.6; -r shows the routing table (the FIB)",
    ("-Z", "--context"): "SELinux contexts are not shown; `ps -Z -p PID` shows a process's",
    ("-S", "--sctp"): "SCTP sockets are not read; `ss --sctp -p` lists them",
    ("-U", "--udplite"): "UDP-Lite sockets are not read; /proc/net/udplite and /proc/net/udplite6 list them",
    ("-2", "--l2cap"): "Bluetooth sockets are not read",
    ("--rfcomm",): "Bluetooth sockets are not read",
}  # fmt: skip


def usage_exit(message: str) -> None:
    """A usage error in one line: 'netscope: message', exit status 2."""
    print(f"netscope: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class _Refused(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, why: str = "", **kwargs: Any) -> None:
        self.why = why
        super().__init__(option_strings, dest, nargs=0, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        usage_exit(f"{option_string} is netstat's, but {self.why}")


def _families(value: str) -> list[str]:
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILIES]
    if unknown or not names:
        wrong = ", ".join(repr(name) for name in unknown) or repr(value)
        raise argparse.ArgumentTypeError(f"netscope reads the families {', '.join(FAMILIES)} (comma-separated), "
                                         f"not {wrong}")
    return names


def _interface(value: str) -> str:
    name = value.removeprefix("=")  # netstat's own spelling: -I=eth0
    if not name or len(name) > 15 or "/" in name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"not an interface name: {value!r}")
    return name


def add_netstat_flags(parser: argparse.ArgumentParser, interval: Callable[[str], float]) -> None:
    """netstat's flags, in a group of their own; `interval` checks a trailing interval as --interval does."""
    net = parser.add_argument_group(
        "netstat's flags (they combine: -tlnp; any of them prints instead of the UI; `netscope -tn 2` repeats "
        "every 2 s, as netstat does)"
    )
    net.add_argument("-t", "--tcp", action="store_true", help="TCP sockets")
    net.add_argument("-u", "--udp", action="store_true", help="UDP sockets")
    net.add_argument("-l", "--listening", action="store_true", help="only listening sockets")
    net.add_argument("-a", "--all", action="store_true", help="all sockets (the default: listeners are included)")
    net.add_argument("-n", "--numeric", action="store_true", help="numeric addresses and ports (the default)")
    net.add_argument("--numeric-hosts", action="store_true", help="with --names: addresses stay numbers")
    net.add_argument("--numeric-ports", action="store_true", help="with --names: ports stay numbers")
    net.add_argument("--numeric-users", action="store_true", help="with -e: the User column shows the UID")
    net.add_argument("-p", "--programs", action="store_true", help="PID/Program name (always shown)")
    net.add_argument(
        "-M", "--masquerade", action="store_true",
        help="the connection tracking table (NAT included) as `conntrack -L` prints it: both tuples of each flow",
    )  # fmt: skip
    net.add_argument(
        "-w", "--raw", action="store_true",
        help="raw sockets (raw, raw6): the IP protocol where a port would be, its name as the State, the owner",
    )  # fmt: skip
    net.add_argument(
        "-x", "--unix", action="store_true",
        help="unix sockets: type, state, queues, inode, the peer's inode, owner and path (alone: only them)",
    )  # fmt: skip
    net.add_argument("-4", dest="ipv4", action="store_true", help="IPv4 only")
    net.add_argument("-6", dest="ipv6", action="store_true", help="IPv6 only")
    net.add_argument(
        "-A", "--protocol", type=_families, metavar="FAMILIES",
        help="address families, comma-separated: inet (as -4), inet6 (as -6), unix (as -x)",
    )  # fmt: skip
    net.add_argument(
        "-o", "--timers", action="store_true",
        help="add netstat's Timer column: on/keepalive/timewait/probe (seconds left/retransmits/probes)",
    )  # fmt: skip
    net.add_argument("-e", "--extend", action="store_true", help="add the User and Inode columns")
    net.add_argument("-W", "--wide", action="store_true", help="never cut addresses (the default)")
    net.add_argument(
        "-c", "--continuous", action="store_true",
        help="print the table again every --interval (default 1 s) until Ctrl-C, as netstat -c",
    )  # fmt: skip
    net.add_argument(
        "-v", "--verbose", action="store_true", help="say on stderr what was read, from where, and in how long"
    )
    net.add_argument("-F", "--fib", action="store_true", help=argparse.SUPPRESS)  # what -r shows anyway
    for options, why in REFUSED.items():
        net.add_argument(*options, action=_Refused, why=why)
    views = net.add_mutually_exclusive_group()
    views.add_argument("-i", "--interfaces", action="store_true", help="the interface table (netstat -i)")
    views.add_argument("-r", "--route", action="store_true", help="the routing tables (netstat -rn)")
    views.add_argument("-s", "--statistics", action="store_true", help="protocol statistics (netstat -s)")
    views.add_argument("-g", "--groups", action="store_true", help="multicast group memberships (netstat -g)")
    net.add_argument(
        "-I", "--interface", type=_interface, metavar="IFACE",
        help="with -i (which it implies): that interface only; -I=eth0 works too",
    )  # fmt: skip
    parser.add_argument(
        "repeat_every", nargs="?", type=interval, metavar="INTERVAL",
        help="print the table again every INTERVAL seconds until Ctrl-C (netstat's trailing delay)",
    )  # fmt: skip


def normalize(args: argparse.Namespace) -> None:
    """netstat's spellings into netscope's settings, before the config is read and combinations are checked: -A
    into -4/-6, -I into -i, a trailing interval into -c with that --interval."""
    for family in args.protocol or ():
        setattr(args, FAMILIES[family], True)
    if args.interface is not None:
        if args.route or args.statistics or args.groups:
            usage_exit("-I picks an interface for -i; it does not combine with -r, -s or -g")
        args.interfaces = True
    if args.repeat_every is not None:
        if args.interval is not None and args.interval != args.repeat_every:
            usage_exit(f"two intervals, --interval {args.interval:g} and {args.repeat_every:g} at the end: "
                       "give one")
        args.interval = args.repeat_every
        args.continuous = True


def check_netstat_flags(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> None:
    """Combinations of -c, -o, -x, -M and -w that cannot mean anything: `error` (a usage error, exit 2) says
    what to write instead."""
    view = args.interfaces or args.route or args.statistics or args.groups
    if args.continuous:
        if args.watch:
            error("--watch already repeats (one line of counts each interval): leave out -c")
        if args.csv:
            error("-c repeats the table; CSV has no room for when: use --json (one array each interval) or "
                  "--watch --csv (counts)")
        if args.record or args.replay or args.metrics is not None or args.no_ui:
            error("-c repeats this machine's printed table; it does not combine with --record, --replay, "
                  "--metrics or --no-ui")
    if args.timers and (args.fold or args.count or args.watch or args.replay):
        error("-o adds the Timer column to the table, --json or --csv of this machine's sockets now; a "
              "folded row, a count, --watch and a recording have no timers")
    if args.unix:
        inet = args.tcp or args.udp
        if inet and (args.json or args.csv or args.count):
            error("JSON, CSV and --count hold one table: ask for -x and for -t/-u in two runs")
        if args.watch or args.fold or args.record or args.replay or args.names:
            error("-x prints the unix sockets now (again with -c); it does not combine with --watch, "
                  "--fold, --names, --record or --replay")
    if args.masquerade:
        others = args.tcp or args.udp or args.raw or args.unix or args.listening or args.timers or args.filter
        if others or view or args.csv or args.watch or args.fold or args.record or args.replay or args.names:
            error("-M prints the connection tracking table alone (text, --json or --count; again with -c): "
                  "leave out the socket flags, --filter, --csv, --watch, --record and --replay")
    if args.raw and (args.watch or args.fold or args.record or args.replay):
        error("-w prints the raw sockets now (again with -c); it does not combine with --watch, --fold, "
              "--record or --replay")
