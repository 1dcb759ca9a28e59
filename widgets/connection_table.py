"""The connection table: draws the rows collectors/session/connection_rows.py keeps (every socket, sorted,
filtered, folded), with TCPView-style highlights, and turns keys and clicks into what those rows are asked.

Built on Textual's Line API (a `ScrollView` that renders one line at a time from a plain sorted list) rather than
`DataTable`: with 50,000 rows only the visible lines are ever rendered, and a refresh repaints only the screen
lines whose content changed, which is what crosses a slow SSH link.

Long, and one thing: the columns (which to show, how wide on this terminal, the optional tcp_info ones), the cursor
and scrolling, and the painting of one line all answer to what the screen shows now.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from netscope.collectors.model import LiveTimer, SnapshotDiff, Socket, SocketKey
from netscope.collectors.row_order import DEFAULT_SORT
from netscope.collectors.session.connection_rows import SORT_KEYS, ConnectionRows, SocketPredicate
from netscope.collectors.session.folding import socket_count
from netscope.collectors.session.row_widths import TEXT_VALUES, ContentWidths
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
NAMED_ADDRESS_WIDTH = 32  # host names vary too much to size columns on; crop long ones
# What PID/Program can need (a 7-digit PID, "/", a 15-character command name): past it, spare width stays at the
# right edge, so that on a wide terminal the user and age are not a screen's width away from the program.
PROGRAM_COLUMN_MAX = 24
# A big first load (first_load.py) is made a few parts a turn of the event loop: parts until LOAD_STEP_BUDGET
# seconds have gone (a stage that costs little, such as counting listeners, takes one turn, not one a part), then a
# timer, so keys are answered between turns (call_later ran every part from one turn of the App's queue when the
# insights were cut so).
LOAD_STEP_BUDGET = 0.015
LOAD_STEP_GAP = 0.001
# The optional text columns (their values: connection_rows.TEXT_VALUES).
TEXT_COLUMNS: dict[str, Column] = {
    "container": Column("container", "Container", 9),
}


def _line_width(widths: list[int]) -> int:
    """Cells a row takes: the shown columns (width > 0) and one space between each two."""
    shown = [width for width in widths if width]
    return sum(shown) + len(shown) - 1


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

    class Loaded(Message):
        """A first refresh or a new filter made into rows in parts (apply_diff, set_filter) is shown."""

    sort_column: reactive[str] = reactive(DEFAULT_SORT, init=False)
    sort_reverse: reactive[bool] = reactive(False, init=False)

    def __init__(self, *, flash_seconds: float = 3.0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._rows = ConnectionRows(flash_seconds)
        self._rows.live_sort_value = self._live_sort_value
        self.coarse_ages = False  # ages in minutes only, even in a socket's first minute (the low-bandwidth mode)
        self._columns: tuple[Column, ...] = COLUMNS
        self._extra_keys: tuple[str, ...] = ()  # the optional columns shown, text and tcp_info, in order
        self._metric_columns: tuple[MetricColumn, ...] = ()
        self._metrics: MetricLookup | None = None
        self._timer_lookup: TimerLookup | None = None  # not `_timers`: Textual's MessagePump has one
        self._widths: list[int] = [column.width for column in COLUMNS]
        self._formatter: EndpointFormatter = format_endpoint
        self._names_on = False
        self._painted: dict[int, tuple[object, ...]] = {}  # screen line -> signature of what was drawn there
        self._loading_said = True  # a first refresh made into rows in parts: Loaded posted
        self._to_top_when_loaded = False  # a filter's rows made in parts: scrolled to the top when they show

    @property
    def flash_seconds(self) -> float:
        """How long added, changed and closed rows stay marked (0: not at all, the low-bandwidth mode)."""
        return self._rows.flash_seconds

    @flash_seconds.setter
    def flash_seconds(self, seconds: float) -> None:
        self._rows.flash_seconds = seconds

    # ----------------------------------------------------------------------------------------------- data in

    def apply_diff(self, diff: SnapshotDiff) -> None:
        """Take one refresh: highlight what was added, changed or closed, and move only the rows that changed.
        A big first refresh is made into rows a part at a time, a timer between parts so that keys are answered
        (the rows shown until then stay, and refreshes meanwhile wait for it); Loaded says when it shows."""
        was_loading = self._rows.loading
        self._rows.apply_diff(diff, in_parts=True)  # queued after the load, if one is under way
        if was_loading:
            return
        if self._rows.loading:
            self._load_in_steps()
            return
        self._after_rows_changed()

    def _load_in_steps(self, to_top: bool = False) -> None:
        """Run the rows' load a few parts a turn; `to_top`: scroll to the top when it shows."""
        self._loading_said = False
        self._to_top_when_loaded = to_top
        self.set_timer(LOAD_STEP_GAP, self._load_step)

    @property
    def loading_rows(self) -> bool:
        """Whether a first refresh or a new filter is still being made into rows (apply_diff, set_filter)."""
        return self._rows.loading

    @property
    def filtering_rows(self) -> bool:
        """Whether a new filter's rows are still being made, or wait for the first refresh (set_filter): the rows
        shown are from before it."""
        return self._rows.filtering

    def finish_loading(self) -> None:
        """Show a first refresh being made into rows now, whole (for what needs every row: an export)."""
        if self._rows.loading:
            self._rows.finish_loading()
            self._after_rows_changed()

    def _load_step(self) -> None:
        if not self._rows.loading:
            return  # finished by something that changed the rows meanwhile
        started = time.perf_counter()
        while self._rows.load_step():
            if time.perf_counter() - started >= LOAD_STEP_BUDGET:
                self.set_timer(LOAD_STEP_GAP, self._load_step)
                return
        self._after_rows_changed()

    def load(self, sockets: Iterable[Socket], now: float) -> None:
        """Show a fixed set of sockets (the details view), with no highlights."""
        self._rows.load(sockets, now)
        self._after_rows_changed()

    def show_first_screen(self, rows: list[Socket], now: float) -> None:
        """Show the top rows of a first refresh that is still on its way (model.FirstScreen), with no highlights;
        the refresh replaces them, the cursor staying on its connection. A filter typed before the refresh comes
        leaves them (`filtering_rows`), and the refresh is made into rows under it."""
        self._rows.show_first_screen(rows, now)
        self._after_rows_changed()

    @property
    def filter_on(self) -> bool:
        """Whether the rows shown are filtered."""
        return self._rows.filter_on

    @property
    def filtered_counts(self) -> Counter[str]:
        """The shown rows' sockets by Socket.counter_name (closed rows lingering not counted)."""
        return self._rows.counts

    @property
    def in_default_order(self) -> bool:
        """Sorted as a first screen's rows were picked (whether a filter is on is the caller's to know)."""
        return self.sort_column == DEFAULT_SORT and not self.sort_reverse

    def expire_highlights(self, now: float) -> None:
        """Called on a timer so highlights fade and closed rows go even when refreshes are slow.

        Ages keep the snapshot's own time: they tell how old a socket was when it was seen."""
        if self._rows.expire(now):
            self._after_rows_changed()

    def clear_highlights(self) -> None:
        """Drop every highlight and lingering closed row now."""
        self._rows.clear_highlights()
        self._painted.clear()
        self._after_rows_changed()
        self.refresh()

    def set_filter(self, predicate: SocketPredicate | None) -> None:
        """Show only sockets for which `predicate` is true. The cursor stays on its row if that is still shown (a
        one-key filter narrows around it), else goes to the first row. Over many sockets the rows are made a part
        at a time, as a big first refresh's are (`filtering_rows` meanwhile); Loaded says when they show."""
        was_loading = self._rows.loading
        self._rows.set_filter(predicate, in_parts=True)
        if self._rows.loading:
            if was_loading:  # its steps are under way: they go on with this filter's
                self._to_top_when_loaded = True
            else:
                self._load_in_steps(to_top=True)
            return
        self.scroll_to(y=0, animate=False)
        self._after_rows_changed()

    # ------------------------------------------------------------------------------------------- folding

    @property
    def folding(self) -> bool:
        return self._rows.folding

    def set_folding(self, on: bool) -> None:
        """Fold ownerless look-alike sockets (TIME_WAIT ...) into one row per group, or show each; the cursor stays
        on its connection (or on the fold it went into)."""
        self._rows.set_folding(on)
        self._after_rows_changed()

    def open_fold(self, row: Socket) -> bool:
        """Show a folded row's sockets one by one, the cursor on the first of them. False if it is no fold."""
        if not self._rows.open_fold(row):
            return False
        self._after_rows_changed()
        return True

    def members_of(self, row: Socket) -> list[Socket]:
        """The sockets a row stands for (a fold's, or the row itself)."""
        return self._rows.members_of(row)

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
        if self._rows.row_count:
            return ""
        if self._rows.filter_on:
            return "No socket matches the filter. Press Escape to clear it, / to change it."
        return "No sockets." if self._rows.now else "Reading sockets…"

    @property
    def row_count(self) -> int:
        return self._rows.row_count

    @property
    def rows(self) -> list[Socket]:
        """The rows in display order, lingering closed ones included (a copy: for tests and exports)."""
        return self._rows.rows

    @property
    def cursor_row(self) -> int:
        return self._rows.cursor

    @property
    def selected_socket(self) -> Socket | None:
        return self._rows.selected_socket

    @property
    def column_widths(self) -> list[int]:
        """The shown columns' widths in cells, left to right (a copy)."""
        return list(self._widths)

    def flash_of(self, key: SocketKey) -> str | None:
        """The highlight a row has now ("added", "changed", "removed"), or None."""
        flash = self._rows.flash_of(key)
        return flash.value if flash else None

    def is_closed(self, sock: Socket) -> bool:
        """Whether a row is a lingering closed socket rather than a live one."""
        return self._rows.is_closed(sock)

    def row_text(self, index: int) -> str:
        """The plain text of one row as drawn (for tests and exports)."""
        return "".join(segment.text for segment in self._render_row(self._rows.row_at(index), cursor=False))

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

    def validate_sort_column(self, column: str) -> str:
        # Remember the selected connection while the old order still says which row it is.
        self._rows.remember_selected()
        return column

    def validate_sort_reverse(self, reverse: bool) -> bool:
        self._rows.remember_selected()
        return reverse

    def watch_sort_column(self) -> None:
        self._resort()

    def watch_sort_reverse(self) -> None:
        self._resort()

    def _resort(self) -> None:
        self._rows.set_sort(self.sort_column, self.sort_reverse)
        self._after_rows_changed()
        self.post_message(self.SortChanged(self.sort_column, self.sort_reverse))

    def _live_sort_value(self, column: str, sock: Socket) -> object:
        """The order of a column whose numbers move on their own."""
        if column == TIMER_KEY:
            # By deadline, which is by time left; no timer last.
            timer = self._timer_of(sock)
            return (timer is None, timer.deadline if timer is not None else 0.0)
        # A socket without the number sorts below every socket with one (it is not a zero).
        number = self._metric_value(sock, METRIC_COLUMNS[column])
        return (number is not None, number or 0.0)

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
            TEXT_COLUMNS[key] if key in TEXT_COLUMNS
            else Column(key, "Timer", TIMER_WIDTH) if key == TIMER_KEY
            else Column(key, METRIC_COLUMNS[key].label, METRIC_COLUMNS[key].width, align_right=True)
            for key in self._extra_keys
        )
        if self.sort_column not in SORT_KEYS and self.sort_column not in self.metric_columns:
            self.sort_by(DEFAULT_SORT, reverse=False)
        self._rows.rebuild(self._rows.selected_key)
        self._after_rows_changed()
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
        if self._rows.sorts_live:
            self._rows.rebuild(self._rows.remember_selected())
            self._after_rows_changed()
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
            if key in TEXT_VALUES:
                texts.append(printable(TEXT_VALUES[key](sock)) or "-")
                continue
            if key == TIMER_KEY:
                texts.append(timer_cell(self._timer_of(sock), self._rows.now))
                continue
            metric = METRIC_COLUMNS[key]
            value = self._metric_value(sock, metric)
            texts.append("-" if value is None else metric.text(value))
        return tuple(texts)

    # ------------------------------------------------------------------------------------------- layout

    def _after_rows_changed(self) -> None:
        """The rows moved (the cursor already back on its connection): size, scroll and repaint what needs it."""
        if not self._loading_said and not self._rows.loading:
            self._loading_said = True
            if self._to_top_when_loaded:
                self.scroll_to(y=0, animate=False)
            self.post_message(self.Loaded())
        widths_changed = self._rows.widths_stale and self._update_widths()
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
        size = Size(self.size.width, self._rows.row_count + 1)
        if size != self.virtual_size:
            self.set_reactive(ScrollView.virtual_size, size)
            self._scroll_update(size)  # the scrollbar, and scroll_y clamped if the rows shrank

    def _update_widths(self) -> bool:
        """Size the address columns to their content and give the program column what is left, up to
        PROGRAM_COLUMN_MAX."""
        widths = [column.width for column in self._columns]
        text_at = {key: index for index, key in enumerate(self._extra_keys, start=len(COLUMNS))
                   if key in TEXT_COLUMNS}
        needs = self._rows.measure(ContentWidths(
            local=COLUMNS[3].width, remote=COLUMNS[4].width, user=COLUMNS[7].width,
            recv_q=COLUMNS[1].width, send_q=COLUMNS[2].width,
            texts=tuple((key, TEXT_COLUMNS[key].width) for key in text_at),
        ))
        widths[3], widths[4] = (NAMED_ADDRESS_WIDTH,) * 2 if self._names_on else (needs.local, needs.remote)
        widths[7], widths[1], widths[2] = needs.user, needs.recv_q, needs.send_q
        for key, width in needs.texts:
            widths[text_at[key]] = width
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

    def on_resize(self, event: events.Resize) -> None:
        self._update_widths()
        self.virtual_size = Size(self.size.width, self._rows.row_count + 1)
        self._painted.clear()
        self._scroll_cursor_into_view()

    # ------------------------------------------------------------------------------------------- cursor

    @property
    def _page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, row: int) -> None:
        old = self._rows.move_cursor(row)
        if old is None:
            return
        self._refresh_row(old)
        self._refresh_row(self._rows.cursor)
        self._scroll_cursor_into_view()

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self._rows.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self._rows.cursor + direction * self._page_height)

    def action_jump(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else self._rows.row_count - 1)

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
        cursor = self._rows.cursor
        if cursor < top:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= top + height:
            self.scroll_to(y=cursor - height + 1, animate=False)

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
        if 0 <= row < self._rows.row_count:
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
        if not 0 <= row < self._rows.row_count:
            return ("blank", row == 0 and self.empty_message)
        sock = self._rows.row_at(row)
        return (
            sock.key,
            sock.state,
            sock.recv_q,
            sock.send_q,
            sock.pid,
            sock.program,
            sock.user,
            format_age(self._rows.now - sock.first_seen, sock.seen_since_start, self.coarse_ages),
            self._rows.flash_of(sock.key),
            row == self._rows.cursor and self.has_focus,
            self._metric_texts(sock) if self._extra_keys else (),
            socket_count(sock),
        )

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        self._painted.clear()
        super().watch_scroll_y(old_value, new_value)

    def on_focus(self) -> None:
        self._refresh_row(self._rows.cursor)

    def on_blur(self) -> None:
        self._refresh_row(self._rows.cursor)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            self._painted[0] = self._header_signature()
            return self._render_header(width)
        row = round(self.scroll_y) + y - 1
        self._painted[y] = self._row_signature(row)
        if not 0 <= row < self._rows.row_count:
            if row == 0 and self.empty_message:
                style = self.get_component_rich_style("connection-table--dim")
                return Strip([Segment(fit(f" {self.empty_message}", width), style)])
            return Strip.blank(width, self.rich_style)
        segments = self._render_row(self._rows.row_at(row), cursor=row == self._rows.cursor and self.has_focus)
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
        flash = self._rows.flash_of(sock.key)
        if cursor:
            row_style = self.get_component_rich_style("connection-table--cursor")
        elif flash is not None:
            row_style = self.get_component_rich_style(f"connection-table--{flash.value}")
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
            (format_age(self._rows.now - sock.first_seen, sock.seen_since_start, self.coarse_ages), row_style),
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
