"""The connection table's rows in sort order, kept by bisection, and the unfiltered rows set aside while a filter
is on. Textual-free: the table (widgets/connection_table.py) draws these rows and decides when to rebuild them.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter

from netscope.collectors.model import Socket, SocketKey
from netscope.collectors.session.folding import FoldedSockets, Folder, socket_count
from netscope.collectors.session.row_widths import RowExtents

# A row's place in the sort order: one bytes string where the sorted column allows (row_order), else a tuple.
SortKey = bytes | tuple[object, ...]


def too_much_churn(changes: int, rows: int) -> bool:
    """Whether one sort is cheaper than inserting `changes` rows one by one into `rows`."""
    return changes > rows // 4 + 64


def _counts(rows: list[Socket]) -> Counter[str]:
    """The sockets `rows` stand for by Socket.counter_name."""
    counts = Counter(map(attrgetter("counter_name"), rows))
    for fold in [row for row in rows if type(row) is FoldedSockets]:
        counts[fold.counter_name] += fold.count - 1  # counted once above
    return counts


@dataclass(slots=True)
class SortedRows:
    """Rows always in ascending sort order (a reversed sort reads them back to front), with their sort keys in a
    parallel list, so that one row is found, added or removed by bisection: a refresh costs O(changes x log rows),
    not a re-sort of 100,000 rows.

    A row is found by its sort key, made again from the row as it was put in (`key_of`), where the column's keys
    depend on the socket alone. A dict of every row's key to its sort key did this before: 5 MiB at 100,000 rows
    (measured), where making a key again is 1-3 us per row changed. Keys that move on their own (a timer, a
    tcp_info counter: `key_of` None) cannot be made again, and are held by key in `held`.

    Where `key_of` is compiled (row_order.compiled_bytes_sort_key: the default order, by program), the keys are not
    held at all (`order` None): a bisection makes the key of each row it compares, 17 at 100,000 rows, 0.25-0.44
    us each, and 9 MiB of keys are not kept (measured at 100,000 rows)."""

    column: str  # the column whose order they are in
    key_of: Callable[[Socket], SortKey] | None
    rows: list[Socket] = field(default_factory=list)
    order: list[SortKey] | None = field(default_factory=list)  # each row's sort key, where held
    held: dict[SocketKey, SortKey] | None = None  # key -> the sort key it was put in by, where key_of is None
    lingering: dict[SocketKey, Socket] = field(default_factory=dict)  # closed rows lingering: not counted
    counts: Counter[str] = field(default_factory=Counter)  # the live rows' sockets by Socket.counter_name
    # What the rows need at most: as measured when made (first_load.py) or first measured, widened by each row
    # put in since. Measuring 200,000 rows again, on a refresh with one wider row or on Escape from a filter, held
    # the event loop 117 ms (measured). A row taken out may leave them wider than the rows need, until the rows
    # are made again (a sort, a filter, folding).
    extents: RowExtents | None = None

    @classmethod
    def empty(cls, column: str, key_of: Callable[[Socket], SortKey] | None, keys_held: bool = True) -> SortedRows:
        """No rows yet. `keys_held` False: every key is made by `key_of` when needed (see the class doc)."""
        return cls(column, key_of, order=[] if keys_held or key_of is None else None,
                   held=None if key_of is not None else {})

    @classmethod
    def sorted_from(cls, column: str, key_of: Callable[[Socket], SortKey] | None, rows: list[Socket],
                    keys: list[SortKey], live_count: int, keys_held: bool = True) -> SortedRows:
        """`rows` with their `keys` in `column` (made by `key_of`, unless None), in any order; those from
        `live_count` on are closed ones lingering. `keys_held`: see empty()."""
        # Lists and maps rather than a tuple per row: at 100,000 rows each comprehension and tuple shows (Escape
        # from a broad filter rebuilds every row).
        order = sorted(range(len(rows)), key=keys.__getitem__)
        counts = _counts(rows[:live_count])
        return cls._in_order(column, key_of, rows, keys, order, live_count, keys_held, counts)

    @classmethod
    def sorted_in_parts(cls, column: str, key_of: Callable[[Socket], SortKey] | None, rows: list[Socket],
                        sort_key: Callable[[Socket], SortKey], keys_held: bool,
                        part: int) -> Generator[None, None, SortedRows]:
        """sorted_from() of live `rows` (none lingering), their keys made by `sort_key`, yielding after each
        `part` of them: each part's keys and counts, each part sorted on its own, then the sorted parts merged a
        `part` at a time. More work than one sort (a merge in Python: 0.5 us a row, against 0.35 for the whole
        sort), but no step holds the caller for longer than a part (measured: 500,000 random 30-byte keys)."""
        keys: list[SortKey] = []
        counts: Counter[str] = Counter()
        runs: list[array[int]] = []  # machine ints: a Python int per row held to the end was 2.8 MB at 100,000
        for start in range(0, len(rows), part):
            some = rows[start:start + part]
            keys.extend(map(sort_key, some))
            counts += _counts(some)
            runs.append(array("l", sorted(range(start, start + len(some)), key=keys.__getitem__)))
            yield
        ordered: list[Socket] = []
        kept: list[SortKey] | None = [] if keys_held or key_of is None else None
        merged = heapq.merge(*runs, key=keys.__getitem__)
        while len(ordered) < len(rows):
            indexes = list(islice(merged, part))
            ordered.extend(map(rows.__getitem__, indexes))
            if kept is not None:
                kept.extend(map(keys.__getitem__, indexes))
            yield
        held = None if key_of is not None else dict(zip(map(attrgetter("key"), rows), keys, strict=True))
        del merged, runs
        while keys:  # freed a part at a time: 500,000 keys freed at once held the loop 26 ms (measured)
            del keys[-part:]
            yield
        return cls(column, key_of, ordered, kept, held, {}, counts)

    @classmethod
    def _in_order(cls, column: str, key_of: Callable[[Socket], SortKey] | None, rows: list[Socket],
                  keys: list[SortKey], order: list[int], live_count: int, keys_held: bool,
                  counts: Counter[str]) -> SortedRows:
        """The rows put in `order` (their indexes, ascending by key); `counts`: the live ones' (_counts)."""
        held = None if key_of is not None else dict(zip(map(attrgetter("key"), rows), keys, strict=True))
        kept = list(map(keys.__getitem__, order)) if keys_held or key_of is None else None
        return cls(column, key_of, list(map(rows.__getitem__, order)), kept, held,
                   {sock.key: sock for sock in rows[live_count:]}, counts)

    def insert(self, sock: Socket, sort_key: SortKey, live: bool) -> None:
        if self.extents is not None:
            self.extents = self.extents.with_row(sock)
        if self.order is None:
            assert self.key_of is not None
            index = bisect_left(self.rows, sort_key, key=self.key_of)
        else:
            index = bisect_left(self.order, sort_key)
            self.order.insert(index, sort_key)
        self.rows.insert(index, sock)
        if self.held is not None:
            self.held[sock.key] = sort_key
        if live:
            self.counts[sock.counter_name] += socket_count(sock)
        else:
            self.lingering[sock.key] = sock

    def remove(self, row: Socket) -> None:
        """Take out the row of `row`'s key, given as it was put in, if it is there."""
        index = self.index_of(row)
        if index is None:
            return
        sock = self.rows[index]
        if self.order is not None:
            del self.order[index]
        del self.rows[index]
        if self.held is not None:
            del self.held[sock.key]
        if self.lingering.pop(sock.key, None) is None:
            self.counts[sock.counter_name] -= socket_count(sock)

    def index_of(self, row: Socket) -> int | None:
        """Where the row of `row`'s key is, given as it was put in; None if it is not there."""
        if self.key_of is not None:
            sort_key = self.key_of(row)
        else:
            assert self.held is not None
            held = self.held.get(row.key)
            if held is None:
                return None
            sort_key = held
        # Every sort key ends with the row's key (row_order, ConnectionRows): equal keys are the same row's.
        if self.order is None:
            assert self.key_of is not None
            index = bisect_left(self.rows, sort_key, key=self.key_of)
            found = index < len(self.rows) and self.key_of(self.rows[index]) == sort_key
        else:
            index = bisect_left(self.order, sort_key)
            found = index < len(self.order) and self.order[index] == sort_key
        return index if found else None

    def sort_keys_by_row(self) -> dict[int, SortKey] | None:
        """id(row) -> its sort key, for every row held here: a rebuild's look-up (the rows are alive while this
        is, so no id is another object's). None where the keys are not held."""
        return None if self.order is None else dict(zip(map(id, self.rows), self.order, strict=True))


@dataclass(slots=True)
class UnfilteredRows:
    """Every row in `column`'s order, fed every diff while a filter is on: clearing the filter swaps them back
    instead of folding and sorting every socket again (Escape at 100,000 sockets: 170 ms with keys unanswered).
    Closed rows lingering are not kept: the filtered table shows those."""

    column: str
    folder: Folder
    rows: SortedRows

    @classmethod
    def set_aside(cls, column: str, folder: Folder, rows: SortedRows) -> UnfilteredRows:
        for row in list(rows.lingering.values()):
            rows.remove(row)
        return cls(column, folder, rows)

    def feed(self, gone: Iterable[Socket], arrived: Iterable[Socket], now: float,
             sort_key: Callable[[Socket], SortKey], snapshot: Mapping[SocketKey, Socket]) -> bool:
        """One refresh's sockets gone (as they were) and new or changed, and its `snapshot`'s dict; False if it
        changed so many rows that clearing the filter may as well sort everything again (then these rows are no
        longer right)."""
        folder = self.folder
        folder.now = now
        for sock in gone:
            folder.remove(sock)
        for sock in arrived:
            folder.add(sock)
        changes = folder.take_changes(snapshot)
        rows = self.rows
        if too_much_churn(len(changes), len(rows.rows)):
            return False
        for row in (*changes.removed, *changes.hidden, *changes.replaced):
            rows.remove(row)
        for row in (*changes.changed, *changes.added):
            rows.insert(row, sort_key(row), True)
        return True
