"""The collector worker: `python -m netscope.collectors.worker --interval S` polls sockets and writes WireDiffs
to stdout, so that reading 100,000 sockets never competes with the UI for the GIL.

It exits when its parent dies (PR_SET_PDEATHSIG) or stops reading (a broken pipe).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import time

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.wire import WireDiff, to_wire, write_frame

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl: the broken pipe on the next write ends it instead
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netscope-collector")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--parent", type=int, default=os.getppid())
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    out = sys.stdout.buffer
    collector = ConnectionCollector(interval=args.interval)
    try:
        while True:
            started = time.monotonic()
            try:
                wire = to_wire(collector.next_diff())
            except Exception as error:  # report it and keep polling
                wire = WireDiff(time.time(), False, [], [], [], error=f"{error.__class__.__name__}: {error}")
            write_frame(out, wire)
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
