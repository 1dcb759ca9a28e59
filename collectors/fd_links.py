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

import os
import threading
from collections.abc import Collection, Sequence

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
    found = _in_threads(size, tasks, table)
    merged: list[LinkFinds] = [({}, {}, [], []) for _ in reads]
    for index, (in_table, other, files, denied) in zip(owners, found, strict=True):
        into = merged[index]
        into[0].update(in_table)
        into[1].update(other)
        into[2].extend(files)
        into[3].extend(denied)
    return merged


def _in_threads(size: int, tasks: list[tuple[int, list[str]]], table: set[int] | None) -> list[LinkFinds]:
    """speedups.read_fd_links of each task, in order, read by `size` threads taking every size-th task; the first
    error raised in a thread is raised here. Plain threads started per read rather than concurrent.futures' pool:
    a big read is rare (a first scan), and that module with the logging it loads is 1.2 MiB of the worker's
    resident memory (measured)."""
    found: list[LinkFinds | None] = [None] * len(tasks)
    errors: list[BaseException] = []

    def read(start: int) -> None:
        try:
            for at in range(start, len(tasks), size):
                dir_fd, names = tasks[at]
                found[at] = speedups.read_fd_links(dir_fd, names, table)
        except BaseException as error:  # raised in the caller, not lost in the thread
            errors.append(error)

    helpers = [threading.Thread(target=read, args=(start,), name="netscope-fd-links", daemon=True)
               for start in range(1, size)]
    for helper in helpers:
        helper.start()
    read(0)
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]
    return [finds for finds in found if finds is not None]
