"""Filtering to one port in the live app at scale: how soon its rows show, and how keys are answered meanwhile.

    python benchmarks/live_filter.py [--connections 250000] [--service 1000] [--seconds 10]

Holds N established loopback connections (compare.py's load) and a "service" of `--service` connections to one
port. Runs the app headless (160x45, Textual's Pilot, the real worker at a 1 s interval) and times: the first
full table; typing `/:PORT established` and Enter until the table holds exactly the rows `ss` finds for
`state established '( sport = :PORT or dport = :PORT )'`; then, with the filter on, each Down/Up press (every
30 ms for `--seconds`) until the app has handled it; then Escape until every socket is back; then the same for a
filter that keeps most rows (`/established`); then, in a second app, the one-port filter's Enter pressed while the
first refresh is still being made into rows. `ss -tan` is timed in the same run, for the ratio. Each phase also
reports the event loop's worst stall (a 10 ms sleep's overshoot): what a key typed in it waits.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time

from compare import check_limits, machine, service, ss_seconds, start_load, stop_load
from key_latency import press_keys, stalls
from textual import events

from netscope.app.netscope_app import NetscopeApp


async def until(condition: object, pilot: object, limit: float) -> float:
    """Seconds until `condition()` holds, polling every 10 ms; raises after `limit` seconds."""
    started = time.perf_counter()
    while not condition():  # type: ignore[operator]
        if time.perf_counter() - started > limit:
            raise SystemExit(f"gave up after {limit:.0f} s")
        await pilot.pause(0.01)  # type: ignore[attr-defined]
    return time.perf_counter() - started


async def measure(port: int, expected: int, seconds: float) -> dict[str, float | list[float]]:
    app = NetscopeApp(interval=1.0)
    async with app.run_test(size=(160, 45)) as pilot:
        started = time.perf_counter()
        overshoots: list[tuple[float, float]] = []
        ticker = asyncio.create_task(stalls(overshoots, started))

        def worst_since(moment: float) -> float:
            return max((lag for lag, at in overshoots if at >= moment - started), default=0.0)

        first = await until(lambda: app.refresh_count >= 1 and not app.table.loading_rows, pilot, 120)
        total = app.table.row_count
        await pilot.press("slash", *f":{port} established")
        typed = time.perf_counter()
        await pilot.press("enter")
        await until(lambda: app.table.row_count == expected, pilot, 60)
        filtered = time.perf_counter() - typed
        filter_stall = worst_since(typed)
        keys_started = time.perf_counter()
        latencies = await press_keys(app, pilot, seconds)
        keys_stall = worst_since(keys_started)
        pressed = time.perf_counter()
        await pilot.press("escape")
        await until(lambda: app.table.row_count >= total * 0.99, pilot, 60)
        cleared = time.perf_counter() - pressed
        await pilot.pause(2)  # what Escape leaves to do after the rows show (a recount) stalls here
        escape_stall = worst_since(pressed)
        # A filter that keeps most rows: every one of them folded, sorted and measured again.
        await pilot.press("slash", *"established")
        typed = time.perf_counter()
        await pilot.press("enter")
        await until(lambda: app.table.filter_on and not app.table.loading_rows, pilot, 60)
        broad = time.perf_counter() - typed
        broad_rows = app.table.row_count
        await pilot.pause(2)
        broad_stall = worst_since(typed)
        pressed = time.perf_counter()
        await pilot.press("escape")
        await until(lambda: not app.table.filter_on and not app.table.loading_rows, pilot, 60)
        broad_cleared = time.perf_counter() - pressed
        await pilot.pause(2)
        broad_escape_stall = worst_since(pressed)
        ticker.cancel()
    return {"first": first, "filtered": filtered, "keys": latencies, "cleared": cleared,
            "filter_stall": filter_stall, "keys_stall": keys_stall, "escape_stall": escape_stall,
            "broad": broad, "broad_rows": broad_rows, "broad_stall": broad_stall,
            "broad_cleared": broad_cleared, "broad_escape_stall": broad_escape_stall}


async def filter_during_first_load(port: int, expected: int) -> dict[str, float]:
    """A second app: `/:PORT established` typed before the first refresh arrives, and its Enter pressed as soon as
    it has, while its rows are still being made a part at a time. Times its rows showing, and the loop's worst
    stall from the Enter until then."""
    app = NetscopeApp(interval=1.0)
    async with app.run_test(size=(160, 45)) as pilot:
        started = time.perf_counter()
        overshoots: list[tuple[float, float]] = []
        ticker = asyncio.create_task(stalls(overshoots, started))
        await pilot.press("slash", *f":{port} established")
        await until(lambda: app.refresh_count >= 1, pilot, 120)
        loading = app.table.loading_rows
        typed = time.perf_counter()
        app.post_message(events.Key("enter", "\r"))  # as a terminal sends it: Pilot.press would wait for idle
        await until(lambda: app.table.row_count == expected and not app.table.loading_rows, pilot, 60)
        shown = time.perf_counter() - typed
        stall = max((lag for lag, at in overshoots if at >= typed - started), default=0.0)
        ticker.cancel()
    return {"shown": shown, "stall": stall, "loading": float(loading)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=250_000)
    parser.add_argument("--service", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    check_limits(args.connections + args.service)
    loads = start_load(args.connections)
    try:
        with service(args.service) as port:
            found = subprocess.run(
                ["ss", "-tanH", "state", "established", f"( sport = :{port} or dport = :{port} )"],
                capture_output=True, text=True, check=True,
            ).stdout.splitlines()
            base = ss_seconds()
            result = asyncio.run(measure(port, len(found), args.seconds))
            during_load = asyncio.run(filter_during_first_load(port, len(found)))
    finally:
        stop_load(loads)
    keys = sorted(result["keys"])  # type: ignore[arg-type]
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}; {args.connections:,} connections "
          f"({2 * args.connections:,} sockets) plus {args.service:,} to the filtered port ({len(found):,} rows); "
          f"`ss -tan` {base * 1000:.0f} ms\n")
    print("| measurement | time | × `ss -tan` |\n| --- | ---: | ---: |")
    for label, value in (("first full table", result["first"]),
                         (f"`/:{port} established` Enter → its {len(found):,} rows shown", result["filtered"]),
                         ("the event loop's worst stall, Enter until its rows show", result["filter_stall"]),
                         ("Escape → every socket shown again", result["cleared"]),
                         ("the event loop's worst stall, Escape until 2 s after", result["escape_stall"]),
                         ("key press, median (filter on)", statistics.median(keys)),
                         ("key press, 95th percentile", keys[int(len(keys) * 0.95)]),
                         ("key press, slowest", keys[-1]),
                         ("the event loop's worst stall, keys pressed", result["keys_stall"]),
                         (f"`/established` Enter → its {result['broad_rows']:,} rows shown", result["broad"]),
                         ("the event loop's worst stall, Enter until 2 s after", result["broad_stall"]),
                         ("Escape → every socket shown again", result["broad_cleared"]),
                         ("the event loop's worst stall, Escape until 2 s after",
                          result["broad_escape_stall"])):  # fmt: skip
        seconds = float(value)  # type: ignore[arg-type]
        print(f"| {label} | {seconds * 1000:.0f} ms | {seconds / base:.2f}× |")
    if during_load["loading"]:  # typed while the first refresh was still being made into rows
        for label, seconds in ((f"`/:{port} established` typed during the first load → its rows shown",
                                during_load["shown"]),
                               ("the event loop's worst stall, that Enter until its rows show",
                                during_load["stall"])):
            print(f"| {label} | {seconds * 1000:.0f} ms | {seconds / base:.2f}× |")
    else:
        print("\n(the first refresh was made into rows before the filter could be typed: no figure for that)")
    print(f"\n{len(keys)} key presses.")


if __name__ == "__main__":
    main()
