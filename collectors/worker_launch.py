"""How the collector worker (collectors/worker.py) is started: its command line, and starting it.

Apart from process_collector so that the CLI can start the worker before loading anything else of the UI
(asyncio, the pipe's decoding): the worker starts 50 ms sooner (measured), and its start-up and first read overlap
with all of that. The first screen comes sooner by less (20-30 ms at 50,000 connections): the two start-ups share
the machine's CPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys

from netscope.collectors.pace import DEFAULT_CPU_SHARE


def worker_command(interval: float, tcp_info: bool, netns: str = "", cpu_share: float = DEFAULT_CPU_SHARE,
                   unix: bool = False, first_screen: int = 0) -> list[str]:
    """`netns`: a network namespace file (see namespaces.namespace_path) the worker enters first; "" for ours.
    `cpu_share`: the share of one core refreshing may cost before the worker waits longer (0: never). `unix`:
    unix sockets instead of TCP/UDP. `first_screen`: rows of a FirstScreen to send ahead of the first frame (0:
    none)."""
    return [
        sys.executable, "-m", "netscope.collectors.worker", "--interval", repr(interval),
        "--cpu-share", repr(cpu_share), "--parent", str(os.getpid()), *(["--tcp-info"] if tcp_info else []),
        *(["--netns", netns] if netns else []), *(["--unix"] if unix else []),
        *(["--first-screen", str(first_screen)] if first_screen > 0 else []),
    ]


def start_worker(interval: float = 1.0, tcp_info: bool = False, netns: str = "",
                 cpu_share: float = DEFAULT_CPU_SHARE, first_screen: int = 0) -> subprocess.Popen[bytes]:
    """Start the collector worker now, before there is an event loop (see ProcessCollector's `prestarted`)."""
    return subprocess.Popen(
        worker_command(interval, tcp_info, netns, cpu_share, first_screen=first_screen),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
