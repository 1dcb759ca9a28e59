"""What issue 15's readers cost at 10,000 entries, against the peer that prints the same table, in the same run.

    python benchmarks/netstat_readers.py [--entries 10000] [--rounds 5]

* timers (`netscope -to`): 5,000 established loopback connections (10,000 TCP sockets, compare.py's load); the
  in-process read_timers() (a sock_diag dump with tcp_info), the live worker's refresh without and with tcp_info
  (which the Timer column turns on: timers come from the same dump), and the whole `netscope -tna` / `-tnoa`
  commands, against `ss -tano` (ss's own timer column), `ss -tanop` and `netstat -tnoa`.
* unix sockets (`netscope -x`, `u` in the UI): 5,000 socketpairs (10,000 unix sockets) held by a child;
  read_unix_sockets() without and with owners, the unix worker's live refresh, and the whole `netscope -x`,
  against `ss -xap` and `netstat -xap`.
* conntrack (`netscope -M`, as root): a network namespace of its own where an nft rule turns tracking on and
  10,000 UDP datagrams to as many ports make 10,000 flows; read_conntrack() in that namespace and the whole
  `netscope --netns NS -M`, against `conntrack -L` (Debian's conntrack package) there.
Medians of `--rounds` runs; each command's output goes to /dev/null.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from compare import check_limits, machine, start_load, stop_load

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.timers import read_timers
from netscope.collectors.unix_sockets import read_unix_sockets

HOLDER = (
    "import resource, socket, sys\n"
    "n = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (2 * n + 256, 2 * n + 256))\n"
    "held = [socket.socketpair() for _ in range(n)]\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def median_seconds(job: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def steady(collector: ConnectionCollector, rounds: int) -> float:
    """A live refresh as the worker makes it every interval, after the first (which scans every owner)."""
    collector.collect()
    return median_seconds(collector.collect, rounds)


def run(argv: list[str]) -> Callable[[], object]:
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def row(what: str, seconds: float, base: float) -> str:
    return f"| {what} | {seconds * 1000:.0f} ms | {seconds / base:.2f}× |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    netscope = [sys.executable, "-m", "netscope"]
    pairs = args.entries // 2
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}, {args.entries:,} entries each\n")

    check_limits(pairs)
    loads = start_load(pairs)
    try:
        base = median_seconds(run(["ss", "-tano"]), args.rounds)
        print("| timers (10,000 TCP sockets) | wall time | × `ss -tano` |\n| --- | ---: | ---: |")
        print(row("`ss -tano`", base, base))
        print(row("read_timers() in process", median_seconds(read_timers, args.rounds), base))
        print(row("a live refresh (worker's collect(), owners)", steady(ConnectionCollector(), args.rounds), base))
        print(row("a live refresh with tcp_info and timers (Timer column)",
                  steady(ConnectionCollector(tcp_info=True), args.rounds), base))  # fmt: skip
        print(row("`ss -tanop` (owners)", median_seconds(run(["ss", "-tanop"]), args.rounds), base))
        print(row("`netscope -tna` (owners, no timers)", median_seconds(run([*netscope, "-tna"]), args.rounds),
                  base))  # fmt: skip
        print(row("`netscope -tnoa` (owners and timers)", median_seconds(run([*netscope, "-tnoa"]), args.rounds),
                  base))  # fmt: skip
        if shutil.which("netstat"):
            print(row("`netstat -tnoa`", median_seconds(run(["netstat", "-tnoa"]), args.rounds), base))
    finally:
        stop_load(loads)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(pairs)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdin is not None
        if holder.stdout.readline().strip() != "ready":
            raise SystemExit(f"the socketpair holder failed (open files limit {soft}/{hard}?)")
        base = median_seconds(run(["ss", "-xap"]), args.rounds)
        print("\n| unix sockets (10,000) | wall time | × `ss -xap` |\n| --- | ---: | ---: |")
        print(row("`ss -xap`", base, base))
        print(row("read_unix_sockets(owners=False)", median_seconds(lambda: read_unix_sockets(owners=False),
                                                                    args.rounds), base))  # fmt: skip
        print(row("read_unix_sockets() with owners", median_seconds(read_unix_sockets, args.rounds), base))
        print(row("a live refresh of `u` (the unix worker's collect())",
                  steady(ConnectionCollector(unix=True), args.rounds), base))  # fmt: skip
        print(row("`netscope -x` (owners included)", median_seconds(run([*netscope, "-x"]), args.rounds), base))
        if shutil.which("netstat"):
            print(row("`netstat -xap`", median_seconds(run(["netstat", "-xap"]), args.rounds), base))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    conntrack_table(args.entries, args.rounds, netscope)


# Run inside the namespace: make `count` flows, then time read_conntrack() `rounds` times; prints the median.
FLOWS = (
    "import socket, statistics, sys, time\n"
    "from netscope.collectors.conntrack import read_conntrack\n"
    "count, rounds = int(sys.argv[1]), int(sys.argv[2])\n"
    "with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:\n"
    "    for port in range(20000, 20000 + count):  # one flow per destination port\n"
    "        s.sendto(b'x', ('127.0.0.1', port))\n"
    "assert len(read_conntrack()) >= count, len(read_conntrack())\n"
    "times = []\n"
    "for _ in range(rounds):\n"
    "    started = time.perf_counter(); read_conntrack(); times.append(time.perf_counter() - started)\n"
    "print(statistics.median(times))\n"
)


def conntrack_table(entries: int, rounds: int, netscope: list[str]) -> None:
    nft, conntrack = shutil.which("nft"), shutil.which("conntrack")
    if nft is None or conntrack is None:
        print("\n(conntrack: needs Debian's nftables and conntrack packages; not measured)")
        return
    space = f"netscope-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", space], check=True)
    try:
        inside = ["ip", "netns", "exec", space]
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        rule = "table ip t { chain out { type filter hook output priority 0; ct state new accept; }; }"
        subprocess.run([*inside, nft, rule], check=True)
        read = subprocess.run([*inside, sys.executable, "-c", FLOWS, str(entries), str(rounds)], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip
        base = median_seconds(run([*inside, conntrack, "-L"]), rounds)
        print(f"\n| conntrack ({entries:,} flows) | wall time | × `conntrack -L` |\n| --- | ---: | ---: |")
        print(row("`conntrack -L`", base, base))
        print(row("read_conntrack() in process", float(read), base))
        print(row("`netscope --netns NS -M`", median_seconds(run([*netscope, "--netns", space, "-M"]), rounds),
                  base))  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", space], check=False)


if __name__ == "__main__":
    main()
