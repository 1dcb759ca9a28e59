"""The `netscope` command line."""

from __future__ import annotations

import argparse
import sys

from netscope import __version__
from netscope.collectors.filters import FilterError, parse_filter

MIN_INTERVAL = 0.1


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds >= MIN_INTERVAL:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be at least {MIN_INTERVAL} seconds, got {value}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netscope",
        description="A full-screen, live netstat: every TCP and UDP socket, its state and its owner.",
        epilog="Press ? in netscope for every key. Run as root to see the owners of all sockets.",
    )
    parser.add_argument(
        "--interval", "-c", type=_interval, default=1.0, metavar="SECONDS",
        help="seconds between refreshes (default 1)",
    )
    parser.add_argument(
        "--filter", "-f", default="", metavar="EXPR",
        help="start with this filter, e.g. ':80 established' or 'state:syn_recv !ip:127.0.0.0/8'",
    )
    parser.add_argument("--version", action="version", version=f"netscope {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        parse_filter(args.filter)
    except FilterError as error:
        print(f"netscope: bad --filter: {error}", file=sys.stderr)
        return 2
    if sys.platform != "linux":
        print("netscope: reads Linux's /proc; this is not Linux.", file=sys.stderr)
        return 1
    # Imported here so `--help` and a bad filter answer without loading Textual.
    from netscope.app.netscope_app import NetscopeApp

    NetscopeApp(interval=args.interval, filter_text=args.filter).run()
    return 0
