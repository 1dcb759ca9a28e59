"""What the Prometheus endpoint costs: CPU per refresh and per scrape, at 10,000 and 50,000 connections.

    python benchmarks/metrics_cost.py [--connections 10000 50000] [--window 20] [--scrapes-per-second 10]

For each N: holds N established loopback connections (2N sockets, compare.py's `start_load`), starts
`netscope --metrics 127.0.0.1:0 --no-ui --no-config --cpu-limit 0` (a 1 s pace, so every window has the same
number of refreshes), waits for a frame holding the whole load, then measures two windows of `--window` s each:

* quiet: nobody scrapes. CPU of the main process (the feed: counting each diff, reading interfaces and
  counters, making the frame) and of the collector worker, per refresh (netscope_refreshes_total's change);
* scraped: a client scrapes `--scrapes-per-second` times a second. The main process's CPU beyond the quiet
  window's, divided by the scrapes: the cost of one scrape. Also the scrape's wall time (median) and size.

Beside them, in the same run, the wall time of one `ss -tan` (median of 5) and the series in one exposition.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import time
import urllib.request

from compare import check_limits, ss_seconds, start_load, stop_load
from resources import cpu_seconds, netscope_command, worker_of


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def total_sockets(text: str) -> float:
    return sum(float(value) for value in re.findall(r"^netscope_sockets\{[^}]*\} (\S+)$", text, re.MULTILINE))


def measure(connections: int, window: float, rate: float) -> dict[str, float]:
    process = subprocess.Popen(
        [*netscope_command(), "--no-config", "--metrics", "127.0.0.1:0", "--no-ui", "--cpu-limit", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        found = re.search(r"serving (http://\S+/metrics)", process.stderr.readline())
        if not found:
            raise SystemExit("netscope said no address")
        url = found.group(1)

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return str(answer.read().decode())

        deadline = time.monotonic() + 180
        while total_sockets(text := scrape()) < 2 * connections:
            if time.monotonic() > deadline:
                raise SystemExit(f"the load never showed: {total_sockets(text):.0f} sockets")
            time.sleep(1)
        time.sleep(5)  # past the first, full refresh
        worker = worker_of(process.pid)
        if worker is None:
            raise SystemExit("no collector worker")

        def window_of(scrapes_per_second: float) -> dict[str, float]:
            refreshes0 = metric(scrape(), "netscope_refreshes_total")
            main0, worker0, started = cpu_seconds(process.pid), cpu_seconds(worker), time.monotonic()
            walls, size, scrapes = [], 0, 0
            while (now := time.monotonic()) < started + window:
                if scrapes_per_second:
                    began = time.perf_counter()
                    size = len(scrape())
                    walls.append(time.perf_counter() - began)
                    scrapes += 1
                    time.sleep(max(0.0, started + scrapes / scrapes_per_second - time.monotonic()))
                else:
                    time.sleep(min(0.5, started + window - now))
            main, work = cpu_seconds(process.pid) - main0, cpu_seconds(worker) - worker0
            refreshes = metric(scrape(), "netscope_refreshes_total") - refreshes0
            return {"main": main, "worker": work, "refreshes": refreshes, "scrapes": scrapes,
                    "wall": statistics.median(walls) if walls else 0.0, "size": size}

        quiet = window_of(0)
        scraped = window_of(rate)
        series = metric(scrape(), "netscope_scrape_series")
        return {
            "feed_per_refresh": quiet["main"] / max(1, quiet["refreshes"]),
            "worker_per_refresh": quiet["worker"] / max(1, quiet["refreshes"]),
            "per_scrape": max(0.0, scraped["main"] - quiet["main"]) / max(1, scraped["scrapes"]),
            "scrape_wall": scraped["wall"], "size": scraped["size"], "series": series,
            "rss_mb": int(open(f"/proc/{process.pid}/status").read().split("VmRSS:")[1].split()[0]) / 1000,
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--scrapes-per-second", type=float, default=10.0)
    args = parser.parse_args()
    rows = []
    for count in args.connections:
        check_limits(count)
        loads = start_load(count)
        try:
            ss = ss_seconds()
            result = measure(count, args.window, args.scrapes_per_second)
            ss = statistics.median([ss, ss_seconds()])
        finally:
            stop_load(loads)
        rows.append((count, result, ss))
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {os.cpu_count()} CPUs, "
          f"{platform.platform()}, Python {platform.python_version()}; windows of {args.window:g} s, "
          f"{args.scrapes_per_second:g} scrapes/s in the scraped one.\n")
    print("| connections (sockets) | feed CPU / refresh | worker CPU / refresh | CPU / scrape | scrape wall time "
          "| exposition | endpoint RSS | `ss -tan` wall time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for count, result, ss in rows:
        print(f"| {count:,} ({2 * count:,}) | {result['feed_per_refresh'] * 1000:.1f} ms | "
              f"{result['worker_per_refresh'] * 1000:.0f} ms | {result['per_scrape'] * 1000:.1f} ms | "
              f"{result['scrape_wall'] * 1000:.1f} ms | {result['series']:.0f} series, "
              f"{result['size'] / 1000:.1f} KB | {result['rss_mb']:.0f} MB | {ss * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
