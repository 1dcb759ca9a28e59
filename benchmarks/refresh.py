"""How long a refresh takes with N established loopback connections (2N sockets).

    python benchmarks/refresh.py [N ...]        (default: 1000 10000)

For each N: the collector's full snapshot (sockets + owners), the diff, and the table's update inside the running
app (headless), each the median of several runs; `ss -tanp` and `netstat -tanp` beside them for scale.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.diff import diff_snapshots

LOAD = Path(__file__).with_name("loopback_load.py")
RUNS = 5
PER_PROCESS = 5000  # both ends of each connection live in one load process: keep under common fd limits


def median_seconds(action, runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def command_seconds(command: list[str]) -> float | None:
    if shutil.which(command[0]) is None:
        return None
    return median_seconds(lambda: subprocess.run(command, stdout=subprocess.DEVNULL, check=False), runs=3)


async def table_update_seconds() -> tuple[float, float, int]:
    app = NetscopeApp(interval=3600)  # refreshes are driven by hand below
    collector = ConnectionCollector()
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause(0.5)
        previous = collector.collect()
        updates, repaints = [], []
        for _ in range(RUNS):
            current = collector.collect()
            diff = diff_snapshots(previous, current)
            previous = current
            started = time.perf_counter()
            app.apply_diff(diff)
            updated = time.perf_counter()
            cpu = time.process_time()
            await pilot.pause()  # let the screen repaint what changed; CPU time, as the wait is mostly idle
            updates.append(updated - started)
            repaints.append(time.process_time() - cpu)
        return statistics.median(updates), statistics.median(repaints), app.table.row_count


def measure(count: int) -> None:
    loads = []
    for index, start in enumerate(range(0, count, PER_PROCESS)):
        share = str(min(PER_PROCESS, count - start))
        loads.append(subprocess.Popen(
            [sys.executable, str(LOAD), share, "--source-net", str(index + 1)], stdout=subprocess.PIPE, text=True
        ))
    try:
        for load in loads:
            assert load.stdout is not None
            assert load.stdout.readline().startswith("ready"), "the load generator failed"
        collector = ConnectionCollector()
        collect = median_seconds(collector.collect)
        first, second = collector.collect(), collector.collect()
        diff = median_seconds(lambda: diff_snapshots(first, second))
        update, repaint, rows = asyncio.run(table_update_seconds())
        ss = command_seconds(["ss", "-tanp"])
        netstat = command_seconds(["netstat", "-tanp"])
    finally:
        for load in loads:
            load.kill()
            load.wait()
    print(f"{count} connections ({rows} sockets shown):")
    print(f"  collect (sockets + owners) {collect * 1000:8.1f} ms")
    print(f"  diff                       {diff * 1000:8.1f} ms")
    print(f"  table and counters update  {update * 1000:8.1f} ms")
    print(f"  repaint (headless, CPU)    {repaint * 1000:8.1f} ms")
    print(f"  one refresh, in total      {(collect + diff + update + repaint) * 1000:8.1f} ms")
    for name, seconds in (("ss -tanp", ss), ("netstat -tanp", netstat)):
        print(f"  {name:<26} {seconds * 1000:8.1f} ms" if seconds is not None else f"  {name}: not installed")


if __name__ == "__main__":
    for n in [int(arg) for arg in sys.argv[1:]] or [1000, 10000]:
        measure(n)
