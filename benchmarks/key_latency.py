"""How fast the screen answers keys while live refreshes run, with N loopback connections held open.

    python benchmarks/key_latency.py [N ...]          (default: 0 10000 20000)

The app runs headless (160x45) with the real collector at a 1 s interval. For 8 s it presses Down/Up every 30 ms
through Textual's Pilot and times each press until the app has handled it (Pilot's own overhead included, so
N = 0 is the floor). Also reports the time to the first full table, and the event loop's worst stall from start to
the end (a 10 ms sleep's overshoot): a key pressed then waits that long before it is handled. Pilot's press waits
until the app is idle, so a first press right after the first refresh times the whole first load's paint and
steps; the stall is what a key typed meanwhile waits.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from textual.pilot import Pilot

from netscope.app.netscope_app import NetscopeApp

LOAD = Path(__file__).with_name("loopback_load.py")
PER_PROCESS = 5000


async def press_keys(app: NetscopeApp, pilot: Pilot[None], seconds: float) -> list[float]:
    """Down (Up near row 500) every 30 ms for `seconds`: each press's time until the app has handled it."""
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        key = "down" if app.table.cursor_row < 500 else "up"
        pressed = time.perf_counter()
        await pilot.press(key)
        latencies.append(time.perf_counter() - pressed)
        await asyncio.sleep(0.03)
    return latencies


async def stalls(into: list[tuple[float, float]], started: float) -> None:
    """(overshoot of a 10 ms sleep, seconds since start) until cancelled."""
    while True:
        asleep = time.perf_counter()
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        into.append((now - asleep - 0.01, now - started))


async def measure_app() -> tuple[float, list[float], int, float, list[tuple[float, float]]]:
    app = NetscopeApp(interval=1.0)
    async with app.run_test(size=(160, 45)) as pilot:
        started = time.perf_counter()
        overshoots: list[tuple[float, float]] = []
        ticker = asyncio.create_task(stalls(overshoots, started))
        while app.refresh_count < 1 or app.table.loading_rows:
            await pilot.pause(0.01)
        first_table = time.perf_counter() - started
        latencies = await press_keys(app, pilot, 8)
        ticker.cancel()
        collect = app.session.snapshot.collect_seconds if app.session.snapshot else 0.0
        return first_table, latencies, app.table.row_count, collect, overshoots


def main() -> None:
    for count in [int(arg) for arg in sys.argv[1:]] or [0, 10000, 20000]:
        loads = [
            subprocess.Popen(
                [sys.executable, str(LOAD), str(min(PER_PROCESS, count - start)), "--source-net", str(index + 1)],
                stdout=subprocess.PIPE, text=True,
            )
            for index, start in enumerate(range(0, count, PER_PROCESS))
        ]
        try:
            for load in loads:
                assert load.stdout is not None and load.stdout.readline().startswith("ready")
            first_table, latencies, rows, collect, overshoots = asyncio.run(measure_app())
        finally:
            for load in loads:
                load.kill()
                load.wait()
        latencies.sort()
        worst = max(overshoots)
        p95 = latencies[int(len(latencies) * 0.95)]
        print(
            f"{count:>6} connections, {rows:>6} sockets: first table {first_table:.2f} s,"
            f" collect {collect * 1000:.0f} ms;"
            f" key median {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms,"
            f" max {latencies[-1] * 1000:.0f} ms ({len(latencies)} keys);"
            f" event loop's worst stall {worst[0] * 1000:.0f} ms (at {worst[1]:.2f} s)"
        )


if __name__ == "__main__":
    main()
