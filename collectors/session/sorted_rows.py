"""The connection table's rows in sort order, kept by bisection, and the unfiltered rows set aside while a filter
is on. Textual-free: the table (widgets/connection_table.py) draws these rows and decides when to rebuild them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from netscope.collectors.model import Socket, SocketKey
from netscope.collectors.session.folding import FoldedSockets, Folder, socket_count

# A row's place in the sort order: one bytes string where the sorted column allows (row_order), else a tuple.
SortKey = bytes | tuple[object, ...]


def too_much_churn(changes: int, rows: int) -> bool:
    """Whether one sort is cheaper than inserting `changes` rows one by one into `rows`."""
    return changes > rows // 4 + 64


@dataclass(slots=True)
class SortedRows:
    """Rows always in ascending sort order (a reversed sort reads them back to front), with their sort keys in a
    parallel list, so that one row is found, added or removed by bisection: a refresh costs O(changes x log rows),
    not a re-sort of 100,000 rows."""

    column: str  # the column whose order they are in
    rows: list[Socket] = field(default_factory=list)
    order: list[SortKey] = field(default_factory=list)
    # key -> the sort key it was inserted by: also what a rebuild in the same column takes a row's key from
    # rather than making it again (ConnectionRows.rebuild), which a separate cache of every key cost 5 MB for
    shown: dict[SocketKey, SortKey] = field(default_factory=dict)
    lingering: set[SocketKey] = field(default_factory=set)  # rows that are closed ones lingering: not counted
    counts: Counter[str] = field(default_factory=Counter)  # the live rows' sockets by Socket.counter_name

    @classmethod
    def sorted_from(cls, column: str, rows: list[Socket], keys: list[SortKey], live_count: int) -> SortedRows:
        """`rows` with their `keys` in `column`, in any order; those from `live_count` on are closed ones
        lingering."""
        # Lists and maps rather than a tuple per row: at 100,000 rows each comprehension and tuple shows (Escape
        # from a broad filter rebuilds every row).
        order = sorted(range(len(rows)), key=keys.__getitem__)
        live_rows = rows[:live_count]
        counts = Counter(map(attrgetter("counter_name"), live_rows))
        for fold in [row for row in live_rows if type(row) is FoldedSockets]:
            counts[fold.counter_name] += fold.count - 1  # counted once above
        return cls(column, list(map(rows.__getitem__, order)), list(map(keys.__getitem__, order)),
                   dict(zip(map(attrgetter("key"), rows), keys, strict=True)),
                   {sock.key for sock in rows[live_count:]}, counts)

    def insert(self, sock: Socket, sort_key: SortKey, live: bool) -> None:
        index = bisect_left(self.order, sort_key)
        self.order.insert(index, sort_key)
        self.rows.insert(index, sock)
        self.shown[sock.key] = sort_key
        if live:
            self.counts[sock.counter_name] += socket_count(sock)
        else:
            self.lingering.add(sock.key)

    def remove(self, key: SocketKey) -> None:
        """Take one row out, if it is there."""
        sort_key = self.shown.pop(key, None)
        if sort_key is None:
            return
        index = bisect_left(self.order, sort_key)
        sock = self.rows[index]
        del self.order[index]
        del self.rows[index]
        if key in self.lingering:
            self.lingering.discard(key)
        else:
            self.counts[sock.counter_name] -= socket_count(sock)

    def index_of(self, key: SocketKey) -> int | None:
        sort_key = self.shown.get(key)
        return None if sort_key is None else bisect_left(self.order, sort_key)


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
        for key in list(rows.lingering):
            rows.remove(key)
        return cls(column, folder, rows)

    def feed(self, gone: Iterable[Socket], arrived: Iterable[Socket], now: float,
             sort_key: Callable[[Socket], SortKey]) -> bool:
        """One refresh's sockets gone (as they were) and new or changed; False if it changed so many rows that
        clearing the filter may as well sort everything again (then these rows are no longer right)."""
        folder = self.folder
        folder.now = now
        for sock in gone:
            folder.remove(sock)
        for sock in arrived:
            folder.add(sock)
        changes = folder.take_changes()
        rows = self.rows
        if too_much_churn(len(changes), len(rows.rows)):
            return False
        for row in (*changes.removed, *changes.hidden):
            rows.remove(row.key)
        for row in (*changes.changed, *changes.added):
            rows.remove(row.key)
            rows.insert(row, sort_key(row), True)
        return True
