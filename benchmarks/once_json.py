"""Issue 14's `--once --json` target: the whole command, owners included, against `ss -tan` in the same run.

    python benchmarks/once_json.py [--connections 50000] [--rounds 5]

Holds N established loopback connections (2N sockets, compare.py's load), then times in interleaved rounds (a
slow patch of the machine hits every contender alike) `ss -tan`, `ss -tanp`, `netscope --once --json` and
`netscope --once` (netstat's text), output to /dev/null, start-up included; and, in process, where one run's time
goes (the read with owners, sorting, encoding). Prints medians and each as a ratio to `ss -tan`; the target is 4×.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from compare import bytecode_as_installed, check_limits, machine, start_load, stop_load

TARGET = 4.0
STAGES = r"""
import sys, time
started = time.perf_counter()
from netscope.app.printed.formats import json_array, socket_json
from netscope.app.printed.selection import Selection, sort_sockets
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.session.filters import parse_filter
imported = time.perf_counter()
snapshot = ConnectionCollector().collect()
read = time.perf_counter()
sockets = sort_sockets(Selection(True, True, False, True, True, False, parse_filter("")).pick(
    snapshot.sockets.values()))
ordered = time.perf_counter()
text = "\n".join(json_array(socket_json(sock) for sock in sockets))
encoded = time.perf_counter()
print(imported - started, read - imported, ordered - read, encoded - ordered)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    netscope = [sys.executable, "-m", "netscope"]
    contenders = {
        "`ss -tan`": ["ss", "-tan"],
        "`ss -tanp`": ["ss", "-tanp"],
        "`netscope --once --json`": [*netscope, "--once", "--json"],
        "`netscope --once`": [*netscope, "--once"],
    }
    check_limits(args.connections)
    print(bytecode_as_installed())
    loads = start_load(args.connections)
    try:
        times: dict[str, list[float]] = {name: [] for name in contenders}
        stages: list[list[float]] = []
        for _ in range(args.rounds):
            for name, argv in contenders.items():
                started = time.perf_counter()
                subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                times[name].append(time.perf_counter() - started)
            out = subprocess.run([sys.executable, "-c", STAGES], capture_output=True, text=True, check=True).stdout
            stages.append([float(value) for value in out.split()])
    finally:
        stop_load(loads)
    base = statistics.median(times["`ss -tan`"])
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}; {args.connections:,} connections "
          f"({2 * args.connections:,} sockets), medians of {args.rounds} interleaved rounds\n")
    print("| command | wall time | × `ss -tan` |\n| --- | ---: | ---: |")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"| {name} | {seconds * 1000:.0f} ms | {seconds / base:.2f}× |")
    ratio = statistics.median(times["`netscope --once --json`"]) / base
    print(f"\n`--once --json` is {ratio:.1f}× `ss -tan` (target {TARGET:g}×: "
          f"{'met' if ratio <= TARGET else f'missed by {ratio / TARGET:.1f}×'})\n")
    print("| one run, in process | median |\n| --- | ---: |")
    for index, what in enumerate(("imports", "read with owners (ConnectionCollector().collect())",
                                  "select and sort", "encode JSON")):
        print(f"| {what} | {statistics.median(stage[index] for stage in stages) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
