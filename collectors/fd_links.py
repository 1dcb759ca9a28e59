"""Reading the fd links of many processes at once, spread over threads where that is faster.

A full owner scan reads every fd link of the machine: 100,000 readlink() calls at 50,000 connections, most of it
time in the kernel (about 3.5 us each on the project's machine). The compiled reader makes those calls without
the GIL, so threads run them side by side: two threads read 100,000 links in half the time of one
(benchmarks/README.md, "The compiled readers"). The pure-Python reader holds the GIL between calls, so it reads
in this thread only.

Only big reads are spread: an incremental scan reads a handful of links, which a thread hand-off would cost more
than it saves.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

from netscope.collectors import speedups
from netscope.collectors.speedups import LinkFinds

SPREAD_FROM = 4096  # links in one read below which threads are not worth starting
_CHUNK = 1024  # links per task: a process with 10,000 fds is shared out too
_THREADS_MAX = 4


def threads() -> int:
    """How many threads a big read uses: one per CPU this process may run on, at most _THREADS_MAX; 1 with the
    pure-Python reader."""
    if not speedups.COMPILED:
        return 1
    return max(1, min(_THREADS_MAX, len(os.sched_getaffinity(0))))


@functools.cache
def _pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(size, thread_name_prefix="netscope-fd-links")


def read_many(reads: Sequence[tuple[int, Collection[str]]], table: set[int] | None) -> list[LinkFinds]:
    """For each (open fd directory, fd names) in `reads`: what speedups.read_fd_links finds there, in order."""
    total = sum(len(names) for _dir_fd, names in reads)
    size = threads()
    if size < 2 or total < SPREAD_FROM:
        return [speedups.read_fd_links(dir_fd, names, table) for dir_fd, names in reads]
    tasks: list[tuple[int, list[str]]] = []
    owners: list[int] = []  # the index in `reads` each task came from
    for index, (dir_fd, names) in enumerate(reads):
        listed = list(names)
        for at in range(0, len(listed), _CHUNK):
            tasks.append((dir_fd, listed[at : at + _CHUNK]))
            owners.append(index)
    found = _pool(size).map(lambda task: speedups.read_fd_links(task[0], task[1], table), tasks)
    merged: list[LinkFinds] = [({}, {}, [], []) for _ in reads]
    for index, (in_table, other, files, denied) in zip(owners, found, strict=True):
        into = merged[index]
        into[0].update(in_table)
        into[1].update(other)
        into[2].extend(files)
        into[3].extend(denied)
    return merged
