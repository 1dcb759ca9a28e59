"""netscope's collector against `ss`, `netstat` and psutil, with N established loopback connections (2N sockets).

    python benchmarks/compare.py [N ...]        (default: 1000 10000 50000; about 5 minutes in all)

For each N it starts `loopback_load.py` processes (5,000 connections each, from their own 127.0.K.x sources so
ephemeral ports never run out), waits until all are up, then times, as medians of REPS runs taken in interleaved
rounds (so that a slow patch of the machine hits every contender alike):

* netscope, netlink + incremental owners: `ConnectionCollector(reader="netlink").collect()`, in its steady state
  (the first snapshot, which reads every fd link, is not timed; the last snapshot is kept alive, as the app does)
* netscope, /proc + full owner scan: `ConnectionCollector(reader="proc", incremental_owners=False).collect()`,
  what netscope did before
* the netlink socket dump alone (`SockDiagReader().read()`), beside `ss -tan`
* `ss -tan`, `ss -tanp`, `netstat -tanp` (output to /dev/null) and `psutil.net_connections()`

and prints each in ms and as a ratio to `ss -tanp`, then a Markdown table for benchmarks/README.md. The load
processes are killed (their connections closed with RST, leaving no TIME_WAIT) before the next N and on any exit.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import Snapshot
from netscope.collectors.sockdiag import SockDiagReader

LOAD = Path(__file__).with_name("loopback_load.py")
PER_PROCESS = 5000  # both ends of each connection live in one load process: 10,000 fds each
REPS = 5

CONTENDERS = (
    "netscope netlink+incremental",
    "netscope /proc+full scan",
    "netlink dump alone",
    "ss -tan",
    "ss -tanp",
    "netstat -tanp",
    "psutil.net_connections()",
)


def bytecode_as_installed() -> str:
    """Compile netscope's modules to bytecode, as `pip install .` (the README's install) leaves them, and say so.

    A development checkout installed with -e has none until Python writes it on first import, and Python does not
    write it where PYTHONDONTWRITEBYTECODE is set (this machine's environment): every launch then compiled about
    100 modules first, 0.1 s of each pty start-up and `--once` run that no installed copy pays (measured: the first
    screen at 50,000 connections 0.75-0.79 -> 0.67-0.70 s). The timed runs measure what users run."""
    import importlib.util
    import pkgutil
    import py_compile

    import netscope

    # The package's own modules only: in a checkout its directory also holds tests/, benchmarks/ and .venv/.
    names = ["netscope", *(info.name for info in pkgutil.walk_packages(netscope.__path__, "netscope."))]
    sources = [spec.origin for name in names if (spec := importlib.util.find_spec(name)) and spec.origin]
    for source in sources:
        if source.endswith(".py"):
            py_compile.compile(source, doraise=True)
    return f"bytecode: {len(sources)} modules compiled, as pip install . leaves them"


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"{'root' if os.geteuid() == 0 else 'not root'}"
    )


def check_limits(count: int) -> None:
    """Fail early, in words, where the load could not be made."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * min(PER_PROCESS, count) + 128
    if hard < needed and os.geteuid() != 0:
        raise SystemExit(f"each load process needs {needed} open files; the hard limit is {hard}")
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    if high - low + 1 < PER_PROCESS:
        raise SystemExit(f"the ephemeral port range {low}-{high} is smaller than {PER_PROCESS} connections")
    needed = count * (LOAD_BYTES_PER_CONNECTION + NETSCOPE_BYTES_PER_CONNECTION)
    available = memory_available()
    if available < needed:
        load, ours = LOAD_BYTES_PER_CONNECTION / 1e3, NETSCOPE_BYTES_PER_CONNECTION / 1e3
        raise SystemExit(
            f"{count:,} connections need about {needed / 1e9:.1f} GB of memory ({load:.1f} kB each for the "
            f"kernel's two sockets and the load's processes, {ours:.1f} kB for netscope's two processes); "
            f"{available / 1e9:.1f} GB are available. Try fewer connections."
        )


# Measured on the project's machine (2026-12-04): MemAvailable fell by 7.4 kB per connection held by
# loopback_load.py (both ends: two kernel sockets, their files, and the load processes' objects); netscope's UI and
# worker held 282 MB for 50,000 connections. Rounded up, for a margin.
LOAD_BYTES_PER_CONNECTION = 8_000
NETSCOPE_BYTES_PER_CONNECTION = 6_000


def memory_available() -> int:
    """MemAvailable from /proc/meminfo, in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def ss_seconds(rounds: int = 5) -> float:
    """Wall time of one `ss -tan`, output to /dev/null: the median of `rounds`. The yardstick other benchmarks
    measure netscope against in the same run."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(["ss", "-tan"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def start_load(count: int) -> list[subprocess.Popen[str]]:
    loads: list[subprocess.Popen[str]] = []
    try:
        for index, start in enumerate(range(0, count, PER_PROCESS)):
            share = str(min(PER_PROCESS, count - start))
            loads.append(subprocess.Popen(
                [sys.executable, str(LOAD), share, "--source-net", str(index + 1), "--lifetime", "1800"],
                stdout=subprocess.PIPE, text=True,
            ))
        for load in loads:
            assert load.stdout is not None
            line = load.stdout.readline()
            if not line.startswith("ready"):
                raise SystemExit(f"a load process failed (exit status {load.wait()})")
    except BaseException:
        stop_load(loads)
        raise
    return loads


def stop_load(loads: list[subprocess.Popen[str]]) -> None:
    for load in loads:
        if load.poll() is None:
            load.kill()
    for load in loads:
        load.wait()
        if load.stdout is not None:
            load.stdout.close()


# Close with a reset: the service leaves no TIME_WAIT pile behind for the next run.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)


@contextmanager
def service(connections: int) -> Iterator[int]:
    """A listener with `connections` established connections to it; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    held: list[socket.socket] = [listener]
    try:
        for _ in range(connections):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            for sock in (client, server):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
            held += [client, server]
        yield listener.getsockname()[1]
    finally:
        for sock in held:
            sock.close()


def command(argv: list[str]) -> Callable[[], object] | None:
    if shutil.which(argv[0]) is None:
        return None
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def measure(count: int) -> tuple[int, dict[str, float | None]]:
    check_limits(count)
    loads = start_load(count)
    try:
        fast = ConnectionCollector(reader="netlink")
        slow = ConnectionCollector(reader="proc", incremental_owners=False)
        reader = SockDiagReader()
        kept: dict[str, Snapshot] = {"fast": fast.collect(), "slow": slow.collect()}  # warm up, as in the app

        def collect(name: str, collector: ConnectionCollector) -> Callable[[], object]:
            def run() -> None:
                kept[name] = collector.collect()  # the previous snapshot stays alive until the new one is made

            return run

        actions: dict[str, Callable[[], object] | None] = {
            "netscope netlink+incremental": collect("fast", fast),
            "netscope /proc+full scan": collect("slow", slow),
            "netlink dump alone": reader.read,
            "ss -tan": command(["ss", "-tan"]),
            "ss -tanp": command(["ss", "-tanp"]),
            "netstat -tanp": command(["netstat", "-tanp"]),
            "psutil.net_connections()": psutil.net_connections,
        }
        samples: dict[str, list[float]] = {name: [] for name in actions}
        for _round in range(REPS):
            for name, action in actions.items():
                if action is None:
                    continue
                started = time.perf_counter()
                action()
                samples[name].append(time.perf_counter() - started)
        sockets = len(kept["fast"].sockets)
        reader.close()
        fast.close()
    finally:
        stop_load(loads)
    return sockets, {name: statistics.median(s) if s else None for name, s in samples.items()}


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f} ms"


def ratio(seconds: float | None, base: float | None) -> str:
    return "" if seconds is None or not base else f"{seconds / base:.2f}x"


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [1000, 10000, 50000]
    print(machine())
    results: list[tuple[int, int, dict[str, float | None]]] = []
    for count in counts:
        started = time.monotonic()
        sockets, timings = measure(count)
        results.append((count, sockets, timings))
        base = timings["ss -tanp"]
        took = time.monotonic() - started
        print(f"\n{count:,} connections, {sockets:,} sockets in the snapshot ({took:.0f} s):")
        for name in CONTENDERS:
            print(f"  {name:<30} {ms(timings[name]):>10}  {ratio(timings[name], base):>7} of ss -tanp")
        fast, psu, dump, ss = (timings[k] for k in ("netscope netlink+incremental", "psutil.net_connections()",
                                                     "netlink dump alone", "ss -tan"))
        if fast and psu:
            print(f"  psutil / netscope: {psu / fast:.1f}x")
        if dump and ss:
            print(f"  netlink dump / ss -tan: {dump / ss:.2f}x")

    print("\n| connections | sockets | " + " | ".join(CONTENDERS) + " |")
    print("| ---: | ---: | " + " | ".join("---:" for _ in CONTENDERS) + " |")
    for count, sockets, timings in results:
        base = timings["ss -tanp"]
        cells = [f"{ms(timings[name])} ({ratio(timings[name], base)})" for name in CONTENDERS]
        print(f"| {count:,} | {sockets:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
