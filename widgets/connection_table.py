"""The connection table: every socket, sorted, filtered, with TCPView-style highlights.

Built on Textual's Line API (a `ScrollView` that renders one line at a time from a plain sorted list) rather than
`DataTable`: with 50,000 rows only the visible lines are ever rendered, and a refresh repaints only the screen
lines whose content changed, which is what crosses a slow SSH link.

Long, and one thing: sorting, filtering, the diff applied to the rows, highlights and the line cache all work on
the same sorted rows (kept by bisection in collectors/session/sorted_rows.py), and a change to any of them changes
what the others may assume about it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from netscope.collectors.model import ChangeKind, LiveTimer, SnapshotDiff, Socket, SocketKey, is_unix
from netscope.collectors.row_order import (
    BYTES_COLUMNS,
    DEFAULT_SORT,
    bytes_sort_key,
    local_sort_bytes,
    program_sort_bytes,
    remote_sort_bytes,
)
from netscope.collectors.session.folding import FoldedSockets, Folder, RowChanges, socket_count
from netscope.collectors.session.sorted_rows import SortedRows, SortKey, UnfilteredRows, too_much_churn
from netscope.collectors.session.throughput import Throughput
from netscope.collectors.tcpinfo import TcpInfo
from netscope.widgets.formatting import (
    fit,
    format_age,
    format_endpoint,
    owner_text,
    printable,
    state_label,
)
from netscope.widgets.tcp_columns import METRIC_COLUMNS, TIMER_KEY, TIMER_WIDTH, MetricColumn, timer_cell

# Formats an endpoint (ip, port, proto) for display; the app swaps in one that uses resolved names.
EndpointFormatter = Callable[[str, int, str], str]
SocketPredicate = Callable[[Socket], bool]
# A connection's kernel counters (None: none known, e.g. UDP) and its rates, for the optional tcp_info columns.
MetricLookup = Callable[[SocketKey], tuple[TcpInfo | None, Throughput | None]]
TimerLookup = Callable[[SocketKey], LiveTimer | None]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    align_right: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("proto", "Proto", 5),
    Column("recv_q", "Recv-Q", 6, align_right=True),
    Column("send_q", "Send-Q", 6, align_right=True),
    Column("local", "Local Address", 15),
    Column("remote", "Remote Address", 15),
    Column("state", "State", 11),
    Column("program", "PID/Program", 18),
    Column("user", "User", 8),
    Column("age", "Age", 6, align_right=True),
)
# Column indexes hidden, in this order, when the terminal is too narrow: Age, User, Send-Q, Recv-Q.
HIDE_FIRST = (8, 7, 2, 1)
ADDRESS_MAX_WIDTH = 47  # a full IPv6 address in brackets with a port
NAMED_ADDRESS_WIDTH = 32  # host names vary too much to size columns on; crop long ones


def _line_width(widths: list[int]) -> int:
    """Cells a row takes: the shown columns (width > 0) and one space between each two."""
    shown = [width for width in widths if width]
    return sum(shown) + len(shown) - 1


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
# Optional columns of text the socket carries (chosen with `c`, like the tcp_info ones), sized to their content.
TEXT_COLUMN_MAX = 32
# What PID/Program can need (a 7-digit PID, "/", a 15-character command name): past it, spare width stays at the
# right edge, so that on a wide terminal the user and age are not a screen's width away from the program.
PROGRAM_COLUMN_MAX = 24
TEXT_COLUMNS: dict[str, tuple[Column, Callable[[Socket], str]]] = {
    "container": (Column("container", "Container", 9), lambda s: s.container),
}


MOVE = "move the cursor (it stays on its connection while rows move)"


class ConnectionTable(ScrollView, can_focus=True):
    """A sorted, filtered view of sockets that follows the selected connection across refreshes."""

    COMPONENT_CLASSES = {
        "connection-table--header",
        "connection-table--header-sorted",
        "connection-table--cursor",
        "connection-table--added",
        "connection-table--changed",
        "connection-table--removed",
        "connection-table--listen",
        "connection-table--established",
        "connection-table--waiting",
        "connection-table--opening",
        "connection-table--dim",
    }

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, tooltip=MOVE),
        Binding("down", "cursor(1)", "Down", show=False, tooltip=MOVE),
        Binding("pageup", "page(-1)", "Page up", show=False, tooltip=MOVE),
        Binding("pagedown", "page(1)", "Page down", show=False, tooltip=MOVE),
        Binding("home", "jump(0)", "First", show=False, tooltip=MOVE),
        Binding("end", "jump(-1)", "Last", show=False, tooltip=MOVE),
        Binding("enter", "activate", "Details", id="details",
                tooltip="details: the owning process's command line, user, start time, cwd and all its sockets, "
                        "and a TCP connection's timer and internals; on a folded row (×N), its sockets one by "
                        "one"),
        Binding("f", "toggle_folding", "Fold", id="fold",
                tooltip="fold / unfold ownerless look-alike sockets (TIME_WAIT, orphans, the SYN queue) into one "
                        "row per state, local endpoint and remote host, with a count"),
    ]

    class Activated(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, table: ConnectionTable, sock: Socket) -> None:
            super().__init__()
            self.table = table
            self.socket = sock

        @property
        def control(self) -> ConnectionTable:
            return self.table

    class FoldingChanged(Message):
        def __init__(self, on: bool) -> None:
            super().__init__()
            self.on = on

    class SortChanged(Message):
        def __init__(self, column: str, reverse: bool) -> None:
            super().__init__()
            self.column = column
            self.reverse = reverse

    sort_column: reactive[str] = reactive(DEFAULT_SORT, init=False)
    sort_reverse: reactive[bool] = reactive(False, init=False)

    def __init__(self, *, flash_seconds: float = 3.0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.flash_seconds = flash_seconds
        self.coarse_ages = False  # ages in minutes only, even in a socket's first minute (the low-bandwidth mode)
        self._sockets: dict[SocketKey, Socket] = {}  # every live socket, filtered or not
        self.folder = Folder()  # the live rows: the sockets that pass the filter, look-alike ownerless ones folded
        self._listening: dict[int, int] = {}  # local port -> LISTEN sockets on it: a server's end folds by it
        self.folder.listening_ports = self._listening
        self._gone: dict[SocketKey, Socket] = {}  # closed sockets that linger, marked, for flash_seconds
        self._flash: dict[SocketKey, tuple[ChangeKind, float]] = {}
        self._predicate: SocketPredicate | None = None
        self._sorted = SortedRows()  # the shown rows, in sort order
        # Every row's sort key (shown or filtered out), for one column whose keys depend on the socket alone: a
        # rebuild (a new filter, a reversed sort) makes 100,000 keys at 3.5 us each and finds a cached one in a
        # tenth of that. apply_diff forgets the key of every socket that changed or went, and load and a first
        # diff forget them all: a key is only ever of the socket now under its SocketKey.
        self._key_cache: dict[SocketKey, SortKey] = {}
        self._key_cache_column = ""
        self._unfiltered: UnfilteredRows | None = None  # while a filter is on (a sort by the socket alone)
        self._cursor = 0
        self._selected_key: SocketKey | None = None
        self._now = 0.0
        self._columns: tuple[Column, ...] = COLUMNS
        self._extra_keys: tuple[str, ...] = ()  # the optional columns shown, text and tcp_info, in order
        self._metric_columns: tuple[MetricColumn, ...] = ()
        self._metrics: MetricLookup | None = None
        self._timer_lookup: TimerLookup | None = None  # not `_timers`: Textual's MessagePump has one
        self._widths: list[int] = [column.width for column in COLUMNS]
        self._formatter: EndpointFormatter = format_endpoint
        self._names_on = False
        self._painted: dict[int, tuple[object, ...]] = {}  # screen line -> signature of what was drawn there
        self._widths_stale = False
        self._content_widths = (0, 0, 0, 0, 0)  # local, remote, user, recv_q, send_q: what the rows need
        self._text_widths: dict[str, int] = {}  # the optional text columns' widths, as last sized

    # ----------------------------------------------------------------------------------------------- data in

    def apply_diff(self, diff: SnapshotDiff) -> None:
        """Take one refresh: highlight what was added, changed or closed, and move only the rows that changed."""
        now = diff.snapshot.taken_at
        self._now = now
        folder = self.folder
        folder.now = now
        if diff.first:
            self._gone.clear()
            self._flash.clear()
            self._key_cache.clear()
            self._sockets = diff.snapshot.sockets
            self._count_listeners()
            self._refold()
            self._rebuild()
            return
        # The snapshot's own dict, not a copy: nothing changes a snapshot's sockets once it is made (the wire's
        # DiffAssembler makes a new dict for a refresh that changes any), and a copy is 5 MB at 100,000 sockets.
        previous, self._sockets = self._sockets, diff.snapshot.sockets
        passes, cached = self._passes, self._key_cache
        gone: list[Socket] = []
        for sock in diff.removed:
            cached.pop(sock.key, None)  # a closed row that lingers makes its key again if it is rebuilt
            last = previous.get(sock.key) or sock
            self._count_listener(last, -1)
            gone.append(last)
        changed = zip(diff.changed_before, diff.changed, strict=True)
        added = ((previous.get(sock.key), sock) for sock in diff.added)
        for before, sock in chain(changed, added):
            cached.pop(sock.key, None)
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
        self._apply_rows(folder.take_changes(), now)
        unfiltered = self._unfiltered
        if unfiltered is not None and not unfiltered.feed(gone, (*diff.changed, *diff.added), now,
                                                          self._sort_key_for(unfiltered.column)):
            self._unfiltered = None

    def _count_listener(self, sock: Socket, step: int) -> None:
        if sock.state != "LISTEN":
            return
        count = self._listening.get(sock.local_port, 0) + step
        if count > 0:
            self._listening[sock.local_port] = count
        else:
            self._listening.pop(sock.local_port, None)

    def _apply_rows(self, changes: RowChanges, now: float) -> None:
        if too_much_churn(len(changes), len(self._sorted.rows)):
            self._mark(changes, now + self.flash_seconds)
            self._expire(now)
            self._rebuild()
            return
        selected = self._selected_key_now()
        live = self.folder.rows
        for row in changes.added:
            self._gone.pop(row.key, None)
            self._hide(row.key)
            self._show(row, live=True)
        for row in changes.changed:
            self._hide(row.key)
            self._show(row, live=True)
        for row in changes.hidden:
            self._hide(row.key)
        lingering = self.flash_seconds > 0
        for row in changes.removed:
            self._hide(row.key)
            if lingering:
                self._show(row, live=False)  # it lingers, marked, where it was
        self._mark(changes, now + self.flash_seconds)  # records the removed ones as gone
        for key in self._expire(now):
            if key not in live:
                self._hide(key)
        self._after_rows_changed(selected)

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
        self._now = now
        self._sockets = {sock.key: sock for sock in sockets}
        self._key_cache.clear()
        self._count_listeners()
        self._gone.clear()
        self._flash.clear()
        self._refold()
        self._rebuild()

    def show_first_screen(self, rows: list[Socket], now: float) -> None:
        """Show the top rows of a first refresh that is still on its way (model.FirstScreen), with no highlights;
        the refresh replaces them, the cursor staying on its connection."""
        self.load(rows, now)

    @property
    def filtered_counts(self) -> Counter[str]:
        """The shown rows' sockets by Socket.counter_name (closed rows lingering not counted)."""
        return self._sorted.counts

    @property
    def in_default_order(self) -> bool:
        """Sorted as a first screen's rows were picked (whether a filter is on is the caller's to know)."""
        return self.sort_column == DEFAULT_SORT and not self.sort_reverse

    def expire_highlights(self, now: float) -> None:
        """Called on a timer so highlights fade and closed rows go even when refreshes are slow.

        Ages keep the snapshot's own time: they tell how old a socket was when it was seen."""
        expired = self._expire(now)
        if not expired:
            return
        selected = self._selected_key_now()
        for key in expired:
            if key not in self.folder.rows:
                self._hide(key)
        self._after_rows_changed(selected)

    def _expire(self, now: float) -> list[SocketKey]:
        expired = [key for key, (_, until) in self._flash.items() if until <= now]
        for key in expired:
            del self._flash[key]
            self._gone.pop(key, None)
        return expired

    def clear_highlights(self) -> None:
        """Drop every highlight and lingering closed row now."""
        selected = self._selected_key_now()
        for key in list(self._gone):
            if key not in self.folder.rows:
                self._hide(key)
        self._gone.clear()
        self._flash.clear()
        self._painted.clear()
        self._after_rows_changed(selected)
        self.refresh()

    def set_filter(self, predicate: SocketPredicate | None) -> None:
        """Show only sockets for which `predicate` is true. The cursor stays on its row if that is still shown (a
        one-key filter narrows around it), else goes to the first row."""
        selected = self._selected_key_now()
        unfiltered = self._unfiltered
        if self._predicate is None and predicate is not None:
            unfiltered = self._stash_unfiltered()
        self._predicate = predicate
        self._selected_key = None
        self._cursor = 0
        # Closed rows linger only if they would match; a closed fold's members are gone, so it cannot be asked.
        passes = self._passes
        for key in [key for key, row in self._gone.items() if isinstance(row, FoldedSockets) or not passes(row)]:
            del self._gone[key]
        if predicate is None and unfiltered is not None and unfiltered.column == self.sort_column:
            self._unfiltered = None
            self.folder, self._sorted = unfiltered.folder, unfiltered.rows
            for key, row in self._gone.items():
                if key not in self.folder.rows:
                    self._show(row, live=False)
            self._widths_stale = True
            self.scroll_to(y=0, animate=False)
            self._after_rows_changed(selected if selected is not None and self._display_row_after_filter(selected)
                                     else None)
            return
        self._refold()
        self._unfiltered = unfiltered if predicate is not None else None
        self.scroll_to(y=0, animate=False)
        self._rebuild(selected if selected is not None and self._display_row_after_filter(selected) else None)

    def _stash_unfiltered(self) -> UnfilteredRows | None:
        """Set the unfiltered rows aside, and start the rows afresh."""
        column = self.sort_column
        if column not in SORT_KEYS:
            return None  # timer and tcp_info keys move on their own: such rows cannot be kept in order by diffs
        stash = UnfilteredRows.set_aside(column, self.folder, self._sorted)
        self.folder, self._sorted = self.folder.emptied(), SortedRows()
        return stash

    def _display_row_after_filter(self, key: SocketKey) -> bool:
        return key in self.folder.rows or self.folder.row_key_of(key) in self.folder.rows

    def _count_listeners(self) -> None:
        self._listening.clear()
        for sock in self._sockets.values():
            self._count_listener(sock, 1)

    def _passes(self, sock: Socket) -> bool:
        return self._predicate is None or self._predicate(sock)

    def _refold(self) -> None:
        """The rows again from every socket: after a new filter, folding switched, a fold opened."""
        self._unfiltered = None  # set_filter keeps it across its own refold
        predicate = self._predicate
        sockets = self._sockets.values()
        self.folder.reset(sockets if predicate is None else filter(predicate, sockets), self._now)

    # ------------------------------------------------------------------------------------------- folding

    @property
    def folding(self) -> bool:
        return self.folder.enabled

    def set_folding(self, on: bool) -> None:
        """Fold ownerless look-alike sockets (TIME_WAIT ...) into one row per group, or show each; the cursor stays
        on its connection (or on the fold it went into)."""
        selected = self._selected_key_now()
        self.folder.enabled = on
        self.folder.close_all()
        self._refold()
        if selected is not None and selected not in self.folder.rows:
            selected = self.folder.row_key_of(selected)
        self._rebuild(selected)

    def open_fold(self, row: Socket) -> bool:
        """Show a folded row's sockets one by one, the cursor on the first of them. False if it is no fold."""
        if not isinstance(row, FoldedSockets) or row.key not in self.folder.rows:
            return False
        members = self.folder.members(row)
        self.folder.open(row.group)
        self._refold()
        sort_key = self._sort_key_for(self.sort_column)
        first = min(members, key=sort_key, default=None)
        self._rebuild(first.key if first is not None else None)
        if first is not None and self.sort_reverse:
            self._rebuild(max(members, key=sort_key).key)
        return True

    def members_of(self, row: Socket) -> list[Socket]:
        """The sockets a row stands for (a fold's, or the row itself)."""
        return self.folder.members(row)

    def set_endpoint_formatter(self, formatter: EndpointFormatter | None) -> None:
        """Switch between numeric addresses (None) and names."""
        self._formatter = formatter or format_endpoint
        self._names_on = formatter is not None
        self.repaint_all()

    def repaint_all(self) -> None:
        self._painted.clear()
        self._update_widths()
        self.refresh()

    # --------------------------------------------------------------------------------------------- data out

    @property
    def empty_message(self) -> str:
        """What an empty table says instead of nothing."""
        if self._sorted.rows:
            return ""
        if self._predicate is not None:
            return "No socket matches the filter. Press Escape to clear it, / to change it."
        return "No sockets." if self._now else "Reading sockets…"

    @property
    def row_count(self) -> int:
        return len(self._sorted.rows)

    @property
    def rows(self) -> list[Socket]:
        """The rows in display order, lingering closed ones included (a copy: for tests and exports)."""
        return self._sorted.rows[::-1] if self.sort_reverse else list(self._sorted.rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def selected_socket(self) -> Socket | None:
        if 0 <= self._cursor < len(self._sorted.rows):
            return self._row_at(self._cursor)
        return None

    def _row_at(self, row: int) -> Socket:
        """The socket shown on display row `row` (0 = top)."""
        return self._sorted.rows[len(self._sorted.rows) - 1 - row] if self.sort_reverse else self._sorted.rows[row]

    def _display_row(self, key: SocketKey) -> int | None:
        index = self._sorted.index_of(key)
        if index is None:
            return None
        return len(self._sorted.rows) - 1 - index if self.sort_reverse else index

    @property
    def column_widths(self) -> list[int]:
        """The shown columns' widths in cells, left to right (a copy)."""
        return list(self._widths)

    def flash_of(self, key: SocketKey) -> str | None:
        """The highlight a row has now ("added", "changed", "removed"), or None."""
        flash = self._flash.get(key)
        return flash[0].value if flash else None

    def is_closed(self, sock: Socket) -> bool:
        """Whether a row is a lingering closed socket rather than a live one."""
        return sock.key in self._gone and sock.key not in self.folder.rows

    def row_text(self, index: int) -> str:
        """The plain text of one row as drawn (for tests and exports)."""
        return "".join(segment.text for segment in self._render_row(self._row_at(index), cursor=False))

    # -------------------------------------------------------------------------------------------- sorting

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in SORT_KEYS and column not in METRIC_COLUMNS and column != TIMER_KEY:
            raise ValueError(f"unknown column {column!r}")
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column = column
        self.sort_reverse = reverse

    def cycle_sort(self, step: int = 1) -> None:
        keys = [column.key for column in self._columns]
        index = keys.index(self.sort_column) if self.sort_column in keys else 0
        self.sort_by(keys[(index + step) % len(keys)], reverse=False)

    @property
    def sort_label(self) -> str:
        column = self.sort_column
        label = next((shown.label for shown in self._columns if shown.key == column), column)
        return f"{label} {'▼' if self.sort_reverse else '▲'}"

    # ------------------------------------------------------------------------------- tcp_info columns

    @property
    def metric_columns(self) -> list[str]:
        """The optional columns shown: TEXT_COLUMNS and METRIC_COLUMNS keys."""
        return list(self._extra_keys)

    def set_metric_columns(self, keys: Iterable[str]) -> None:
        """Show these optional columns (keys of TEXT_COLUMNS or METRIC_COLUMNS, unknown ones ignored) after the
        standard ones."""
        self._extra_keys = tuple(key for key in keys if key in TEXT_COLUMNS or key in METRIC_COLUMNS
                                 or key == TIMER_KEY)
        self._metric_columns = tuple(METRIC_COLUMNS[key] for key in self._extra_keys if key in METRIC_COLUMNS)
        self._columns = COLUMNS + tuple(
            TEXT_COLUMNS[key][0] if key in TEXT_COLUMNS
            else Column(key, "Timer", TIMER_WIDTH) if key == TIMER_KEY
            else Column(key, METRIC_COLUMNS[key].label, METRIC_COLUMNS[key].width, align_right=True)
            for key in self._extra_keys
        )
        if self.sort_column not in SORT_KEYS and self.sort_column not in self.metric_columns:
            self.sort_by(DEFAULT_SORT, reverse=False)
        self._rebuild(self._selected_key)
        self.repaint_all()

    def set_timers(self, lookup: TimerLookup | None) -> None:
        """Where the Timer column gets each socket's running timer (refreshed with `metrics_changed()`)."""
        self._timer_lookup = lookup
        self.metrics_changed()

    def _timer_of(self, sock: Socket) -> LiveTimer | None:
        return self._timer_lookup(sock.key) if self._timer_lookup is not None else None

    def set_metrics(self, lookup: MetricLookup | None) -> None:
        """Where the tcp_info columns get their numbers. Call `metrics_changed()` after each refresh of them."""
        self._metrics = lookup
        self.metrics_changed()

    def metrics_changed(self) -> None:
        """The counters moved (they do without any socket changing): re-sort if sorted by one, repaint rows."""
        if not self._metric_columns and TIMER_KEY not in self._extra_keys:
            return
        if self.sort_column in METRIC_COLUMNS or self.sort_column == TIMER_KEY:
            self._rebuild(self._selected_key_now())
        else:
            self._refresh_changed_lines()

    def _metric_value(self, sock: Socket, metric: MetricColumn) -> float | None:
        if self._metrics is None:
            return None
        info, rate = self._metrics(sock.key)
        return None if info is None else metric.value(info, rate)

    def _metric_texts(self, sock: Socket) -> tuple[str, ...]:
        texts = []
        for key in self._extra_keys:
            text_column = TEXT_COLUMNS.get(key)
            if text_column is not None:
                texts.append(printable(text_column[1](sock)) or "-")
                continue
            if key == TIMER_KEY:
                texts.append(timer_cell(self._timer_of(sock), self._now))
                continue
            metric = METRIC_COLUMNS[key]
            value = self._metric_value(sock, metric)
            texts.append("-" if value is None else metric.text(value))
        return tuple(texts)

    def validate_sort_column(self, column: str) -> str:
        # Remember the selected connection while the old order still says which row it is.
        self._selected_key_now()
        return column

    def validate_sort_reverse(self, reverse: bool) -> bool:
        self._selected_key_now()
        return reverse

    def watch_sort_column(self) -> None:
        self._unfiltered = None  # in another order
        self._resort()

    def watch_sort_reverse(self) -> None:
        self._resort()

    def _resort(self) -> None:
        self._rebuild(self._selected_key)
        self.post_message(self.SortChanged(self.sort_column, self.sort_reverse))

    # ------------------------------------------------------------------------------------------- rebuilding

    def _sort_key(self, sock: Socket) -> SortKey:
        return self._sort_key_for(self.sort_column)(sock)

    def _sort_key_for(self, column: str) -> Callable[[Socket], SortKey]:
        """The sort key of `column` (read once: `sort_column` is a reactive, slow to read 100,000 times)."""
        return functools.partial(self._sort_key_of, column)

    def _cached_sort_key(self) -> Callable[[Socket], SortKey]:
        """The sort key of the sorted column, from _key_cache where the column's keys depend on the socket alone
        (not the timer or tcp_info columns, which move on their own; not folds, whose count moves in place)."""
        column = self.sort_column
        make = self._sort_key_for(column)
        if column not in SORT_KEYS:
            return make
        cache = self._key_cache
        if self._key_cache_column != column or len(cache) > 2 * len(self._sockets) + 4096:
            cache.clear()  # another column's keys; or many closed rows' keys, which lingered and went
            self._key_cache_column = column
        cached = cache.get

        def sort_key(sock: Socket) -> SortKey:
            hit = cached(sock.key)
            if hit is not None:
                return hit
            made = make(sock)
            if type(sock) is Socket:  # a fold's count moves in place
                cache[sock.key] = made
            return made

        return sort_key

    def _sort_key_of(self, column: str, sock: Socket) -> SortKey:
        # Ties go by the endpoints, then the rest of the socket's (unique) key, so equal rows never swap places.
        if column in BYTES_COLUMNS:
            return bytes_sort_key(column, sock)
        endpoints = local_sort_bytes(sock)
        if column in SORT_KEYS:
            value: object = SORT_KEYS[column](sock)
        elif column == TIMER_KEY:
            # By deadline, which is by time left; no timer last.
            timer = self._timer_of(sock)
            value = (timer is None, timer.deadline if timer is not None else 0.0)
        else:
            # A socket without the number sorts below every socket with one (it is not a zero).
            number = self._metric_value(sock, METRIC_COLUMNS[column])
            value = (number is not None, number or 0.0)
        return (value, endpoints, sock.key)

    def _show(self, sock: Socket, live: bool) -> None:
        """Insert one row in sort order (the filter has let it through)."""
        self._sorted.insert(sock, self._sort_key(sock), live)
        self._widths_stale = self._widths_stale or self._widens(sock)

    def _hide(self, key: SocketKey) -> None:
        self._sorted.remove(key)

    def _selected_key_now(self) -> SocketKey | None:
        selected = self.selected_socket
        if selected is not None:
            self._selected_key = selected.key
        return self._selected_key

    def _rebuild(self, selected: SocketKey | None = None) -> None:
        """Filter and sort everything from scratch (first load, new filter, new sort order)."""
        selected = selected or self._selected_key_now()
        live = self.folder.rows
        rows = list(live.values())  # then the closed ones lingering
        live_count = len(rows)
        rows.extend(sock for key, sock in self._gone.items() if key not in live)
        self._sorted = SortedRows.sorted_from(rows, list(map(self._cached_sort_key(), rows)), live_count)
        self._widths_stale = True
        self._after_rows_changed(selected)

    def _after_rows_changed(self, selected: SocketKey | None) -> None:
        """Keep the cursor on its connection (or on the fold it went into), then repaint what needs it."""
        if selected is not None:
            row = self._display_row(selected)
            if row is None:
                # Folded since: follow it into its fold.
                selected = self.folder.row_key_of(selected)
                row = self._display_row(selected)
            if row is not None:
                self._cursor = row
                self._selected_key = selected
        self._cursor = max(0, min(self._cursor, len(self._sorted.rows) - 1))
        widths_changed = self._widths_stale and self._update_widths()
        self._widths_stale = False
        self._set_virtual_height()
        self._scroll_cursor_into_view()
        if widths_changed:
            self._painted.clear()
            self.refresh()
        else:
            self._refresh_changed_lines()

    def _set_virtual_height(self) -> None:
        """Tell the scrollbar how many rows there are, without the full repaint that assigning `virtual_size`
        (a layout reactive) causes: one socket opening off-screen must not resend every visible line."""
        size = Size(self.size.width, len(self._sorted.rows) + 1)
        if size != self.virtual_size:
            self.set_reactive(ScrollView.virtual_size, size)
            self._scroll_update(size)  # the scrollbar, and scroll_y clamped if the rows shrank

    def _widens(self, sock: Socket) -> bool:
        """Whether this row is wider than what the columns were last sized to (before any narrowing)."""
        local, remote, user, recv_q, send_q = self._content_widths
        return (
            self._address_width({(sock.local_ip, sock.proto)}) > local
            or self._address_width({(sock.remote_ip, sock.proto)}) > remote
            or min(16, len(sock.user)) > user
            or len(str(sock.recv_q)) > recv_q
            or len(str(sock.send_q)) > send_q
            or any(min(TEXT_COLUMN_MAX, len(TEXT_COLUMNS[key][1](sock))) > width
                   for key, width in self._text_widths.items())
        )

    def _update_widths(self) -> bool:
        """Size the address columns to their content and give the program column what is left, up to
        PROGRAM_COLUMN_MAX."""
        widths = [column.width for column in self._columns]
        if self._names_on:
            local_width = remote_width = NAMED_ADDRESS_WIDTH
        else:
            local_width = self._address_width({(s.local_ip, s.proto) for s in self._sorted.rows})
            remote_width = self._address_width({(s.remote_ip, s.proto) for s in self._sorted.rows})
        widths[3] = max(COLUMNS[3].width, local_width)
        widths[4] = max(COLUMNS[4].width, remote_width)
        users = {s.user for s in self._sorted.rows}
        widths[7] = max(COLUMNS[7].width, min(16, max((len(user) for user in users), default=0)))
        # Text columns (a container's name) take what their longest value needs, up to TEXT_COLUMN_MAX.
        for index, key in enumerate(self._extra_keys, start=len(COLUMNS)):
            if key in TEXT_COLUMNS:
                column, text_of = TEXT_COLUMNS[key]
                longest = max((len(text_of(s)) for s in self._sorted.rows), default=0)
                widths[index] = max(column.width, min(TEXT_COLUMN_MAX, longest))
        self._text_widths = {key: widths[index] for index, key in enumerate(self._extra_keys, start=len(COLUMNS))
                             if key in TEXT_COLUMNS}
        # A queue of megabytes must never be cut: a cropped number reads as a different number.
        widths[1] = max(COLUMNS[1].width, len(str(max((s.recv_q for s in self._sorted.rows), default=0))))
        widths[2] = max(COLUMNS[2].width, len(str(max((s.send_q for s in self._sorted.rows), default=0))))
        self._content_widths = (widths[3], widths[4], widths[7], widths[1], widths[2])
        available = self.scrollable_content_region.width
        # On a narrow terminal (80 columns over SSH) the owner matters more than the age, the user or the queues:
        # hide those, in this order, before the program column shrinks; then narrow the addresses.
        # The optional tcp_info columns go first, last one first: they were added, the standard ones are netstat.
        for index in (*range(len(widths) - 1, len(COLUMNS) - 1, -1), *HIDE_FIRST):
            if _line_width(widths) <= available:
                break
            widths[index] = 0
        for index, least in ((6, 12), (3, 15), (4, 15)):
            excess = _line_width(widths) - available
            if excess > 0:
                widths[index] = max(least, widths[index] - excess)
        spare = available - _line_width(widths)
        if spare > 0:
            widths[6] += min(spare, max(0, PROGRAM_COLUMN_MAX - widths[6]))
        changed = widths != self._widths
        self._widths = widths
        return changed

    @staticmethod
    def _address_width(addresses: set[tuple[str, str]]) -> int:
        longest = 0
        for ip, proto in addresses:
            if is_unix(proto):  # a path and an inode of up to 10 digits
                longest = max(longest, len(ip or "*") + 5)
            else:
                longest = max(longest, len(ip) + (2 if ":" in ip else 0))
        return min(ADDRESS_MAX_WIDTH, longest + 6)  # ":" and up to 5 port digits

    def on_resize(self, event: events.Resize) -> None:
        self._update_widths()
        self.virtual_size = Size(self.size.width, len(self._sorted.rows) + 1)
        self._painted.clear()
        self._scroll_cursor_into_view()

    # ------------------------------------------------------------------------------------------- cursor

    @property
    def _page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, row: int) -> None:
        if not self._sorted.rows:
            return
        row = max(0, min(row, len(self._sorted.rows) - 1))
        if row == self._cursor:
            return
        old = self._cursor
        self._cursor = row
        self._selected_key = self._row_at(row).key
        self._refresh_row(old)
        self._refresh_row(row)
        self._scroll_cursor_into_view()

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self._cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self._cursor + direction * self._page_height)

    def action_jump(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self._sorted.rows) - 1)

    def action_activate(self) -> None:
        sock = self.selected_socket
        if sock is not None and not self.open_fold(sock):
            self.post_message(self.Activated(self, sock))

    def action_toggle_folding(self) -> None:
        self.set_folding(not self.folding)
        self.post_message(self.FoldingChanged(self.folding))

    def _scroll_cursor_into_view(self) -> None:
        top = round(self.scroll_y)
        height = self._page_height
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=False)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x)
            if column is not None:
                self.sort_by(column)
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._sorted.rows):
            self.move_cursor(row)
            if event.chain == 2:
                self.action_activate()

    def _column_at(self, x: int) -> str | None:
        start = 0
        for column, width in zip(self._columns, self._widths, strict=True):
            if not width:
                continue
            if start <= x < start + width + 1:
                return column.key
            start += width + 1
        return None

    # ------------------------------------------------------------------------------------------ painting

    def _refresh_row(self, row: int) -> None:
        screen_y = row - round(self.scroll_y) + 1
        if 1 <= screen_y < self.size.height:
            self._painted.pop(screen_y, None)
            self.refresh(Region(0, screen_y, self.size.width, 1))

    def _refresh_changed_lines(self) -> None:
        """Repaint only the screen lines whose content differs from what was drawn there last."""
        top = round(self.scroll_y)
        height = self.size.height
        for screen_y in range(height):
            if screen_y == 0:
                signature: tuple[object, ...] = self._header_signature()
            else:
                signature = self._row_signature(top + screen_y - 1)
            if self._painted.get(screen_y) != signature:
                self.refresh(Region(0, screen_y, self.size.width, 1))

    def _header_signature(self) -> tuple[object, ...]:
        return ("header", self.sort_column, self.sort_reverse, tuple(self._widths))

    def _row_signature(self, row: int) -> tuple[object, ...]:
        if not 0 <= row < len(self._sorted.rows):
            return ("blank", row == 0 and self.empty_message)
        sock = self._row_at(row)
        flash = self._flash.get(sock.key)
        return (
            sock.key,
            sock.state,
            sock.recv_q,
            sock.send_q,
            sock.pid,
            sock.program,
            sock.user,
            format_age(self._now - sock.first_seen, sock.seen_since_start, self.coarse_ages),
            flash[0] if flash else None,
            row == self._cursor and self.has_focus,
            self._metric_texts(sock) if self._extra_keys else (),
            socket_count(sock),
        )

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        self._painted.clear()
        super().watch_scroll_y(old_value, new_value)

    def on_focus(self) -> None:
        self._refresh_row(self._cursor)

    def on_blur(self) -> None:
        self._refresh_row(self._cursor)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            self._painted[0] = self._header_signature()
            return self._render_header(width)
        row = round(self.scroll_y) + y - 1
        self._painted[y] = self._row_signature(row)
        if not 0 <= row < len(self._sorted.rows):
            if row == 0 and self.empty_message:
                style = self.get_component_rich_style("connection-table--dim")
                return Strip([Segment(fit(f" {self.empty_message}", width), style)])
            return Strip.blank(width, self.rich_style)
        segments = self._render_row(self._row_at(row), cursor=row == self._cursor and self.has_focus)
        return Strip(segments).adjust_cell_length(width, self.rich_style).crop(0, width)

    def _render_header(self, width: int) -> Strip:
        base = self.get_component_rich_style("connection-table--header")
        sorted_style = self.get_component_rich_style("connection-table--header-sorted")
        segments: list[Segment] = []
        arrow = "▼" if self.sort_reverse else "▲"
        for column, cell_width in zip(self._columns, self._widths, strict=True):
            if not cell_width:
                continue
            is_sorted = column.key == self.sort_column
            label = f"{column.label}{arrow}" if is_sorted else column.label
            if segments:
                segments.append(Segment(" ", base))
            style = sorted_style if is_sorted else base
            segments.append(Segment(fit(label, cell_width, column.align_right), style))
        return Strip(segments).adjust_cell_length(width, base).crop(0, width)

    def _render_row(self, sock: Socket, cursor: bool) -> list[Segment]:
        widths = self._widths
        flash = self._flash.get(sock.key)
        if cursor:
            row_style = self.get_component_rich_style("connection-table--cursor")
        elif flash is not None:
            row_style = self.get_component_rich_style(f"connection-table--{flash[0].value}")
        else:
            row_style = self.rich_style
        state_style = row_style if (cursor or flash) else row_style + self._state_style(sock)
        formatter = self._formatter
        cells = (
            (sock.proto, row_style),
            (str(sock.recv_q), row_style),
            (str(sock.send_q), row_style),
            (printable(formatter(sock.local_ip, sock.local_port, sock.proto)), row_style),
            (printable(formatter(sock.remote_ip, sock.remote_port, sock.proto)), row_style),
            (state_label(sock), state_style),
            (owner_text(sock), row_style),
            (printable(sock.user) or "-", row_style),
            (format_age(self._now - sock.first_seen, sock.seen_since_start, self.coarse_ages), row_style),
            *((text, row_style) for text in self._metric_texts(sock)),
        )
        segments: list[Segment] = []
        space = Segment(" ", row_style)
        for (text, style), column, width in zip(cells, self._columns, widths, strict=True):
            if not width:
                continue
            if segments:
                segments.append(space)
            segments.append(Segment(fit(text, width, column.align_right), style))
        return segments

    def _state_style(self, sock: Socket) -> Style:
        state = sock.state
        if state == "LISTEN":
            name = "listen"
        elif state == "ESTABLISHED":
            name = "established"
        elif state in ("SYN_SENT", "SYN_RECV", "NEW_SYN_RECV"):
            name = "opening"
        elif state in ("TIME_WAIT", "CLOSE_WAIT", "FIN_WAIT1", "FIN_WAIT2", "LAST_ACK", "CLOSING"):
            name = "waiting"
        else:
            name = "dim"
        return self.get_component_rich_style(f"connection-table--{name}", partial=True)
