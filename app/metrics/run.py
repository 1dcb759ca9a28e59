"""Starting `--metrics`: the feed and the HTTP server, beside the full-screen UI or alone (`--no-ui`).

Headless, the source is the same collector worker the UI uses (so the same self-limit and stall handling) and the
loop is asyncio's, with SIGINT and SIGTERM stopping it cleanly: the worker is stopped, the port closed, status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass

from netscope.app.metrics.endpoint import MetricsServer, build_labels, label_text, parse_address
from netscope.app.printed.run import warn
from netscope.collectors.connections import CollectionFailure
from netscope.collectors.model import FirstScreen
from netscope.collectors.pace import PaceState
from netscope.collectors.session.alerts import Thresholds
from netscope.collectors.session.metrics import MetricsSettings
from netscope.collectors.session.metrics_feed import MetricsFeed
from netscope.collectors.sources import SnapshotSource
from netscope.collectors.view_data import SystemViews


@dataclass(slots=True)
class Endpoint:
    feed: MetricsFeed
    server: MetricsServer
    views: SystemViews

    @property
    def url(self) -> str:
        return f"http://{self.server.address}/metrics"

    def close(self) -> None:
        self.server.stop()
        self.feed.stop()
        self.views.close()


def start_endpoint(settings: MetricsSettings, thresholds: Thresholds, pace: Callable[[], PaceState | None],
                   interval: float, netns: str = "") -> Endpoint:
    """Bind and start serving; raises AddressError (endpoint.py) when the address cannot be used."""
    host, port = parse_address(settings.address)
    views = SystemViews(netns=netns)  # interfaces and counters of the namespace the sockets come from
    feed = MetricsFeed(settings, thresholds=thresholds, read_views=lambda: views.collect("connections"), pace=pace,
                       build=build_labels(), label=label_text, interval=interval)
    try:
        server = MetricsServer(host, port, lambda: feed.frame)
    except Exception:
        views.close()
        raise
    feed.start()
    server.start()
    return Endpoint(feed, server, views)


def serve_headless(args: argparse.Namespace, settings: MetricsSettings, thresholds: Thresholds,
                   netns: str = "") -> int:
    """`netscope --metrics ADDRESS:PORT --no-ui`: until SIGINT, SIGTERM or --duration. AddressError propagates
    (the CLI says it, status 2)."""
    from netscope.collectors.process_collector import ProcessCollector

    source = ProcessCollector(interval=args.interval, netns=netns, cpu_share=args.cpu_share)
    endpoint = start_endpoint(settings, thresholds, lambda: source.pace, args.interval, netns)
    try:
        warn(f"serving {endpoint.url}, refreshing every {args.interval:g}s; Ctrl-C or SIGTERM stops")
        return asyncio.run(_serve(source, endpoint.feed, args.duration))
    finally:
        endpoint.close()


async def _serve(source: SnapshotSource, feed: MetricsFeed, duration: float | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    said: set[str] = set()

    async def consume() -> None:
        async for update in source.stream():
            if isinstance(update, FirstScreen):
                continue  # a preview of the first refresh, which follows: nothing to count yet
            feed.take(update)
            # Said once each: a log that repeats a failure every second says less, not more. The count is in
            # netscope_refresh_failures_total.
            problems = [update.message] if isinstance(update, CollectionFailure) else []
            for problem in [*problems, *feed.take_problems()]:
                if problem not in said:
                    said.add(problem)
                    warn(problem)

    reading = asyncio.create_task(consume())
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({reading, stopping}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        if reading in done:
            reading.result()  # an error inside is a crash: raised, exit status 1 with its traceback
    finally:
        for task in (reading, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await source.aclose()
    return 0
