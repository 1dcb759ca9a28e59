"""Counts the frames netscope's collector worker sends: one refresh tick each, for benchmarks/resources.py.

resources.py puts this folder on PYTHONPATH and names a file in NETSCOPE_BENCH_TICKS for the app it starts; the
worker (`python -m netscope.collectors.worker`, which inherits both) then appends one byte to that file after each
frame it writes, so the file's size is the number of ticks. The frame itself is written exactly as before; the
extra `write` costs a few microseconds a tick. Any other process, or no NETSCOPE_BENCH_TICKS, is left alone.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

_PATH = os.environ.get("NETSCOPE_BENCH_TICKS")

if _PATH and "netscope.collectors.worker" in getattr(sys, "orig_argv", ()):
    # Patched before the worker module runs, so its `from netscope.collectors.wire import write_frame` gets this.
    from netscope.collectors import wire

    _fd = os.open(_PATH, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _write_frame = wire.write_frame

    def _counted(stream: BinaryIO, frame: wire.WireDiff | wire.WireFirstScreen) -> None:
        _write_frame(stream, frame)
        if isinstance(frame, wire.WireDiff):  # a first screen is sent ahead of a refresh, not as one
            os.write(_fd, b".")

    wire.write_frame = _counted
