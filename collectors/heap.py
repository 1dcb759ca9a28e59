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

import os

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
BIG_BLOCK = 256 * 1024


def return_big_blocks() -> bool:
    """Have blocks of BIG_BLOCK bytes or more mapped on their own and unmapped when freed. False where the C
    library is not glibc (musl's mallopt does nothing) or says no."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (ValueError, OSError):
        return False
    import ctypes  # here: 1.5 ms, and only the processes that live long ask for this

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, BIG_BLOCK))
