"""The collector worker: `python -m netscope.collectors.worker --interval S [--cpu-share F] [--tcp-info]
[--unix] [--netns PATH] [--first-screen ROWS]` polls sockets (TCP/UDP, or with --unix unix sockets) and writes
WireDiffs to stdout, so that reading 100,000 sockets never competes with the UI for the GIL. It paces itself
(collectors/pace.py): when a refresh costs more than `--cpu-share` of one core (0: never) it waits longer, and each
frame says the pace in effect. With `--first-screen` it sends, ahead of its first full frame, the first ROWS rows
of the table in the default order and the counts (model.FirstScreen): the UI shows them while the full frame
crosses the pipe.

With `--netns` it first enters that network namespace, in its main thread, before any socket is opened: setns
moves only the calling thread, and the main thread is the one that collects (and /proc/self/net follows it). If
it cannot enter, it writes one WireDiff with the error and exits with status 2.

It exits when its parent dies (PR_SET_PDEATHSIG) or stops reading (a broken pipe). It reads commands from stdin,
one a line: `tcp-info on` / `tcp-info off` switch collecting TCP internals from the next refresh on, without a
restart (a restart would start the table over: every socket's age, and a first frame of every socket). A
pipe, not signals: a command written before the worker is ready waits in the pipe instead of killing it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from typing import BinaryIO

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.heap import give_back_free_pages, return_big_blocks
from netscope.collectors.limits import interval_problem
from netscope.collectors.model import LiveTimer, SocketKey
from netscope.collectors.namespaces import enter_namespace
from netscope.collectors.pace import DEFAULT_CPU_SHARE, Pace
from netscope.collectors.tcpinfo import TcpInfo
from netscope.collectors.wire import failed_frame, first_screen_frame, to_wire, write_frame

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl: the broken pipe on the next write ends it instead
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(0)


TCP_INFO_COMMANDS = {b"tcp-info on": True, b"tcp-info off": False}


def follow_commands(collector: ConnectionCollector, commands: BinaryIO) -> None:
    """Apply the parent's commands as they come, until it closes the pipe (then nothing more will come)."""
    for line in commands:
        enabled = TCP_INFO_COMMANDS.get(line.strip())
        if enabled is not None:
            collector.tcp_info = enabled  # read once per refresh by the collecting thread


def _interval(value: str) -> float:
    seconds = float(value)
    problem = interval_problem(seconds)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return seconds


def _share(value: str) -> float:
    share = float(value)
    if not 0.0 <= share <= 1.0:  # also NaN
        raise argparse.ArgumentTypeError(f"a share of one core, from 0 to 1, not {value}")
    return share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netscope-collector")
    parser.add_argument("--interval", type=_interval, default=1.0)
    parser.add_argument("--cpu-share", type=_share, default=DEFAULT_CPU_SHARE,
                        help="stretch the interval to keep refreshing under this share of one core (0: never)")
    parser.add_argument("--parent", type=int, default=os.getppid())
    parser.add_argument("--tcp-info", action="store_true", help="collect TCP internals (tcp_info) per connection")
    parser.add_argument("--unix", action="store_true", help="collect unix sockets instead of TCP/UDP")
    parser.add_argument("--netns", default="", help="network namespace file to enter first (see namespaces.py)")
    parser.add_argument("--first-screen", type=int, default=0, metavar="ROWS",
                        help="send the first ROWS rows and the counts ahead of the first full frame (0: no)")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    return_big_blocks()  # each refresh frees the last one's dicts of every socket: see heap.py
    out = sys.stdout.buffer
    if args.netns:
        try:
            enter_namespace(args.netns)
        except OSError as error:
            # Collecting the parent's namespace instead would show the wrong sockets: report it and stop.
            message = error.strerror or str(error)
            print(message, file=sys.stderr)  # the parent shows stderr's last line when the worker stops
            with contextlib.suppress(BrokenPipeError):
                write_frame(out, failed_frame(message))
            return 2
    # In place: each snapshot is let go of once its diff is sent (see ConnectionCollector).
    collector = ConnectionCollector(interval=args.interval, tcp_info=args.tcp_info, unix=args.unix,
                                    update_in_place=True)
    threading.Thread(target=follow_commands, args=(collector, sys.stdin.buffer), daemon=True).start()
    sent_tcp_info: dict[SocketKey, TcpInfo] = {}  # what the parent's assembler holds now
    sent_timers: dict[SocketKey, LiveTimer] = {}
    pace = Pace(args.interval, args.cpu_share)
    interval = args.interval
    first_screen = max(0, args.first_screen)
    try:
        while True:
            started, cpu_started = time.monotonic(), time.process_time()
            try:
                diff = collector.next_diff()
                if diff.first and first_screen > 0:
                    write_frame(out, first_screen_frame(diff.snapshot, first_screen))
                    first_screen = 0  # a restarted read is no first screen: the UI has a table by then
                wire = to_wire(diff, sent_tcp_info, sent_timers)
                sent_tcp_info, sent_timers = diff.snapshot.tcp_info, diff.snapshot.timers
                # The first, full read (every owner scanned) is no measure of what the next ones cost.
                if not diff.first:
                    wire.pace = pace.after(time.process_time() - cpu_started)
                    interval = wire.pace.interval
            except Exception as error:  # report it and keep polling
                wire = failed_frame(f"{error.__class__.__name__}: {error}")
            write_frame(out, wire)
            del wire
            give_back_free_pages()
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
