"""Big blocks go back to the system when they are freed, in netscope's long-running processes.

Each refresh makes dicts and lists of every socket (5 MB a dict at 100,000 sockets: the netlink reader's sockets by
identity, the snapshot's by key, the UI's copy of it) and frees the last refresh's. glibc serves a block that big
with its own mmap and unmaps it when it is freed, until the first such free: then it raises its threshold to that
block's size (its "dynamic" threshold), and from then on serves those blocks from the heap, where the space they
leave stays resident. Setting the threshold (mallopt M_MMAP_THRESHOLD) turns the dynamic one off.

Measured at 50,000 loopback connections, runs with and without it in turn (benchmarks/README.md): UI + worker
262–268 -> 238–239 MB. The price is the pages each new block faults in: CPU per refresh, UI + worker, 129–139 ->
145–146 ms, of which the worker's dict updated in place (ConnectionCollector's update_in_place: one 5 MB block
fewer a refresh) took back about 5 ms. A threshold of 4 MiB cost as much and returned less.
"""

from __future__ import annotations

import functools
import os
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
BIG_BLOCK = 256 * 1024


@functools.cache
def _glibc() -> Any:
    """The C library's functions, if it is glibc; else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError):
        return None
    import ctypes  # here: 1.5 ms, and only the processes that live long ask for this

    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def return_big_blocks() -> bool:
    """Have blocks of BIG_BLOCK bytes or more mapped on their own and unmapped when freed. False where the C
    library is not glibc (musl's mallopt does nothing) or says no."""
    libc = _glibc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, BIG_BLOCK))  # two C ints and an int back: ctypes' defaults


def give_back_free_pages() -> bool:
    """Return the free pages inside the C heap to the system (glibc's malloc_trim), after a refresh: the blocks
    under BIG_BLOCK that a read frees (fd listings, the pipe's packed numbers, small dicts) leave whole pages free
    between live ones, which stay resident otherwise. Under a millisecond at 100,000 sockets (measured); the
    worker's RSS after its first reads at 50,000 connections: 81 -> 77 MiB. False where the C library is not
    glibc."""
    trim = getattr(_glibc(), "malloc_trim", None)
    if trim is None:
        return False
    import ctypes  # loaded by _glibc already

    trim.argtypes = (ctypes.c_size_t,)
    trim(0)  # the padding to keep at the heap's top: none
    return True
