"""The `netscope` command line: the full-screen UI, or (with any output flag) netstat-style output for scripts.

Only the UI imports Textual, and only when it runs: `netscope --once --json` and the other scripting paths start
in a fraction of the time (see README, "Scripting").
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import sys
import threading
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netscope import __version__
from netscope.app.netstat_flags import add_netstat_flags, check_netstat_flags, normalize
from netscope.collectors import speedups
from netscope.collectors.heap import return_big_blocks
from netscope.collectors.limits import interval_problem
from netscope.collectors.pace import DEFAULT_CPU_SHARE
from netscope.collectors.session.alerts import Thresholds
from netscope.collectors.session.config import Config, apply_threshold_overrides, load_config
from netscope.collectors.session.filters import Filter, FilterError, parse_filter
from netscope.collectors.session.metrics import DEFAULT_TOP, FAMILY_GROUPS, MAX_TOP, families_problem

MIN_SPEED, MAX_SPEED = 1 / 16, 64.0  # --speed: the range the replay's - and + keys move in
# --duration's ceiling: Event.wait() overflows on a huge timeout; a year is longer than any recording needs.
MAX_DURATION = 366 * 86400.0

# Flags that ask for printed output instead of the UI. The views (-i -r -s -g), --watch and --no-ui also do.
_ONE_SHOT_FLAGS = (
    "once", "json", "csv", "count", "tcp", "udp", "listening", "all", "numeric", "programs", "ipv4", "ipv6",
    "extend", "wide", "names", "no_header", "continuous", "verbose", "numeric_hosts", "numeric_ports",
    "numeric_users", "timers", "unix", "raw", "masquerade",
)  # fmt: skip


def _cpu_limit(value: str) -> float:
    try:
        percent = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {value!r}") from None
    if not 0 <= percent <= 100:  # also NaN
        raise argparse.ArgumentTypeError(f"a percentage of one core from 0 to 100 (0: never stretch), not {value}")
    return percent


def _metrics_top(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_TOP:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_TOP}, not {value!r}")
    return int(value)


def _metrics_families(value: str) -> frozenset[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    problem = families_problem(names) if names else f"name at least one of {', '.join(FAMILY_GROUPS)}"
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return frozenset(names)


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    problem = interval_problem(seconds)  # also rejects NaN and infinity
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return seconds


def _duration(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < seconds <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_DURATION:g} seconds (a year), "
                                         f"got {value}")
    return seconds


def _speed(value: str) -> float:
    try:
        speed = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"must be {MIN_SPEED:g} to {MAX_SPEED:g}, got {value}")
    return speed


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        """A usage error is one line that says what is wrong, not thirteen lines of usage above it."""
        self.exit(2, f"netscope: error: {message}\n`netscope --help` lists every option.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netscope",
        description=(
            "A full-screen, live netstat: every TCP and UDP socket, its state and its owner. With any of the "
            "output flags below it prints instead, like netstat, and exits."
        ),
        epilog=(
            "Examples: netscope -tlnp · netscope --once --filter ':443 established' --count · "
            "netscope --json | jq · netscope --watch --interval 5 | tee states.log · "
            "netscope --record net.nsrec --no-ui · netscope --replay net.nsrec --at 12:03 -tn. "
            "Press ? in netscope for every key. Run as root to see the owners of all sockets."
        ),
    )
    parser.add_argument(
        "--interval", type=_interval, default=None, metavar="SECONDS",
        help="seconds between refreshes (default 1, or the config file's interval); also --watch's and "
             "--record's. Given here, it is kept even when refreshing costs more than --cpu-limit",
    )  # fmt: skip
    parser.add_argument(
        "--cpu-limit", type=_cpu_limit, default=None, metavar="PERCENT",
        help="when a refresh costs more than this share of one core (default 20), wait longer between refreshes; "
             "the status line says so. 0: never",
    )  # fmt: skip
    parser.add_argument(
        "--filter", "-f", default="", metavar="EXPR",
        help="start with this filter, e.g. ':80 established' or 'state:syn_recv !ip:127.0.0.0/8'",
    )  # fmt: skip
    parser.add_argument(
        "--low-bandwidth", action="store_true",
        help="for a slow SSH link: no sparklines, no transient colour, the table repainted every 3 s (key b)",
    )  # fmt: skip
    parser.add_argument(
        "-V", "--version", action="version", version=f"netscope {__version__} ({speedups.describe()})"
    )

    out = parser.add_argument_group("printed output (no full-screen UI)")
    out.add_argument("--once", action="store_true", help="print the connection table once, as netstat -antup does")
    fmt = out.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON array (fields in README, 'Scripting')")
    fmt.add_argument("--csv", action="store_true", help="print CSV with a header row")
    fmt.add_argument("--count", action="store_true", help="print only the number of matching sockets")
    out.add_argument(
        "--watch", action="store_true",
        help="print one line of per-state counts every interval until Ctrl-C or SIGTERM",
    )  # fmt: skip
    out.add_argument(
        "--duration", type=_duration, metavar="SECONDS", help="stop --watch or --no-ui after this long"
    )
    out.add_argument("--no-header", action="store_true", help="leave out the table's two header lines")
    out.add_argument(
        "--fold", action="store_true",
        help="fold ownerless look-alike sockets (TIME_WAIT ...) into one row per group with a count, like the UI",
    )  # fmt: skip
    out.add_argument(
        "--names", action="store_true", help="show host and service names (reverse DNS, 2 s at most)"
    )

    add_netstat_flags(parser, _interval)

    ins = parser.add_argument_group("alerts and settings")
    ins.add_argument(
        "--alert", action="append", default=[], metavar="NAME=VALUE",
        help="an alert threshold, e.g. --alert syn_recv=200 --alert close_wait=50 (0 turns one off); names: "
        "syn_recv, syn_recv_rise, close_wait, close_wait_refreshes, per_remote_ip, listen_drops",
    )  # fmt: skip
    ins.add_argument(
        "--config", metavar="FILE", type=Path,
        help="read settings from FILE instead of $NETSCOPE_CONFIG or ~/.config/netscope/config.toml",
    )  # fmt: skip
    ins.add_argument("--no-config", action="store_true", help="ignore the config file (defaults and flags only)")
    ins.add_argument(
        "--netns", metavar="NAME|PID",
        help="look into another network namespace, as ss -N does: a name from `ip netns list`, a PID whose "
        "namespace to use, or a path (needs root); --list-netns shows them",
    )  # fmt: skip
    ins.add_argument("--list-netns", action="store_true", help="list the network namespaces in use, and exit")

    met = parser.add_argument_group("metrics for Prometheus (README, 'Metrics for Prometheus')")
    met.add_argument(
        "--metrics", nargs="?", const="", default=None, metavar="ADDRESS:PORT",
        help="serve /metrics for Prometheus (OpenMetrics too) beside the UI, or alone with --no-ui; 9850, "
             "127.0.0.1:9850, [::1]:9850, 0.0.0.0:9850 (every address: put it behind TLS and auth). Without a "
             "value: the config's [metrics] address, else 127.0.0.1:9850",
    )  # fmt: skip
    met.add_argument(
        "--metrics-top", type=_metrics_top, metavar="N",
        help=f"ports, programs, networks and listeners with their own series (default {DEFAULT_TOP}); the rest "
             "are summed into \"other\"",
    )  # fmt: skip
    met.add_argument(
        "--metrics-families", type=_metrics_families, metavar="LIST",
        help=f"the families to serve, comma-separated (default all): {','.join(FAMILY_GROUPS)}",
    )  # fmt: skip

    rec = parser.add_argument_group("recording and replay")
    rec.add_argument(
        "--record", metavar="FILE",
        help="record every refresh to FILE (compact, crash-safe): in the UI, with --watch, or with --no-ui",
    )  # fmt: skip
    rec.add_argument(
        "--no-ui", action="store_true",
        help="with --record or --metrics: record or serve without the UI until stopped (SIGTERM, Ctrl-C, "
             "--duration)",
    )  # fmt: skip
    rec.add_argument(
        "--replay", metavar="FILE",
        help="read a recording instead of this machine: with --once/--json/--csv/--count or -i/-r/-s/-g (the "
        "moment --at, or the last), --watch (every frame's counts) or --info",
    )  # fmt: skip
    rec.add_argument(
        "--at", metavar="TIME",
        help="with --replay: 12:03, 12:03:04, 2026-11-23T12:03:04, +5m (from the start), --at=-30s (from the end)",
    )  # fmt: skip
    rec.add_argument("--info", action="store_true", help="with --replay: what the recording holds")
    rec.add_argument(
        "--speed", type=_speed, default=1.0, metavar="X", help="with --replay in the UI: play X times as fast"
    )
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Combinations that cannot mean anything: usage errors (exit status 2) that say what to write instead."""
    view = args.interfaces or args.route or args.statistics or args.groups
    if view and (args.csv or args.count or args.watch or args.record or args.names):
        parser.error(
            "-i, -r, -s and -g print this machine's table once (or a recording's, with --replay), as text or with "
            "--json; they do not combine with --csv, --count, --watch, --names or --record"
        )
    check_netstat_flags(args, parser.error)
    if args.count and args.watch:
        parser.error("--watch already prints counts: leave out --count")
    if args.names and (args.json or args.csv or args.count or args.watch):
        parser.error("--names changes the text table only; JSON and CSV always hold numbers")
    if args.names and args.numeric:
        parser.error("choose -n (numbers) or --names, not both")
    if args.no_ui and not (args.record or args.metrics is not None):
        parser.error("--no-ui records or serves metrics without the screen: netscope --record FILE --no-ui, or "
                     "netscope --metrics 127.0.0.1:9850 --no-ui")
    metrics_options = args.metrics_top is not None or args.metrics_families is not None
    if metrics_options and args.metrics is None:
        parser.error("--metrics-top and --metrics-families shape the endpoint: add --metrics [ADDRESS:PORT]")
    if args.metrics is not None:
        if args.replay:
            parser.error("--metrics serves this machine as it is now, not a recording: leave out --replay")
        if args.no_ui and args.record:
            parser.error("--metrics --no-ui and --record --no-ui are two services: run two netscopes")
        if _wants_printout(args) or view or args.watch or args.list_netns:
            parser.error("--metrics serves until stopped, beside the screen or with --no-ui; it does not combine "
                         "with printed output (--once, --json, -t, -i, --watch ...)")
    if args.record and args.replay:
        parser.error("choose --record (this machine, now) or --replay (a recording), not both")
    if args.record and not (args.watch or args.no_ui) and _wants_printout(args):
        parser.error("--record records over time: use it with --watch, with --no-ui, or in the full-screen UI")
    if args.duration and not (args.watch or args.no_ui or args.continuous):
        parser.error("--duration stops --watch, -c, or --record/--metrics ... --no-ui")
    if (args.at is not None or args.info) and not args.replay:
        parser.error("--at and --info read a recording: add --replay FILE")
    if args.info and (_wants_printout(args) or args.watch or view):
        parser.error("--info prints what the recording holds: leave out the other output flags")


def _wants_printout(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) for name in _ONE_SHOT_FLAGS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    normalize(args)
    config = _settings(parser, args)
    _check(parser, args)
    try:
        flt = parse_filter(args.filter)
    except FilterError as error:
        print(f"netscope: bad --filter: {error}", file=sys.stderr)
        return 2
    if args.list_netns:
        return _list_namespaces()
    netns = ""
    if args.netns:
        from netscope.collectors.namespaces import enter_namespace, namespace_path

        try:
            netns = namespace_path(args.netns)
            # Checked now, in a throwaway thread (setns moves only the calling thread): a bad value or a
            # missing privilege is one clear error, not a worker failing every interval.
            _try_in_thread(enter_namespace, netns)
        except ValueError as error:
            print(f"netscope: --netns: {error}", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"netscope: --netns: {error.strerror or error}", file=sys.stderr)
            return 1
    if args.metrics is not None and args.no_ui:
        return _serve_metrics(args, config, netns)
    view = args.interfaces or args.route or args.statistics or args.groups
    printed = view or args.watch or args.no_ui or args.info or _wants_printout(args)
    if printed and netns:
        from netscope.collectors.namespaces import enter_namespace

        enter_namespace(netns)  # printing reads in this thread only, and the process ends with it
    if sys.platform != "linux" and not args.replay:
        print("netscope: reads Linux's /proc; this is not Linux.", file=sys.stderr)
        return 1
    if not printed or args.watch or args.continuous or args.record:
        # What refreshes for long frees each refresh's dicts of every socket (collectors/heap.py); a one-shot's
        # blocks go at exit, and it is timed against `ss`.
        return_big_blocks()
    if printed:
        for warning in config.warnings:  # a broken config file is worth a line on stderr, not a failure
            print(f"netscope: {warning}", file=sys.stderr)
        return _print(args, flt)
    return _run_ui(args, config, netns)


def _try_in_thread(function: Callable[[str], None], argument: str) -> None:
    failures: list[OSError] = []

    def run() -> None:
        try:
            function(argument)
        except OSError as error:
            failures.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def _list_namespaces() -> int:
    from netscope.collectors.namespaces import list_namespaces

    print(f"{'INODE':>12}  {'NAME':<20} {'PROCESSES':>9}  EXAMPLE")
    for space in list_namespaces():
        example = f"{space.example_pid}/{space.example_program}" if space.example_pid else "-"
        name = (space.name or "-") + (" (this one)" if space.current else "")
        print(f"{space.inode:>12}  {name:<20} {space.pids:>9}  {example}")
    return 0


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Config:
    """The config file's settings under the command line's: thresholds, columns, and the interval."""
    if args.no_config:
        config = Config(thresholds=Thresholds(), columns=[])
    else:
        config = load_config(args.config, named=args.config is not None)
    try:
        config.thresholds = apply_threshold_overrides(config.thresholds, args.alert)
    except ValueError as error:
        parser.error(f"--alert: {error}")
    # An interval typed on the command line is a pace the user forced: kept whatever it costs, unless a CPU limit
    # is typed too. Otherwise the limit (the config file's, or 20%) stretches it on a box where refreshing is dear.
    forced = args.interval is not None and args.cpu_limit is None
    if args.interval is None:
        args.interval = config.interval or 1.0
    limit = args.cpu_limit if args.cpu_limit is not None else config.cpu_limit
    args.cpu_share = 0.0 if forced else (DEFAULT_CPU_SHARE if limit is None else limit / 100)
    metrics = config.metrics
    config.metrics = dataclasses.replace(
        metrics,
        address=args.metrics or metrics.address,
        top=args.metrics_top if args.metrics_top is not None else metrics.top,
        families=args.metrics_families if args.metrics_families is not None else metrics.families,
    )
    return config


def _serve_metrics(args: argparse.Namespace, config: Config, netns: str) -> int:
    from netscope.app.metrics.endpoint import AddressError
    from netscope.app.metrics.run import serve_headless

    for warning in config.warnings:
        print(f"netscope: {warning}", file=sys.stderr)
    return_big_blocks()  # it refreshes for as long as it serves: see collectors/heap.py
    try:
        return serve_headless(args, config.metrics, config.thresholds, netns)
    except AddressError as error:
        print(f"netscope: --metrics: {error}", file=sys.stderr)
        return 2


def _print(args: argparse.Namespace, flt: Filter) -> int:
    from netscope.app.printed.run import Output, print_conntrack, run_once, run_view
    from netscope.app.printed.selection import Failure, Selection, UsageError

    out = Output()
    selection = Selection.from_args(args, flt)
    try:
        # Replay and the repeating outputs load their modules only when asked: a one-shot read is timed against
        # `ss` (benchmarks/), and the replay's alerts and metrics cost it 25 ms.
        if args.replay:
            from netscope.app.printed.replay import run_replay

            return run_replay(args, out, selection)
        if args.continuous:
            from netscope.app.printed.watch import run_continuous

            return run_continuous(args, out, selection)
        if args.masquerade:
            print_conntrack(args, out)
            return 0
        if args.interfaces or args.route or args.statistics or args.groups:
            return run_view(args, out)
        if args.record or args.watch:
            from netscope.app.printed.watch import run_loop, run_record

            return run_record(args, out, selection) if args.record else run_loop(args, out, selection, None)
        return run_once(args, out, selection)
    except BrokenPipeError:
        # The reader went away (`| head -1`): not an error. Point stdout at /dev/null so that the interpreter's
        # final flush of what is still buffered cannot fail with a second traceback.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    except UsageError as error:
        print(f"netscope: {error}", file=sys.stderr)
        return 2
    except Failure as error:
        print(f"netscope: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside --watch's own handling (e.g. during a one-shot read)
        return 130


def _without_tls(args: argparse.Namespace) -> None:
    """Keep OpenSSL out of the UI's process, which never speaks TLS: asyncio loads the ssl module if it can, and
    that is 4.2 MB of resident memory (3 MB of it libcrypto's pages; measured). Not with --metrics, whose library
    imports ssl, nor under Textual's devtools, which may."""
    if args.metrics is None and "devtools" not in os.environ.get("TEXTUAL", ""):
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]  # None: the import fails, asyncio does without


def _run_ui(args: argparse.Namespace, config: Config, netns: str = "") -> int:
    from netscope.collectors.model import first_screen_rows
    from netscope.collectors.worker_launch import start_worker

    _without_tls(args)

    # The collector worker starts first: its start-up and first read overlap with loading Textual (0.4 s), so the
    # first table comes sooner; and its first screen (the unfiltered table's top) shows while the first full frame
    # crosses the pipe.
    worker = None if args.replay else start_worker(
        args.interval, tcp_info=bool(config.columns), netns=netns, cpu_share=args.cpu_share,
        first_screen=first_screen_rows(args.filter))
    # Imported here so that `--help`, a bad filter and every printed output answer without loading Textual.
    from netscope.app.netscope_app import NetscopeApp
    from netscope.collectors.process_collector import ProcessCollector
    from netscope.collectors.recording.tee import RecordingTee

    settings: dict[str, Any] = {
        "thresholds": config.thresholds,
        "columns": config.columns,
        "save_config": not args.no_config,
        "config_file": args.config,
        "notices": config.warnings,
        "keys": config.keys,
        "key_places": config.key_places,
        "low_bandwidth": args.low_bandwidth,
    }
    if netns and not args.replay:
        from netscope.collectors.view_data import SystemViews

        settings["views"] = SystemViews(netns=netns)
        settings["netns"] = args.netns

    if args.replay:
        # The UI refuses to kill while replaying (a recorded PID may now be another process).
        from netscope.collectors.recording import RecordingError, ReplaySource

        try:
            replay = ReplaySource(args.replay, speed=args.speed)
        except RecordingError as error:
            print(f"netscope: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"netscope: cannot read {args.replay}: {error.strerror or error}", file=sys.stderr)
            return 1
        return _ran(NetscopeApp(source=replay, interval=replay.interval, filter_text=args.filter, **settings))
    writer = None
    if args.record:
        from netscope.collectors.recording import RecordingWriter

        try:
            writer = RecordingWriter(args.record, interval=args.interval)
        except OSError as error:
            why = error.strerror or error
            print(f"netscope: cannot create the recording {args.record}: {why}", file=sys.stderr)
            return 1
    source = RecordingTee(ProcessCollector(
        interval=args.interval, prestarted=worker, netns=netns, cpu_share=args.cpu_share), writer)
    endpoint = None
    try:
        if args.metrics is not None:
            from netscope.app.metrics.endpoint import AddressError
            from netscope.app.metrics.run import start_endpoint

            try:
                endpoint = start_endpoint(config.metrics, config.thresholds, lambda: source.pace, args.interval,
                                          netns)
            except AddressError as error:
                if worker is not None:
                    worker.kill()
                print(f"netscope: --metrics: {error}", file=sys.stderr)
                return 2
            settings["notices"] = [*config.warnings, f"Serving metrics on {endpoint.url}"]
            settings["metrics"] = endpoint.feed
        unix_source = functools.partial(ProcessCollector, interval=args.interval, netns=netns,
                                        cpu_share=args.cpu_share, unix=True)
        return _ran(NetscopeApp(source=source, interval=args.interval, filter_text=args.filter,
                                unix_source=unix_source, **settings))
    finally:
        if endpoint is not None:
            endpoint.close()
        if writer is not None:
            writer.close()


def _ran(app: Any) -> int:
    """Run the UI; its exit status. An error inside it (Textual has printed its traceback) is status 1 with a
    line saying so, never a quiet 0."""
    app.run()
    code = app.return_code or 0
    if code:
        print(f"netscope: the screen stopped on an internal error (exit status {code}); the traceback above says "
              "where. Please report it.", file=sys.stderr)
    return int(code)
