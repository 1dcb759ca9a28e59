"""The connection table's rows: every socket, filtered, folded and sorted, what changed highlighted, and the cursor
kept on its connection across refreshes. Textual-free: widgets/connection_table.py draws the rows it is given and
asks nothing of the sockets but what it shows.

Long, and one thing: filtering, folding, the diff applied to the rows, highlights, the sort-key cache and the
cursor all work on the same sorted rows (kept by bisection in sorted_rows.py), and a change to any of them changes
what the others may assume about it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from itertools import chain

from netscope.collectors.model import ChangeKind, SnapshotDiff, Socket, SocketKey
from netscope.collectors.row_order import (
    BYTES_COLUMNS,
    DEFAULT_SORT,
    bytes_sort_key,
    compiled_bytes_sort_key,
    local_sort_bytes,
    program_sort_bytes,
    remote_sort_bytes,
)
from netscope.collectors.session.first_load import LOAD_PART, SortedOrder, count_listeners, load_in_parts
from netscope.collectors.session.folding import FoldedSockets, Folder, RowChanges
from netscope.collectors.session.row_widths import (
    TEXT_COLUMN_MAX,
    TEXT_VALUES,
    USER_MAX_WIDTH,
    ContentWidths,
    RowExtents,
    address_width,
)
from netscope.collectors.session.sorted_rows import SortedRows, SortKey, UnfilteredRows, too_much_churn

SocketPredicate = Callable[[Socket], bool]
# The sort value of a column whose numbers move without the socket changing (a timer, a tcp_info counter): the
# table knows those columns; the rows only keep them in order when told they moved.
LiveSortValue = Callable[[str, Socket], object]

# The columns whose order depends on the socket alone: their keys are cached, and diffs keep the rows in order.
SORT_KEYS: dict[str, Callable[[Socket], object]] = {
    "proto": lambda s: s.proto,
    "recv_q": lambda s: s.recv_q,
    "send_q": lambda s: s.send_q,
    "local": local_sort_bytes,
    "remote": remote_sort_bytes,
    "state": lambda s: s.state,
    "program": program_sort_bytes,
    "user": lambda s: s.user,
    # Ascending age means youngest first.
    "age": lambda s: -s.first_seen,
    "container": lambda s: (s.container == "", s.container),  # the host's ("-") after the containers
}
class ConnectionRows:
    """Every live socket, and the rows shown of them: filtered, folded, in sort order, closed ones lingering
    marked for `flash_seconds`, with a cursor that stays on its connection while rows move."""

    def __init__(self, flash_seconds: float = 3.0) -> None:
        self.flash_seconds = flash_seconds
        self.now = 0.0
        self._sockets: dict[SocketKey, Socket] = {}  # every live socket, filtered or not
        self.folder = Folder()  # the live rows: the sockets that pass the filter, look-alike ownerless ones folded
        self._listening: dict[int, int] = {}  # local port -> LISTEN sockets on it: a server's end folds by it
        self.folder.listening_ports = self._listening
        self._gone: dict[SocketKey, Socket] = {}  # closed sockets that linger, marked, for flash_seconds
        self._flash: dict[SocketKey, tuple[ChangeKind, float]] = {}
        self._predicate: SocketPredicate | None = None
        self.sort_column = DEFAULT_SORT
        self._sorted = self._empty_rows(DEFAULT_SORT)  # the shown rows, in sort order
        self._unfiltered: UnfilteredRows | None = None  # while a filter is on (a sort by the socket alone)
        self._loading: Iterator[None] | None = None  # a first refresh or a filter made into rows (first_load.py)
        self._queued: list[SnapshotDiff] = []  # refreshes that came meanwhile, applied after it
        self._filtering = False  # what _loading makes is a new filter's rows
        self._first_sockets: dict[SocketKey, Socket] | None = None  # those of a first refresh _loading makes
        self._screen_only = False  # the rows are a first screen's (show_first_screen) until its refresh is made
        self._screen_filter: SocketPredicate | None = None  # typed over that screen: its refresh is made under it
        self.load_part = LOAD_PART
        self.sort_reverse = False
        self.live_sort_value: LiveSortValue | None = None  # for columns not in SORT_KEYS
        self.cursor = 0
        self.selected_key: SocketKey | None = None
        # Whether a row shown since the last measure() may need wider columns than it said.
        self.widths_stale = False
        self._measured = ContentWidths()

    # ----------------------------------------------------------------------------------------------- data in

    def apply_diff(self, diff: SnapshotDiff, *, in_parts: bool = False) -> None:
        """Take one refresh: mark what was added, changed or closed, and move only the rows that changed.
        `in_parts`: a first refresh of more than `load_part` sockets is made into rows by load_step() calls (or
        finish_loading()), the rows shown until then staying as they are; a refresh given `in_parts` meanwhile
        is applied after it."""
        if in_parts and self._loading is not None:
            self._queued.append(diff)
            return
        self.finish_loading()
        now = diff.snapshot.taken_at
        self.now = now
        folder = self.folder
        folder.now = now
        if diff.first:
            sockets = diff.snapshot.sockets
            self._first_sockets = sockets
            # `_filtering` with nothing being made: a filter typed over a first screen waits for this refresh.
            predicate = self._screen_filter if self._filtering else self._predicate
            self._loading = self._load(sockets, self.load_part if in_parts else max(1, len(sockets)), predicate)
            if not in_parts or len(sockets) <= self.load_part:
                self.finish_loading()
            return
        # The snapshot's own dict, not a copy: nothing changes a snapshot's sockets once it is made (the wire's
        # DiffAssembler makes a new dict for a refresh that changes any), and a copy is 5 MB at 100,000 sockets.
        # The folder's rows are held as differences from it, too (row_map.py).
        previous, self._sockets = self._sockets, diff.snapshot.sockets
        if previous is self._sockets and (diff.added or diff.changed or diff.removed):
            # A source that changed its last dict in place (none of netscope's does): what it held before is
            # gone, and so are the rows held over it; take the sockets whole.
            self._count_listeners()
            self._refold()
            self.rebuild(reuse_keys=False)
            return
        passes = self._passes
        gone: list[Socket] = []
        for sock in diff.removed:
            last = previous.get(sock.key) or sock
            self._count_listener(last, -1)
            gone.append(last)
        changed = zip(diff.changed_before, diff.changed, strict=True)
        added = ((previous.get(sock.key), sock) for sock in diff.added)
        for before, sock in chain(changed, added):
            if before is not None:
                self._count_listener(before, -1)
                gone.append(before)
            self._count_listener(sock, 1)
        # Socket changes become row changes: a TIME_WAIT socket joins its fold's count instead of being a row.
        for sock in gone:
            if passes(sock):
                folder.remove(sock)
        for sock in (*diff.changed, *diff.added):
            if passes(sock):
                folder.add(sock)
        self._apply_rows(folder.take_changes(self._sockets), now, diff)
        unfiltered = self._unfiltered
        if unfiltered is not None and not unfiltered.feed(gone, (*diff.changed, *diff.added), now,
                                                          self._sort_key_for(unfiltered.column), self._sockets):
            self._unfiltered = None

    @property
    def loading(self) -> bool:
        """Whether a first refresh or a new filter is being made into rows a part at a time (`in_parts`)."""
        return self._loading is not None

    def load_step(self) -> bool:
        """Make the next part of a first refresh into rows; whether more parts remain (the rows are shown once
        none does)."""
        if self._loading is None:
            return False
        try:
            next(self._loading)
        except StopIteration:
            self._loading = None
            queued, self._queued = self._queued, []
            for index, diff in enumerate(queued):
                self.apply_diff(diff, in_parts=True)
                if self._loading is not None:  # a first refresh again (a restarted source): loaded in parts too
                    self._queued = queued[index + 1:]
                    return True
            return False
        return True

    def finish_loading(self) -> None:
        """Make the rest of a first refresh into rows now, and the refreshes queued after it (anything that
        changes the rows calls this first)."""
        while self._loading is not None:
            loading, self._loading = self._loading, None
            for _ in loading:
                pass
            queued, self._queued = self._queued, []
            for diff in queued:
                self.apply_diff(diff)

    def _load(self, sockets: dict[SocketKey, Socket], part: int,
              predicate: SocketPredicate | None) -> Iterator[None]:
        """A first refresh's rows under `predicate`, in parts (first_load.py), then shown in place of the rows
        before."""
        column = self.sort_column
        order = SortedOrder(column, self._remade_key(column), self._sort_key_for(column), self._keys_held(column))
        loaded = yield from load_in_parts(sockets, self.folder.emptied(), predicate, order, self.now, part)
        selected = self.remember_selected()  # a first screen's row stays under the cursor
        refiltered, self._filtering = self._filtering, False
        self._first_sockets, self._screen_only, self._screen_filter = None, False, None
        self._predicate = predicate
        self._sockets = sockets
        self._listening, self.folder, self._sorted = loaded.listening, loaded.folder, loaded.rows
        self._gone.clear()
        self._flash.clear()
        self._unfiltered = None
        self.widths_stale = True
        if refiltered:  # a filter typed meanwhile: as set_filter, the cursor at the top unless its row shows
            self.cursor, self.selected_key = 0, None
            selected = self._still_shown(selected)
        self.follow(selected)

    def _count_listener(self, sock: Socket, step: int) -> None:
        if sock.state != "LISTEN":
            return
        count = self._listening.get(sock.local_port, 0) + step
        if count > 0:
            self._listening[sock.local_port] = count
        else:
            self._listening.pop(sock.local_port, None)

    def _apply_rows(self, changes: RowChanges, now: float, diff: SnapshotDiff) -> None:
        if too_much_churn(len(changes), len(self._sorted.rows)):
            self._mark(changes, now + self.flash_seconds)
            self._expire(now)
            # The keys held for the sockets of this diff are of their last versions (the set aside rows' too:
            # they are fed after this).
            self.rebuild(stale={sock.key for sock in chain(diff.removed, diff.changed, diff.added)})
            return
        selected = self.remember_selected()
        live = self.folder.rows
        shown = self._sorted
        for row in changes.added:
            closed = self._gone.pop(row.key, None)
            if closed is not None:
                shown.remove(closed)
            self._show(row, live=True)
        for before in changes.replaced:
            shown.remove(before)
        for row in changes.changed:
            self._show(row, live=True)
        for row in changes.hidden:
            shown.remove(row)
        lingering = self.flash_seconds > 0
        for row in changes.removed:
            shown.remove(row)
            if lingering:
                self._show(row, live=False)  # it lingers, marked, where it was
        self._mark(changes, now + self.flash_seconds)  # records the removed ones as gone
        for row in self._expire(now)[1]:
            if row.key not in live:
                shown.remove(row)
        self.follow(selected)

    def _mark(self, changes: RowChanges, until: float) -> None:
        if self.flash_seconds <= 0:
            return  # no transient colour (the low-bandwidth mode): closed rows go at once
        flash, gone = self._flash, self._gone
        for row in changes.added:
            flash[row.key] = (ChangeKind.ADDED, until)
        for row in changes.changed:
            # A fold's count moves on every refresh of a busy server: the count changing says it, not a flash.
            if not isinstance(row, FoldedSockets) and flash.get(row.key, (None,))[0] is not ChangeKind.ADDED:
                flash[row.key] = (ChangeKind.CHANGED, until)
        for row in changes.removed:
            gone[row.key] = row
            flash[row.key] = (ChangeKind.REMOVED, until)

    def load(self, sockets: Iterable[Socket], now: float) -> None:
        """Show a fixed set of sockets (the details view), with no highlights."""
        self.finish_loading()
        if self._screen_only:
            if self._filtering:  # typed over the first screen these replace
                self._predicate, self._filtering = self._screen_filter, False
            self._screen_only, self._screen_filter = False, None
        self.now = now
        self._sockets = {sock.key: sock for sock in sockets}
        self._count_listeners()
        self._gone.clear()
        self._flash.clear()
        self._refold()
        self.rebuild(reuse_keys=False)

    def show_first_screen(self, rows: Iterable[Socket], now: float) -> None:
        """Show the top rows of a first refresh still on its way (model.FirstScreen), with no highlights; a filter
        typed before that refresh (set_filter's `in_parts`) leaves them, and the refresh is made under it."""
        self.load(rows, now)
        self._screen_only = True

    def expire(self, now: float) -> bool:
        """Let highlights that are over fade and closed rows that lingered go; whether any did."""
        expired, closed = self._expire(now)
        if not expired:
            return False
        selected = self.remember_selected()
        for row in closed:
            if row.key not in self.folder.rows:
                self._sorted.remove(row)
        self.follow(selected)
        return True

    def _expire(self, now: float) -> tuple[list[SocketKey], list[Socket]]:
        """The keys whose highlights are over, and the closed rows among them that stop lingering."""
        expired = [key for key, (_, until) in self._flash.items() if until <= now]
        closed = []
        for key in expired:
            del self._flash[key]
            row = self._gone.pop(key, None)
            if row is not None:
                closed.append(row)
        return expired, closed

    def clear_highlights(self) -> None:
        """Drop every highlight and lingering closed row now."""
        selected = self.remember_selected()
        for key, row in self._gone.items():
            if key not in self.folder.rows:
                self._sorted.remove(row)
        self._gone.clear()
        self._flash.clear()
        self.follow(selected)

    # ------------------------------------------------------------------------------------------- filtering

    @property
    def filter_on(self) -> bool:
        return self._predicate is not None

    def set_filter(self, predicate: SocketPredicate | None, *, in_parts: bool = False) -> None:
        """Show only sockets for which `predicate` is true. The cursor stays on its row if that is still shown (a
        one-key filter narrows around it), else goes to the first row. `in_parts`: where every socket must be
        filtered again and there are more than `load_part`, the rows are made by load_step() calls (or
        finish_loading()) as a first refresh's are, the rows shown until then staying (`filtering`); a refresh
        given `in_parts` meanwhile is applied after. At 500,000 sockets a filter applied at once (rows and groups)
        held the event loop 174-190 ms for one port, 1.3-1.4 s for one that keeps most sockets (measured)."""
        if self._screen_only and self._loading is None:
            if in_parts:
                # Typed over a first screen, its refresh still crossing the pipe (seconds at 500,000 sockets): a
                # filter of its top rows alone would say that nothing matches.
                self._screen_filter, self._filtering = predicate, predicate is not self._predicate
                return
            self._filtering, self._screen_filter = False, None
        if in_parts and self._first_sockets is not None:
            # Typed while a first refresh is being made: made again under this filter, from its first part (at
            # 500,000 sockets, finishing it at once first held the event loop ≈ 0.5 s).
            self._filtering = True
            self._loading = self._load(self._first_sockets, self.load_part, predicate)
            return
        if in_parts and self._filtering:
            # A filter typed over one still being made: that one is dropped, not finished at once first.
            self._loading, self._filtering = None, False
            queued, self._queued = self._queued, []
            for diff in queued:
                self.apply_diff(diff)
            if predicate is None and self._predicate is None:
                return  # the rows shown are those wanted
        self.finish_loading()
        unfiltered = self._unfiltered
        swaps_back = predicate is None and unfiltered is not None and unfiltered.column == self.sort_column
        if in_parts and not swaps_back and len(self._sockets) > self.load_part:
            self._filtering = True
            self._loading = self._filter_in_parts(predicate)
            return
        selected, unfiltered = self._switch_filter(predicate)
        if swaps_back:
            assert unfiltered is not None
            self._unfiltered = None
            self._show_made(unfiltered.folder, unfiltered.rows, selected)
            return
        self._refold()
        self._unfiltered = unfiltered if predicate is not None else None
        self.rebuild(self._still_shown(selected))

    @property
    def filtering(self) -> bool:
        """Whether a new filter's rows are being made a part at a time (set_filter's `in_parts`), or wait for the
        first refresh of a first screen it was typed over: until they show, the rows shown are those from before
        it."""
        return self._filtering

    def _filter_in_parts(self, predicate: SocketPredicate | None) -> Iterator[None]:
        """set_filter's rows in parts (first_load.py), then shown in place of the rows before."""
        column = self.sort_column
        order = SortedOrder(column, self._remade_key(column), self._sort_key_for(column), self._keys_held(column))
        loaded = yield from load_in_parts(self._sockets, self.folder.emptied(), predicate, order, self.now,
                                          self.load_part, listening=self._listening)
        self._filtering = False
        selected, unfiltered = self._switch_filter(predicate)
        self._unfiltered = unfiltered if predicate is not None else None
        self._show_made(loaded.folder, loaded.rows, selected)

    def _switch_filter(self, predicate: SocketPredicate | None) -> tuple[SocketKey | None, UnfilteredRows | None]:
        """Put `predicate` on, before its rows: the selected connection remembered, the unfiltered rows set aside
        if a filter comes on, the cursor at the top, and closed rows lingering only if they would match (a closed
        fold's members are gone, so it cannot be asked). The remembered key and the rows set aside, for the
        caller to show the new rows with."""
        selected = self.remember_selected()
        unfiltered = self._unfiltered
        if self._predicate is None and predicate is not None:
            unfiltered = self._stash_unfiltered()
        self._predicate = predicate
        self.selected_key = None
        self.cursor = 0
        passes = self._passes
        for key in [key for key, row in self._gone.items() if isinstance(row, FoldedSockets) or not passes(row)]:
            del self._gone[key]
        return selected, unfiltered

    def _show_made(self, folder: Folder, rows: SortedRows, selected: SocketKey | None) -> None:
        """Show rows made without the closed ones lingering (set aside, or made in parts): those put in, the
        cursor back on `selected` if they show it."""
        self.folder, self._sorted = folder, rows
        for key, row in self._gone.items():
            if key not in folder.rows:
                self._show(row, live=False)
        self.widths_stale = True
        self.follow(self._still_shown(selected))

    def _stash_unfiltered(self) -> UnfilteredRows | None:
        """Set the unfiltered rows aside, and start the rows afresh."""
        column = self.sort_column
        if column not in SORT_KEYS:
            return None  # timer and tcp_info keys move on their own: such rows cannot be kept in order by diffs
        stash = UnfilteredRows.set_aside(column, self.folder, self._sorted)
        self.folder, self._sorted = self.folder.emptied(), self._empty_rows(column)
        return stash

    def _still_shown(self, key: SocketKey | None) -> SocketKey | None:
        """`key` if the rows as they are now show its socket (itself or its fold), else None."""
        if key is None or (key not in self.folder.rows and self.folder.row_key_of(key) not in self.folder.rows):
            return None
        return key

    def _count_listeners(self) -> None:
        self._listening.clear()
        count_listeners(self._sockets.values(), self._listening)

    def _passes(self, sock: Socket) -> bool:
        return self._predicate is None or self._predicate(sock)

    def _refold(self) -> None:
        """The rows again from every socket: after a new filter, folding switched, a fold opened."""
        self._unfiltered = None  # set_filter keeps it across its own refold
        predicate = self._predicate
        if predicate is None:
            self.folder.reset_over(self._sockets, self.now)  # the rows held as differences from the snapshot
        else:
            self.folder.reset(filter(predicate, self._sockets.values()), self.now)

    # ------------------------------------------------------------------------------------------- folding

    @property
    def folding(self) -> bool:
        return self.folder.enabled

    def set_folding(self, on: bool) -> None:
        """Fold ownerless look-alike sockets (TIME_WAIT ...) into one row per group, or show each; the cursor stays
        on its connection (or on the fold it went into)."""
        self.finish_loading()
        selected = self.remember_selected()
        self.folder.enabled = on
        self.folder.close_all()
        self._refold()
        if selected is not None and selected not in self.folder.rows:
            selected = self.folder.row_key_of(selected)
        self.rebuild(selected)

    def open_fold(self, row: Socket) -> bool:
        """Show a folded row's sockets one by one, the cursor on the first of them. False if it is no fold."""
        self.finish_loading()
        if not isinstance(row, FoldedSockets) or row.key not in self.folder.rows:
            return False
        members = self.folder.members(row)
        self.folder.open(row.group)
        self._refold()
        sort_key = self._sort_key_for(self.sort_column)
        first = (max if self.sort_reverse else min)(members, key=sort_key, default=None)
        self.rebuild(first.key if first is not None else None)
        return True

    def members_of(self, row: Socket) -> list[Socket]:
        """The sockets a row stands for (a fold's, or the row itself)."""
        return self.folder.members(row)

    # --------------------------------------------------------------------------------------------- rows out

    @property
    def row_count(self) -> int:
        return len(self._sorted.rows)

    @property
    def rows(self) -> list[Socket]:
        """The rows in display order, lingering closed ones included (a copy: for tests and exports)."""
        return self._sorted.rows[::-1] if self.sort_reverse else list(self._sorted.rows)

    def row_at(self, row: int) -> Socket:
        """The socket shown on display row `row` (0 = top)."""
        return self._sorted.rows[len(self._sorted.rows) - 1 - row] if self.sort_reverse else self._sorted.rows[row]

    def display_row(self, key: SocketKey) -> int | None:
        row = self.folder.rows.get(key)
        if row is None:
            row = self._gone.get(key)  # a closed row lingering
        index = self._sorted.index_of(row) if row is not None else None
        if index is None:
            return None
        return len(self._sorted.rows) - 1 - index if self.sort_reverse else index

    @property
    def counts(self) -> Counter[str]:
        """The shown rows' sockets by Socket.counter_name (closed rows lingering not counted)."""
        return self._sorted.counts

    def flash_of(self, key: SocketKey) -> ChangeKind | None:
        """The highlight a row has now, or None."""
        flash = self._flash.get(key)
        return flash[0] if flash else None

    def is_closed(self, sock: Socket) -> bool:
        """Whether a row is a lingering closed socket rather than a live one."""
        return sock.key in self._gone and sock.key not in self.folder.rows

    # ------------------------------------------------------------------------------------------- cursor

    @property
    def selected_socket(self) -> Socket | None:
        if 0 <= self.cursor < len(self._sorted.rows):
            return self.row_at(self.cursor)
        return None

    def remember_selected(self) -> SocketKey | None:
        """The selected connection's key, remembered while the order still says which row it is."""
        selected = self.selected_socket
        if selected is not None:
            self.selected_key = selected.key
        return self.selected_key

    def move_cursor(self, row: int) -> int | None:
        """Put the cursor on display row `row` (clamped); the row it left, or None if it did not move."""
        if not self._sorted.rows:
            return None
        row = max(0, min(row, len(self._sorted.rows) - 1))
        if row == self.cursor:
            return None
        old, self.cursor = self.cursor, row
        self.selected_key = self.row_at(row).key
        return old

    def follow(self, selected: SocketKey | None) -> None:
        """Put the cursor back on its connection (or on the fold it went into) after the rows moved."""
        if selected is not None:
            row = self.display_row(selected)
            if row is None:
                # Folded since: follow it into its fold.
                selected = self.folder.row_key_of(selected)
                row = self.display_row(selected)
            if row is not None:
                self.cursor = row
                self.selected_key = selected
        self.cursor = max(0, min(self.cursor, len(self._sorted.rows) - 1))

    # -------------------------------------------------------------------------------------------- sorting

    @property
    def sorts_live(self) -> bool:
        """Whether the rows are sorted by a column that moves on its own (a timer, a tcp_info counter)."""
        return self.sort_column not in SORT_KEYS

    def set_sort(self, column: str, reverse: bool) -> None:
        """Sort by `column` (SORT_KEYS, or one live_sort_value knows), the cursor staying on its connection."""
        self.finish_loading()
        if column != self.sort_column:
            self._unfiltered = None  # in another order
        self.sort_column, self.sort_reverse = column, reverse
        self.rebuild(self.selected_key)

    def rebuild(self, selected: SocketKey | None = None, *, reuse_keys: bool = True,
                stale: Container[SocketKey] = ()) -> None:
        """Sort every shown row from scratch (first load, new filter, new sort order, moved tcp_info numbers).
        `reuse_keys`: whether a row's key held for its SocketKey is of the socket now under it, but for `stale`
        ones (see _sort_key_reusing)."""
        self.finish_loading()
        selected = selected or self.remember_selected()
        live = self.folder.rows
        rows = list(live.values())  # then the closed ones lingering
        live_count = len(rows)
        rows.extend(sock for key, sock in self._gone.items() if key not in live)
        sort_key = self._sort_key_reusing(stale) if reuse_keys else self._sort_key_for(self.sort_column)
        keys = list(map(sort_key, rows))
        column = self.sort_column
        self._sorted = SortedRows.sorted_from(column, self._remade_key(column), rows, keys, live_count,
                                              keys_held=self._keys_held(column))
        self.widths_stale = True
        self.follow(selected)

    def _sort_key_for(self, column: str) -> Callable[[Socket], SortKey]:
        if column in BYTES_COLUMNS:
            return compiled_bytes_sort_key(column) or functools.partial(bytes_sort_key, column)
        return functools.partial(self._sort_key_of, column)

    def _remade_key(self, column: str) -> Callable[[Socket], SortKey] | None:
        """What makes a row's key in `column` again, for SortedRows to find the row by: None where the keys move
        on their own (timer and tcp_info columns)."""
        return self._sort_key_for(column) if column in SORT_KEYS else None

    @staticmethod
    def _keys_held(column: str) -> bool:
        """Whether the rows hold each row's key in `column`: not where compiled keys make them cheaply again."""
        return compiled_bytes_sort_key(column) is None

    def _empty_rows(self, column: str) -> SortedRows:
        return SortedRows.empty(column, self._remade_key(column), keys_held=self._keys_held(column))

    def _sort_key_reusing(self, stale: Container[SocketKey]) -> Callable[[Socket], SortKey]:
        """The sort key of the sorted column, taken where the column's keys depend on the socket alone (not the
        timer or tcp_info columns, which move on their own) from the rows that hold every socket's key in that
        column: the unfiltered ones set aside while a filter is on, else those shown, by the row's identity. A
        rebuild (a new filter, a reversed sort) makes 100,000 keys at 3.5 us each, and finds one held in a tenth of
        that. Not a fold's (its count moves), nor those in `stale`."""
        column = self.sort_column
        make = self._sort_key_for(column)
        unfiltered = self._unfiltered
        held = unfiltered.rows if unfiltered is not None and unfiltered.column == column else self._sorted
        if column not in SORT_KEYS or held.column != column:
            return make
        by_row = held.sort_keys_by_row()
        if by_row is None:
            return make  # keys not held: cheap to make
        known = by_row.get

        def sort_key(sock: Socket) -> SortKey:
            if type(sock) is Socket and sock.key not in stale:
                hit = known(id(sock))
                if hit is not None:
                    return hit
            return make(sock)

        return sort_key

    def _sort_key_of(self, column: str, sock: Socket) -> SortKey:
        # Ties go by the endpoints, then the rest of the socket's (unique) key, so equal rows never swap places.
        if column in BYTES_COLUMNS:
            return bytes_sort_key(column, sock)
        endpoints = local_sort_bytes(sock)
        if column in SORT_KEYS:
            value: object = SORT_KEYS[column](sock)
        elif self.live_sort_value is not None:
            value = self.live_sort_value(column, sock)
        else:
            value = 0
        return (value, endpoints, sock.key)

    def _show(self, sock: Socket, live: bool) -> None:
        """Insert one row in sort order (the filter has let it through)."""
        self._sorted.insert(sock, self._sort_key_for(self.sort_column)(sock), live)
        self.widths_stale = self.widths_stale or self._widens(sock)

    # ------------------------------------------------------------------------------------------- widths

    def measure(self, floors: ContentWidths) -> ContentWidths:
        """What the shown rows need in the columns sized to content, each at least its floor (`floors.texts`
        names the text columns shown, and theirs)."""
        extents = self._sorted.extents  # kept by the rows once measured (see SortedRows.extents)
        if extents is None or not extents.covers(floors):
            extents = self._sorted.extents = RowExtents.of(self._sorted.rows, [key for key, _ in floors.texts])
        self._measured = extents.widths(floors)
        self.widths_stale = False
        return self._measured

    def _widens(self, sock: Socket) -> bool:
        """Whether this row needs more than the columns were last measured to (before any narrowing)."""
        measured = self._measured
        return (
            address_width(sock.local_ip, sock.proto) > measured.local
            or address_width(sock.remote_ip, sock.proto) > measured.remote
            or min(USER_MAX_WIDTH, len(sock.user)) > measured.user
            or len(str(sock.recv_q)) > measured.recv_q
            or len(str(sock.send_q)) > measured.send_q
            or any(min(TEXT_COLUMN_MAX, len(TEXT_VALUES[key](sock))) > width for key, width in measured.texts)
        )
