"""What the self-limit does on a big box: netscope's CPU with the default limit (20% of one core) and without it.

    python benchmarks/self_limit.py [--connections 50000] [--settle 20] [--window 30]

Holds N established loopback connections (2N sockets, compare.py's `start_load`), then runs the real app in a
pseudo-terminal (resources.py's `Terminal`) twice: as users start it (`netscope --no-config`, the default 20%
limit) and with the limit off (`--cpu-limit 0`, a 1 s pace whatever it costs). For each: after the first full
table and `--settle` s, the UI's and the worker's CPU over `--window` s (utime + stime from /proc) as % of one
core, and the interval the status line shows. Beside them, in the same run, the wall
time of one `ss -tan` (median of 5), the yardstick of issue 14. Root is not needed; raising the open-files limit
is done by the load processes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time

from compare import check_limits, ss_seconds, start_load, stop_load
from resources import Terminal, cpu_seconds, netscope_command, worker_of

PACE = re.compile(r"every (\d+(?:\.\d+)?)s( \(slowed[^)]*\))?")


def measure(argv: list[str], sockets: int, settle: float, window: float) -> dict[str, object]:
    terminal = Terminal(argv)
    try:
        terminal.wait_first_table(sockets, timeout=120)
        terminal.pump(time.monotonic() + settle)
        worker = worker_of(terminal.pid)
        if worker is None:
            raise SystemExit("netscope started no collector worker")
        ui0, worker0, started = cpu_seconds(terminal.pid), cpu_seconds(worker), time.monotonic()
        terminal.pump(started + window)
        elapsed = time.monotonic() - started
        ui, work = cpu_seconds(terminal.pid) - ui0, cpu_seconds(worker) - worker0
        status = next((line for line in terminal_lines(terminal) if "every " in line), "")
        pace = PACE.search(status)
        return {
            "ui": ui / elapsed, "worker": work / elapsed,
            "interval": pace.group(1) + "s" + (" (slowed)" if pace.group(2) else "") if pace else "?",
        }
    finally:
        terminal.close()


def terminal_lines(terminal: Terminal) -> list[str]:
    # Rows are 1-based; pyte's screen has as many as the terminal (resources.LINES), the fallback any it saw.
    return [terminal.screen_row(row) for row in range(1, 46)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=50_000)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    check_limits(args.connections)
    loads = start_load(args.connections)
    try:
        sockets = 2 * args.connections
        ss_before = ss_seconds()
        limited = measure([*netscope_command(), "--no-config"], sockets, args.settle, args.window)
        unlimited = measure([*netscope_command(), "--no-config", "--cpu-limit", "0"], sockets, args.settle,
                            args.window)
        ss = statistics.median([ss_before, ss_seconds()])
    finally:
        stop_load(loads)
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {os.cpu_count()} CPUs, "
          f"{platform.platform()}, Python {platform.python_version()}; {args.connections:,} connections "
          f"({2 * args.connections:,} sockets); window {args.window:g} s after {args.settle:g} s.\n")
    print("| netscope | interval shown | UI CPU | worker CPU | UI + worker | `ss -tan` wall time |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, result in (("default (limit 20%)", limited), ("`--cpu-limit 0`", unlimited)):
        ui, worker = float(result["ui"]), float(result["worker"])  # type: ignore[arg-type]
        print(f"| {name} | {result['interval']} | {ui:.1%} | {worker:.1%} | {ui + worker:.1%} | "
              f"{ss * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
