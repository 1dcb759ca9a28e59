"""Printing or recording over time: `--watch` and headless `--record`, until a signal, `--duration` or a closed
pipe; a stuck read is said on stderr."""

from __future__ import annotations

import argparse
import contextlib
import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from netscope.collectors.model import SnapshotDiff

if TYPE_CHECKING:  # only for annotations: one-shot output starts without importing every collector
    from netscope.collectors.recording import RecordingWriter

from netscope.app.printed.formats import watch_header, watch_line
from netscope.app.printed.run import (
    Output,
    inet_wanted,
    print_connections,
    print_conntrack,
    print_unix,
    run_view,
    view_flag,
    warn,
)
from netscope.app.printed.selection import Failure, Selection


class StopSignals:
    """Turns SIGINT and SIGTERM into a flag, so a loop finishes what it is writing and ends with status 0."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def wait(self, seconds: float) -> bool:
        return self.event.wait(max(0.0, seconds))


_R = TypeVar("_R")


def stall_after(interval: float) -> float:
    """How long a read may take before it is said to be stuck (the UI restarts its worker after as long)."""
    return max(10.0, 5 * interval)


def watched_read(read: Callable[[], _R], stop: threading.Event, stall: float) -> _R:
    """`read()` in a thread, saying on stderr how long it has been stuck every `stall` seconds it does not finish,
    so that a `--watch` log never goes quiet without a word. Raises StopIteration if `stop` is set meanwhile."""
    results: list[_R] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            results.append(read())
        except BaseException as error:  # handed to the caller's thread
            errors.append(error)
        finally:
            done.set()

    threading.Thread(target=run, name="netscope-read", daemon=True).start()
    started = time.monotonic()
    told = 0
    while not done.wait(0.2):
        if stop.is_set():
            raise StopIteration
        waited = time.monotonic() - started
        if waited >= (told + 1) * stall:
            told += 1
            warn(f"reading sockets has not finished for {waited:.0f}s: the last line printed is that old")
    if errors:
        raise errors[0]
    if told:
        warn(f"reading sockets took {time.monotonic() - started:.0f}s; the line below is from when it began")
    return results[0]


def run_loop(
    args: argparse.Namespace, out: Output, selection: Selection, on_diff: Callable[[SnapshotDiff], None] | None,
    narrow: bool = True,
) -> int:
    """`--watch`, `-c` and headless `--record`: a refresh every interval (see ticks()) until a signal,
    `--duration`, or a closed pipe. With `narrow`, the kernel is asked only for the selection's sockets (a
    recording keeps every socket)."""
    from netscope.collectors.connections import ConnectionCollector
    from netscope.collectors.sockdiag_query import EVERYTHING

    fmt = "json" if args.json else "csv" if args.csv else "text"
    query = selection.kernel_query() if narrow else EVERYTHING
    collector = ConnectionCollector(interval=args.interval, query=query)
    with StopSignals() as stop:
        if args.watch and (header := watch_header(fmt)) is not None:
            out.line(header)
        for _ in ticks(args.interval, args.duration, stop):
            try:
                diff = watched_read(collector.next_diff, stop.event, stall_after(args.interval))
            except StopIteration:  # stopped while a read was stuck: nothing more to print
                break
            except Exception as error:  # one failed refresh is reported; the next may work
                warn(f"reading sockets failed: {error.__class__.__name__}: {error}")
                continue
            if on_diff is not None:
                on_diff(diff)
            if args.watch:
                snapshot = diff.snapshot
                out.line(watch_line(snapshot.taken_at, selection.pick(snapshot.sockets.values()), fmt))
    return 0


def ticks(interval: float, duration: float | None, stop: StopSignals) -> Iterator[None]:
    """One turn per tick, on the interval's grid (a slow turn does not push every later one back; one that
    overruns skips the ticks it missed rather than bunching up), until a signal or `duration` seconds."""
    started = time.monotonic()
    deadline = started + duration if duration else None
    tick = started
    while not stop.event.is_set():
        yield
        now = time.monotonic()
        tick += interval
        if tick < now:
            tick += (now - tick) // interval * interval + interval
        if deadline is not None and tick >= deadline:
            return
        stop.wait(tick - now)


def run_continuous(args: argparse.Namespace, out: Output, selection: Selection) -> int:
    """`-c` and a trailing interval (`netscope -tn 2`): the table, or -i/-r/-s/-g, printed again every interval
    as netstat -c does, until Ctrl-C, SIGTERM, `--duration` or a closed pipe. With --json, one array each time."""
    told: set[str] = set()  # warnings are said once, not every interval
    if view_flag(args) or args.masquerade or not inet_wanted(args):  # a table read whole each time (-x alone too)
        table = (functools.partial(run_view, args, out) if view_flag(args)
                 else functools.partial(print_conntrack, args, out) if args.masquerade
                 else functools.partial(print_unix, args, out, told))  # fmt: skip
        with StopSignals() as stop:
            for _ in ticks(args.interval, args.duration, stop):
                try:
                    watched_read(table, stop.event, stall_after(args.interval))
                except StopIteration:
                    break
        return 0

    def show(diff: SnapshotDiff) -> None:
        for message in diff.snapshot.warnings:
            if message not in told:
                told.add(message)
                warn(message)
        print_connections(args, out, diff.snapshot, selection, told=told)
        if args.unix:
            print_unix(args, out, told)

    return run_loop(args, out, selection, show, narrow=not getattr(args, "fold", False))


def run_record(args: argparse.Namespace, out: Output, selection: Selection) -> int:
    """Headless recording (`--record FILE --no-ui`, or with `--watch`): the sockets in this thread, views 2-5
    (interfaces, statistics, multicast every interval, routes every 10 s) in another."""
    from netscope.collectors.recording import RecordingWriter

    try:
        writer = RecordingWriter(args.record, interval=args.interval)
    except OSError as error:
        raise Failure(f"cannot create the recording {args.record}: {error.strerror or error}") from None
    if not args.watch:
        warn(f"recording every {args.interval:g}s to {args.record}; Ctrl-C or SIGTERM stops")
    stop_views = threading.Event()
    problems: list[str] = []
    views = threading.Thread(
        target=record_views, args=(writer, args.interval, stop_views, problems), name="netscope-views", daemon=True
    )
    views.start()
    try:
        try:
            run_loop(args, out, selection, writer.write, narrow=False)
        except OSError as error:
            if isinstance(error, BrokenPipeError):
                raise
            raise Failure(f"recording to {args.record} failed: {error.strerror or error}") from None
    finally:
        stop_views.set()
        views.join(timeout=60)  # a read of a huge routing table may be under way: it is left to finish
        with contextlib.suppress(OSError):
            writer.close()
        for message in problems:
            warn(message)
        if not args.watch:
            warn(
                f"recorded {writer.frames} frames and {writer.view_frames} of views "
                f"({human_size(writer.bytes_written)}) to {args.record}"
            )
    return 0


def record_views(writer: RecordingWriter, interval: float, stop: threading.Event, problems: list[str]) -> None:
    """Headless recording's second thread: views 2-5 every `interval`, on the same kind of grid as run_loop's,
    until `stop`. A failed write ends it (the sockets go on being recorded); `problems` says why."""
    from netscope.collectors.view_data import SystemViews

    views = SystemViews()
    views.recording = True  # routes too, every ROUTES_WHILE_RECORDING seconds
    tick = time.monotonic()
    while not stop.is_set():
        data = views.collect("connections")
        try:
            writer.write_views(time.time(), data)
        except OSError as error:
            if not writer.closed:
                problems.append(f"recording views to {writer.path} failed: {error.strerror or error}")
            return
        except ValueError as error:  # closed meanwhile, or data JSON cannot hold: that read only is lost
            if writer.closed:
                return
            if not problems:
                problems.append(f"some views could not be recorded: {error}")
        now = time.monotonic()
        tick += interval
        if tick < now:
            tick += (now - tick) // interval * interval + interval
        stop.wait(tick - now)


def human_size(n: int) -> str:
    if n < 10_000:
        return f"{n} bytes"
    if n < 10_000_000:
        return f"{n / 1000:.0f} KB"
    return f"{n / 1_000_000:.0f} MB"
