"""The compiled readers against their pure-Python twins, and both against `ss -tan`, in the same run.

    python benchmarks/compiled_readers.py [--connections 50000] [--rounds 5]

Holds N established loopback connections (2N sockets, compare.py's load), then, in interleaved rounds (a slow
patch of the machine hits every contender alike), runs one child process per path (NETSCOPE_PURE_PYTHON=1 for the
twins) that times, in process: the sock_diag dump alone, the first (full) owner scan, the first whole collection
(dump, owners, the worker's first diff) and the CPU of a steady refresh as the worker makes it (collect, diff,
encode for the pipe; median of 5); and the whole `netscope --once --json` command both ways, beside `ss -tan`.
Prints medians, each as a ratio to `ss -tan`'s wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from compare import check_limits, machine, start_load, stop_load

STAGES = r"""
import io, json, time
from netscope.collectors import speedups
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.processes import OwnerScanner
from netscope.collectors.sockdiag import SockDiagReader
from netscope.collectors.wire import to_wire, write_frame

def timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started

with SockDiagReader() as reader:
    sockets, dump = timed(reader.read)
_scan, scan = timed(lambda: OwnerScanner().scan({sock.inode for sock in sockets}))
collector = ConnectionCollector(interval=1.0)
_diff, first = timed(collector.next_diff)
ticks = []
for _ in range(5):
    cpu = time.process_time()
    diff = collector.next_diff()
    write_frame(io.BytesIO(), to_wire(diff, {}, {}))
    ticks.append(time.process_time() - cpu)
print(json.dumps({"path": speedups.describe(), "dump": dump, "scan": scan, "first": first,
                  "tick": sorted(ticks)[2], "sockets": len(sockets)}))
"""
PATHS = {"compiled": {}, "pure Python": {"NETSCOPE_PURE_PYTHON": "1"}}
ROWS = (
    ("dump", "sock_diag dump, no owners (wall)"),
    ("scan", "first owner scan, every fd (wall)"),
    ("first", "first collection: dump, owners, diff (wall)"),
    ("tick", "steady refresh in the worker (CPU)"),
    ("once", "`netscope --once --json`, whole command (wall)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    check_limits(args.connections)
    loads = start_load(args.connections)
    results: dict[str, dict[str, list[float]]] = {path: {key: [] for key, _ in ROWS} for path in PATHS}
    ss: list[float] = []
    described: dict[str, str] = {}
    try:
        for _ in range(args.rounds):
            started = time.perf_counter()
            subprocess.run(["ss", "-tan"], stdout=subprocess.DEVNULL, check=True)
            ss.append(time.perf_counter() - started)
            for path, env in PATHS.items():
                environment = {**os.environ, **env}
                out = subprocess.run([sys.executable, "-c", STAGES], capture_output=True, text=True, check=True,
                                     env=environment).stdout  # fmt: skip
                stages = json.loads(out)
                described[path] = stages["path"]
                for key in ("dump", "scan", "first", "tick"):
                    results[path][key].append(stages[key])
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "netscope", "--once", "--json"], stdout=subprocess.DEVNULL,
                               check=True, env=environment)  # fmt: skip
                results[path]["once"].append(time.perf_counter() - started)
    finally:
        stop_load(loads)
    base = statistics.median(ss)
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}; {args.connections:,} connections "
          f"({2 * args.connections:,} sockets), medians of {args.rounds} interleaved rounds; "
          f"`ss -tan` {base * 1000:.0f} ms\n")
    for path, how in described.items():
        print(f"- {path}: {how}")
    print("\n| stage | compiled | × `ss -tan` | pure Python | × `ss -tan` |\n| --- | ---: | ---: | ---: | ---: |")
    for key, label in ROWS:
        cells = []
        for path in PATHS:
            seconds = statistics.median(results[path][key])
            cells += [f"{seconds * 1000:.0f} ms", f"{seconds / base:.2f}×"]
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
