"""Printing a recording: one moment (`--at`), every frame's counts (`--watch`), or what it holds (`--info`)."""

from __future__ import annotations

import argparse
import datetime
import os
import re
from typing import TYPE_CHECKING, Any

from netscope.widgets.formatting import (
    printable,
)

if TYPE_CHECKING:  # only for annotations: one-shot output starts without importing every collector
    pass

from netscope.app.printed.formats import iso_time, watch_header, watch_line
from netscope.app.printed.run import Output, print_connections, run_view, view_flag, warn
from netscope.app.printed.selection import Failure, Selection, UsageError
from netscope.app.printed.watch import human_size

_DURATION = re.compile(r"(\d+(?:\.\d*)?)([hms]?)")


def _duration(text: str) -> float | None:
    """"90", "90s", "5m", "1h30m", "1.5h" -> seconds; None if not a duration."""
    total, pos = 0.0, 0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None or (not match.group(2) and match.end() != len(text)):
            return None
        total += float(match.group(1)) * {"h": 3600, "m": 60, "s": 1, "": 1}[match.group(2)]
        pos = match.end()
    return total if text else None


def parse_at(text: str, start: float, end: float) -> float:
    """When `--at` points to, as time.time() seconds. Raises UsageError with the accepted forms."""
    text = text.strip()
    forms = (
        "give a time of day (12:03 or 12:03:04), a date and time (2026-11-23T12:03:04), an offset from the "
        "start (+90, +5m, +1h30m) or from the end (-30s), or @ and seconds since 1970"
    )
    if text[:1] in "+-" and len(text) > 1:
        offset = _duration(text[1:])
        if offset is None:
            raise UsageError(f"--at {text!r} is not an offset — {forms}")
        return start + offset if text[0] == "+" else end - offset
    if text.startswith("@"):
        try:
            return float(text[1:])
        except ValueError:
            raise UsageError(f"--at {text!r} is not a number of seconds — {forms}") from None
    if match := re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?", text):
        hour, minute, second = int(match.group(1)), int(match.group(2)), float(match.group(3) or 0)
        if hour > 23 or minute > 59 or second >= 60:
            raise UsageError(f"--at {text!r} is not a time of day — {forms}")
        clock = datetime.time(hour, minute, int(second), int(second % 1 * 1_000_000))
        day = datetime.date.fromtimestamp(start)
        moment = datetime.datetime.combine(day, clock).timestamp()
        # A recording that runs past midnight: 00:30 means the next day's.
        return moment + 86400 if moment < start - 1 else moment
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"--at {text!r} is not a time — {forms}") from None


def _open_recording(path: str) -> Any:
    from netscope.collectors.recording import RecordingError, RecordingReader

    try:
        return RecordingReader(path)
    except RecordingError as error:
        raise Failure(str(error)) from None
    except OSError as error:
        raise Failure(f"cannot read {path}: {error.strerror or error}") from None


def run_replay(args: argparse.Namespace, out: Output, selection: Selection) -> int:
    """`--replay FILE` with --once/--json/--csv/--count (one moment), --watch (every frame's counts) or --info."""
    from netscope.collectors.recording import RecordingDamaged

    with _open_recording(args.replay) as reader:
        if args.info:
            out.lines(recording_info(reader))
            return 0
        if view_flag(args):
            return _replay_view(args, out, reader)
        if not len(reader):
            raise Failure(f"{args.replay} holds no frames" + (f" ({reader.damage})" if reader.damage else ""))
        start, end = reader.start_time, reader.end_time
        try:
            if args.watch:
                fmt = "json" if args.json else "csv" if args.csv else "text"
                if (header := watch_header(fmt)) is not None:
                    out.line(header)
                lines = (
                    watch_line(diff.snapshot.taken_at, selection.pick(diff.snapshot.sockets.values()), fmt)
                    for diff in reader.diffs()
                )
                out.lines(lines)
                return 0
            if args.at is not None:
                when = parse_at(args.at, start, end)
                if when < start - 0.5:
                    raise UsageError(f"--at {args.at}: the recording starts later, at {iso_time(start)}")
                index = reader.index_at(when)
            else:
                index = len(reader) - 1
            snapshot = reader.snapshot_at(index)
        except RecordingDamaged as error:
            raise Failure(str(error)) from None
        if reader.damage is not None:
            warn(f"{args.replay}: {reader.damage}")
        recorded = f" as recorded at {iso_time(snapshot.taken_at)}, frame {index + 1}/{len(reader)}"
        print_connections(args, out, snapshot, selection, when=recorded)
    return 0


def _replay_view(args: argparse.Namespace, out: Output, reader: Any) -> int:
    """`--replay FILE -i/-r/-s/-g [--at TIME]`: a view as recorded (the last, without --at)."""
    if not reader.has_views:
        raise Failure(
            f"{args.replay} holds sockets only (no interfaces, routes, statistics or multicast groups): it was "
            "recorded by an older netscope"
        )
    times = [*reader.timestamps[:1], *reader.views_timestamps[:1], *reader.routes_timestamps[:1]]
    lasts = [*reader.timestamps[-1:], *reader.views_timestamps[-1:], *reader.routes_timestamps[-1:]]
    start, end = min(times), max(lasts)
    when = end
    if args.at is not None:
        when = parse_at(args.at, start, end)
        if when < start - 0.5:
            raise UsageError(f"--at {args.at}: the recording starts later, at {iso_time(start)}")
    if reader.damage is not None:
        warn(f"{args.replay}: {reader.damage}")
    return run_view(args, out, reader.views_at(when))


def recording_info(reader: Any) -> list[str]:
    header = reader.header
    start, end = reader.start_time, reader.end_time
    size = os.path.getsize(reader.path)
    lines = [
        f"file       {reader.path} ({human_size(size)})",
        f"made by    netscope {header.get('netscope', '?')} on {printable(str(header.get('hostname', '?')))}, "
        f"every {reader.interval:g}s",
    ]
    if start is not None:
        lines += [
            f"from       {iso_time(start)}",
            f"to         {iso_time(end)} ({datetime.timedelta(seconds=round(end - start))})",
        ]
    lines.append(f"frames     {len(reader)} ({len(reader.keyframes)} keyframes)")
    if reader.has_views:
        views, routes = len(reader.views_timestamps), len(reader.routes_timestamps)
        lines.append(
            f"views      interfaces, statistics and multicast groups {views} time{'s' * (views != 1)}, "
            f"routing tables {routes} time{'s' * (routes != 1)}"
        )
    else:
        lines.append("views      none: sockets only (views 2-5 are recorded since recording format 2)")
    if reader.damage is not None:
        lines.append(f"state      damaged: {reader.damage}")
    elif reader.complete:
        lines.append("state      complete")
    else:
        lines.append("state      not closed: netscope was killed, or is still recording; every frame is sound")
    return lines
