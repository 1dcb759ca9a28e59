"""A first refresh (or a new filter over every socket) made into the table's rows a part at a time, so that the
event loop answers keys between parts.

At 100,000 sockets the rows of a first refresh took 128 ms at once (the listeners counted, the folds found, every
row's sort key made and sorted, the columns measured), and at 500,000 five times that: a key pressed meanwhile
waited for all of it. Here each part does LOAD_PART sockets' worth of one of those, at most ≈ 10 ms on a 2-CPU VM,
and what it makes is new (a folder, sorted rows): the rows shown before (a first screen) stay as they were until
the caller adopts the result. Textual-free: connection_rows.py runs the parts, the table paces them."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice

from netscope.collectors.model import Socket, SocketKey
from netscope.collectors.session.folding import Folder
from netscope.collectors.session.row_widths import TEXT_VALUES, RowExtents
from netscope.collectors.session.sorted_rows import SortedRows, SortKey

LOAD_PART = 10_000  # sockets a part handles: ≈ 10 ms of the slowest stage, the sort (measured at 100,000 sockets)


def count_listeners(sockets: Iterable[Socket], into: dict[int, int]) -> None:
    """Add the LISTEN sockets to `into` (local port -> how many listen on it)."""
    for port in [sock.local_port for sock in sockets if sock.state == "LISTEN"]:
        into[port] = into.get(port, 0) + 1


@dataclass(slots=True)
class LoadedRows:
    listening: dict[int, int]  # what `folder` folds by: see folding.group_of
    folder: Folder
    rows: SortedRows  # measured: rows.extents set


def load_in_parts(sockets: Mapping[SocketKey, Socket], folder: Folder, predicate: Callable[[Socket], bool] | None,
                  order: SortedOrder, now: float, part: int = LOAD_PART,
                  listening: dict[int, int] | None = None) -> Generator[None, None, LoadedRows]:
    """The rows of `sockets` (those `predicate` lets through), folded by `folder` (empty, with its settings)
    and sorted by `order`, yielding after each `part` of the sockets at each stage. `listening`: the sockets'
    listeners, if counted already (a new filter over the sockets shown): else counted here."""
    everything = list(sockets.values())
    if listening is None:
        listening = {}
        for start in range(0, len(everything), part):
            count_listeners(everything[start:start + part], listening)
            yield
    folder.listening_ports = listening
    if predicate is None:
        yield from folder.reset_over_in_parts(sockets, now, part)  # rows held as differences from the snapshot
    else:
        passing: list[Socket] = []
        for start in range(0, len(everything), part):
            passing.extend(filter(predicate, everything[start:start + part]))
            yield
        yield from folder.reset_in_parts(passing, now, part)
    rows: list[Socket] = []
    values = iter(folder.rows.values())  # a generator where rows are folded away: 20 ms at 250,000 (measured)
    while len(rows) < len(folder.rows):
        rows.extend(islice(values, part))
        yield
    sorted_rows = yield from SortedRows.sorted_in_parts(order.column, order.key_of, rows, order.sort_key,
                                                         order.keys_held, part)
    extents = RowExtents.of([], TEXT_VALUES)
    for start in range(0, len(rows), part):
        extents = extents.merged(RowExtents.of(rows[start:start + part], TEXT_VALUES))
        yield
    sorted_rows.extents = extents
    return LoadedRows(listening, folder, sorted_rows)


@dataclass(frozen=True, slots=True)
class SortedOrder:
    """How rows are sorted: see SortedRows."""

    column: str
    key_of: Callable[[Socket], SortKey] | None
    sort_key: Callable[[Socket], SortKey]
    keys_held: bool
