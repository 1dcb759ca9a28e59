"""Filtering to one port at scale: netscope's printed outputs, which ask the kernel, beside `ss` filtering alike.

    python benchmarks/kernel_filter.py [--connections 50000] [--service 1000] [--rounds 5] [--no-ss-p]

Holds N established loopback connections (compare.py's load) and, apart from them, a "service": one listener on
127.0.0.1 with `--service` connections to it, the rows a user filters to (`:PORT established`, both ends of each).
Then, in interleaved rounds, times each command below (wall, output to /dev/null) and prints medians, each as a
ratio to one `ss -tan` of every socket in the same run. `ss -tanp` reads every process's fds whatever its filter;
at 250,000 connections it takes minutes: `--no-ss-p` leaves it out.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from compare import check_limits, machine, service, start_load, stop_load


def ss_filter(port: int) -> list[str]:
    return ["state", "established", f"( sport = :{port} or dport = :{port} )"]


def commands(port: int, ss_p: bool) -> dict[str, list[str]]:
    filtered = ss_filter(port)
    netscope = [sys.executable, "-m", "netscope", "--once"]
    found = {
        "`ss -tan` (every socket)": ["ss", "-tan"],
        f"`ss -tan state established '( sport = :{port} or dport = :{port} )'`": ["ss", "-tan", *filtered],
        f"`netscope --count --filter ':{port} established'`": [*netscope, "--count", "--filter",
                                                                f":{port} established"],
        f"`netscope --filter ':{port} established'` (owners too)": [*netscope, "--filter", f":{port} established"],
        f"`netscope --json --filter ':{port} established'` (owners too)": [*netscope, "--json", "--filter",
                                                                          f":{port} established"],
        "`netscope --count` (every socket, no owners)": [*netscope, "--count"],
        "`netscope --json` (every socket, owners)": [*netscope, "--json"],
    }
    if ss_p:
        found[f"`ss -tanp state established '( sport = :{port} or dport = :{port} )'`"] = [
            "ss", "-tanp", *filtered]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50_000)
    parser.add_argument("--service", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-ss-p", action="store_true", help="leave out `ss -tanp` (minutes at 250,000)")
    args = parser.parse_args()
    check_limits(args.connections + args.service)
    loads = start_load(args.connections)
    try:
        with service(args.service) as port:
            runs = commands(port, not args.no_ss_p)
            times: dict[str, list[float]] = {label: [] for label in runs}
            counted = subprocess.run(runs[f"`netscope --count --filter ':{port} established'`"],
                                     capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
            ss_rows = subprocess.run(["ss", "-tanH", *ss_filter(port)], capture_output=True, text=True,
                                     check=True).stdout.splitlines()
            # Not exactly 2 x --service: a load client's ephemeral port may be the same number.
            if int(counted) != len(ss_rows) or len(ss_rows) < 2 * args.service:
                raise SystemExit(f"netscope counted {counted} sockets on :{port}, ss {len(ss_rows)}")
            for _ in range(args.rounds):
                for label, argv in runs.items():
                    started = time.perf_counter()
                    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                    times[label].append(time.perf_counter() - started)
    finally:
        stop_load(loads)
    base = statistics.median(times["`ss -tan` (every socket)"])
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}; {args.connections:,} connections "
          f"({2 * args.connections:,} sockets) plus {args.service:,} to the filtered port ({2 * args.service:,} "
          f"sockets match), medians of {args.rounds} interleaved rounds\n")
    print("| command | wall | × `ss -tan` |\n| --- | ---: | ---: |")
    for label, seconds in times.items():
        median = statistics.median(seconds)
        print(f"| {label} | {median * 1000:.0f} ms | {median / base:.2f}× |")


if __name__ == "__main__":
    main()
