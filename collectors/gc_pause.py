"""Pausing Python's cycle collector while big tables of plain objects are built or decoded."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: making 100,000 sockets or a million routes would otherwise start
    several collections, each walking every object the process holds (the previous snapshot's too), which costs a
    third of the time. Nothing made here is cyclic, so nothing is missed, and reference counting keeps freeing
    memory; collections resume on the way out. Nests; gc.disable() is process-wide, so another thread allocating
    meanwhile is not collected either, for that short while."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# Below this many sockets the first collections after a first read cost a few ms: nothing to freeze for.
LONG_LIVED = 20_000


def freeze_first_read(sockets: int) -> bool:
    """Inside gc_paused, at the end of a first read (or its first frame, or its first table) of `sockets` sockets:
    if there are at least LONG_LIVED, move every object alive now out of the cycle collector's reach (gc.freeze),
    and say whether it did.

    A first read's sockets, and what is built from them, live until each socket changes, and the collector never
    frees any of them (reference counting does). Yet collections walked them all: the first one after the pause
    (0.2 s at 500,000 sockets in the worker, and as much in the UI's decoding thread, holding the GIL), and each
    full one later (it held the UI's event loop for 250 ms every half minute or so there: the slowest key press).
    Frozen, a collection walks only what was made since (6 ms there; measured, benchmarks/README.md). The price:
    a reference cycle alive now that later becomes garbage is never collected. Only first reads freeze: a
    process's start-up leaves few such cycles, and a worker's restart is rare."""
    if sockets < LONG_LIVED:
        return False
    gc.freeze()
    return True
