"""The connection table's rows, Textual-free (collectors/session/connection_rows.py): real loopback sockets read by
the real collector, their diffs applied, filtered, sorted, with the cursor kept on its connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import ChangeKind, SnapshotDiff, Socket
from netscope.collectors.row_order import BYTES_COLUMNS, compiled_bytes_sort_key
from netscope.collectors.session import connection_rows
from netscope.collectors.session.connection_rows import ConnectionRows
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.folding import FoldedSockets, socket_count
from netscope.collectors.session.row_widths import ContentWidths


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    # An address of its own, so that a filter finds only these sockets whatever else runs on the machine.
    server.bind(("127.77.0.1", 0))
    server.listen(16)
    yield server
    server.close()


def connect(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return client, accepted


def held_beside_a_fold(listener: socket.socket) -> list[socket.socket]:
    """The ends of 25 connections to `listener`, held open; and five more closed at once, leaving five TIME_WAIT
    sockets no process owns, alike: one fold."""
    pairs = [connect(listener) for _ in range(30)]
    for client, accepted in pairs[:5]:
        client.close()
        accepted.close()
    return [end for pair in pairs[5:] for end in pair]


def test_rows_of_real_sockets_follow_their_filter_order_and_cursor_across_refreshes(
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    held = [end for _ in range(3) for end in connect(listener)]
    collector = ConnectionCollector(interval=1.0)
    rows = ConnectionRows(flash_seconds=3.0)
    try:
        rows.apply_diff(collector.next_diff())
        rows.set_filter(parse_filter(f":{port} 127.77.0.1").matches)
        # The listener and both ends of three connections.
        assert rows.row_count == 7
        assert {(row.state, port in (row.local_port, row.remote_port)) for row in rows.rows} == {
            ("LISTEN", True), ("ESTABLISHED", True)}
        assert rows.counts["ESTABLISHED"] == 6 and rows.counts["LISTEN"] == 1

        # The cursor on the last connection's client end; then rows sort before it (youngest first by age).
        rows.set_sort("age", reverse=False)
        last_client = held[-2].getsockname()[1]
        target = next(i for i, row in enumerate(rows.rows) if row.local_port == last_client)
        rows.move_cursor(target)
        assert rows.cursor == target
        chosen = rows.selected_socket
        assert chosen is not None
        time.sleep(0.05)  # a later first-seen time, so the new ones are younger
        held += [end for _ in range(2) for end in connect(listener)]
        rows.apply_diff(collector.next_diff())
        assert rows.row_count == 11
        selected = rows.selected_socket
        assert selected is not None and selected.key == chosen.key
        assert rows.cursor == rows.display_row(chosen.key) and rows.cursor >= 4  # four younger rows above it
        added = [row for row in rows.rows if rows.flash_of(row.key) is ChangeKind.ADDED]
        assert len(added) == 4

        # A closed connection's server end lingers, marked, where it was (its client end is in TIME_WAIT); the
        # cursor does not move off its own connection.
        gone_port = held[0].getsockname()[1]
        held[0].close()
        held[1].close()
        rows.apply_diff(collector.next_diff())
        closed = [row for row in rows.rows if rows.is_closed(row)]
        assert [(row.local_port, row.remote_port) for row in closed] == [(port, gone_port)]
        assert all(rows.flash_of(row.key) is ChangeKind.REMOVED for row in closed)
        assert rows.selected_socket is not None and rows.selected_socket.key == chosen.key
        rows.expire(time.time() + 10)
        assert not any(rows.is_closed(row) for row in rows.rows)

        # Widths are what the rows need, no less than the floors asked for.
        widths = rows.measure(ContentWidths(local=15, remote=15, user=8, recv_q=6, send_q=6))
        assert widths.local == max(15, max(len(row.local_ip) for row in rows.rows) + 6)  # ":" and 5 digits
        assert not rows.widths_stale

        # Escape: every socket again, the cursor still on its connection.
        rows.set_filter(None)
        assert rows.row_count > 7
        assert rows.selected_socket is not None and rows.selected_socket.key == chosen.key
    finally:
        collector.close()
        for end in held:
            end.close()


@pytest.mark.parametrize("filtered", [False, True])
def test_a_refresh_that_moves_most_rows_sorts_them_by_their_new_keys(
    listener: socket.socket, filtered: bool,
) -> None:
    """A refresh that changes more rows than are worth moving one by one sorts them all again, taking the keys it
    already holds for the sockets that did not change: never those of the ones that did. Sorted by Recv-Q, data
    waiting at 140 sockets moves them below the idle ones; the result is what sorting from scratch gives."""
    port = listener.getsockname()[1]
    held = [end for _ in range(70) for end in connect(listener)]
    mine = parse_filter(f":{port} 127.77.0.1")
    # The kernel is asked for these sockets alone: 141 rows, of which 140 change.
    collector = ConnectionCollector(interval=1.0, query=mine.kernel_query())
    rows = ConnectionRows()
    try:
        rows.apply_diff(collector.next_diff())
        rows.set_sort("recv_q", reverse=False)
        if filtered:
            rows.set_filter(mine.matches)
        for end in held:
            end.sendall(b"x" * 7)
        deadline = time.monotonic() + 5
        while True:
            diff = collector.next_diff()
            if len(diff.changed) >= 140 or time.monotonic() > deadline:
                break
        assert len(diff.changed) >= 140 and len(diff.snapshot.sockets) == 141
        rows.apply_diff(diff)
        fresh = ConnectionRows()
        fresh.load(diff.snapshot.sockets.values(), diff.snapshot.taken_at)
        fresh.set_sort("recv_q", reverse=False)
        if filtered:
            fresh.set_filter(mine.matches)
        assert [row.key for row in rows.rows] == [row.key for row in fresh.rows]
        waiting = [row for row in rows.rows if mine.matches(row) and row.state == "ESTABLISHED"]
        assert len(waiting) == 140 and all(row.recv_q == 7 for row in waiting)
        if filtered:  # and back to every socket
            rows.set_filter(None)
            fresh.set_filter(None)
            assert [row.key for row in rows.rows] == [row.key for row in fresh.rows]
    finally:
        collector.close()
        for end in held:
            end.close()


def test_a_socket_and_a_fold_survive_a_copy_and_a_pickle_whole() -> None:
    """Socket and FoldedSockets are plain slotted classes: a copy must keep every field, the shared ones and a
    fold's count included."""
    import copy
    import pickle

    from netscope.collectors.model import Socket
    from netscope.collectors.session.folding import FoldedSockets

    sock = Socket("tcp", "192.0.2.1", 443, "198.51.100.7", 50001, "ESTABLISHED", 1, 2, 77, uid=5, user="www",
                  pid=3, program="nginx", first_seen=9.0, pid_start=4.5)
    fold = FoldedSockets(("tcp", "TIME_WAIT", "192.0.2.1", 443, "198.51.100.7", 0), 0, 0, 7, 1.0)
    for original in (sock, fold):
        for made in (copy.copy(original), pickle.loads(pickle.dumps(original))):
            assert type(made) is type(original) and made == original and made.as_dict() == original.as_dict()
            assert made.key == original.key and made.counter_name == original.counter_name
    assert pickle.loads(pickle.dumps(fold)).count == 7


@pytest.mark.parametrize(("column", "in_place", "compiled"), [
    ("recv_q", False, True), ("program", False, True), ("program", True, True), ("program", False, False),
    ("remote", False, True),
])
def test_rows_moved_one_by_one_are_the_rows_sorted_afresh(
    listener: socket.socket, column: str, in_place: bool, compiled: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refresh of a few changes moves only their rows, each found by the sort key of the version it replaces
    (made again from that version: no table of every row's key is kept), and the rows are held as differences from
    the snapshot's dict. Data arriving moves a row in Recv-Q order; connections close and open while a filter is
    on, whose unfiltered rows are kept up to date aside; after each refresh, and after Escape, the rows are those a
    table loaded from the same sockets shows. Also from a source that changes its dict in place (the worker's
    collector does, for itself), which the rows cannot be held over; and by program or address with the compiled
    sort keys, made on the way by each bisection, or without them, held for each row."""
    if compiled and column in BYTES_COLUMNS and compiled_bytes_sort_key(column) is None:
        pytest.skip("the compiled module is not built here")
    if not compiled:
        monkeypatch.setattr(connection_rows, "compiled_bytes_sort_key", lambda column: None)
    port = listener.getsockname()[1]
    held = [end for _ in range(12) for end in connect(listener)]
    mine = parse_filter(f":{port} 127.77.0.1")
    collector = ConnectionCollector(interval=1.0, query=mine.kernel_query(), update_in_place=in_place)
    rows = ConnectionRows(flash_seconds=0)  # closed rows go at once, as in a table loaded afresh

    def established(sock: Socket) -> bool:
        return sock.state == "ESTABLISHED"

    def refresh(filtered: bool) -> SnapshotDiff:
        time.sleep(0.05)
        diff = collector.next_diff()
        assert len(diff.changed) + len(diff.added) + len(diff.removed) < len(diff.snapshot.sockets) // 4 + 64
        rows.apply_diff(diff)
        fresh = ConnectionRows(flash_seconds=0)
        fresh.load(diff.snapshot.sockets.values(), diff.snapshot.taken_at)
        fresh.set_sort(column, reverse=False)
        if filtered:
            fresh.set_filter(established)
        assert [row.key for row in rows.rows] == [row.key for row in fresh.rows]
        assert [row.recv_q for row in rows.rows] == [row.recv_q for row in fresh.rows]
        assert rows.counts == fresh.counts
        return diff

    try:
        rows.apply_diff(collector.next_diff())
        rows.set_sort(column, reverse=False)
        for step, end in enumerate(held[:6]):
            end.sendall(b"x" * (step + 1))
        refresh(filtered=False)
        assert any(row.recv_q for row in rows.rows)
        rows.set_filter(established)
        for end in held[6:8]:
            end.sendall(b"yy")
        held[0].sendall(b"zzz")
        held[8].close()
        held[9].close()
        held += connect(listener)
        refresh(filtered=True)
        held[10].close()
        last = refresh(filtered=True)
        rows.set_filter(None)  # Escape: the rows kept aside come back
        fresh = ConnectionRows(flash_seconds=0)
        fresh.load(last.snapshot.sockets.values(), last.snapshot.taken_at)
        fresh.set_sort(column, reverse=False)
        assert [row.key for row in rows.rows] == [row.key for row in fresh.rows]
        assert rows.counts == fresh.counts
    finally:
        collector.close()
        for end in held:
            end.close()


def _same_rows(rows: ConnectionRows, reference: ConnectionRows) -> None:
    assert [row.key for row in rows.rows] == [row.key for row in reference.rows]
    assert [socket_count(row) for row in rows.rows] == [socket_count(row) for row in reference.rows]
    assert rows.counts == reference.counts
    floors = ContentWidths(local=1, remote=1, user=1, recv_q=1, send_q=1, texts=(("container", 1),))
    assert rows.measure(floors) == reference.measure(floors)
    for row in rows.rows:
        assert [sock.key for sock in rows.members_of(row)] == [sock.key for sock in reference.members_of(row)]


@pytest.mark.parametrize(("column", "filtered", "compiled"), [
    ("program", False, True), ("program", False, False), ("age", False, True), ("local", True, True),
    ("rtt", False, True),
])
def test_a_first_refresh_made_into_rows_in_parts_is_the_rows_made_at_once(
    listener: socket.socket, column: str, filtered: bool, compiled: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big first refresh is made into rows a few sockets a step (first_load.py), the rows shown before staying
    until the last step: the rows, their folds, counts and widths are then those made at once and those a table
    loaded from the same sockets shows; by the compiled keys and without them, by a column whose keys are held by
    socket (rtt: a tcp_info column), and under a filter. A refresh after it, a refresh or a filter arriving
    between steps (at once, or queued after the load), and folding switched between steps, give what they give
    after a load made at once."""
    if compiled and compiled_bytes_sort_key("program") is None:
        pytest.skip("the compiled module is not built here")
    if not compiled:
        monkeypatch.setattr(connection_rows, "compiled_bytes_sort_key", lambda column: None)
    port = listener.getsockname()[1]
    held = held_beside_a_fold(listener)
    mine = parse_filter(f":{port} 127.77.0.1")
    collector = ConnectionCollector(interval=1.0, query=mine.kernel_query())

    def established(sock: Socket) -> bool:
        return sock.state == "ESTABLISHED"

    def made(first: SnapshotDiff, part: int | None) -> ConnectionRows:
        rows = ConnectionRows(flash_seconds=3.0)
        rows.set_sort(column, reverse=False)
        if filtered:
            rows.set_filter(established)
        if part is None:
            rows.apply_diff(first)
            return rows
        rows.load_part = part
        rows.apply_diff(first, in_parts=True)
        return rows

    try:
        time.sleep(0.05)
        first = collector.next_diff()
        sockets = len(first.snapshot.sockets)
        at_once = made(first, None)
        assert any(isinstance(row, FoldedSockets) for row in at_once.rows) is not filtered
        loaded = ConnectionRows(flash_seconds=3.0)  # the rows a table loads: another way of making them
        loaded.load(first.snapshot.sockets.values(), first.snapshot.taken_at)
        loaded.set_sort(column, reverse=False)
        if filtered:
            loaded.set_filter(established)
        _same_rows(at_once, loaded)

        in_parts = made(first, 7)
        assert in_parts.loading and in_parts.row_count == 0  # the rows before (none) stay meanwhile
        steps = 1
        while in_parts.load_step():
            steps += 1
            assert in_parts.row_count == 0
        assert not in_parts.loading and steps > sockets // 7
        _same_rows(in_parts, at_once)

        # What changes the rows finishes a load first: a refresh, a filter, folding switched.
        interrupted = [made(first, 7) for _ in range(4)]
        for rows in interrupted:
            rows.load_step()
            rows.load_step()
        held[0].close()
        held[1].close()
        held += connect(listener)
        time.sleep(0.05)
        second = collector.next_diff()
        for rows in (in_parts, at_once, interrupted[0]):
            rows.apply_diff(second)
        _same_rows(in_parts, at_once)
        _same_rows(interrupted[0], at_once)
        queued = interrupted[3]
        queued.apply_diff(second, in_parts=True)  # as the table gives it: applied once the load is done
        assert queued.loading and queued.row_count == 0
        while queued.load_step():
            pass
        _same_rows(queued, at_once)
        interrupted[1].set_filter(None)
        reference = made(first, None)
        reference.set_filter(None)
        _same_rows(interrupted[1], reference)
        interrupted[2].set_folding(False)
        reference = made(first, None)
        reference.set_folding(False)
        _same_rows(interrupted[2], reference)

        # A filter typed over a first screen (as the table gives it: in parts) leaves it, and its refresh is made
        # under the filter. One typed between steps makes the refresh again under it, from its first step: the
        # first screen stays meanwhile, its cursor's row kept if the filter shows it, a refresh meanwhile applied
        # after; a second filter typed meanwhile starts it again under that one.
        def on_screen(rows: ConnectionRows) -> None:
            rows.show_first_screen(at_once.rows[:6], first.snapshot.taken_at)  # before its refresh
            rows.move_cursor(2)

        wanted, unwanted = (None, established) if filtered else (established, None)
        refiltered = ConnectionRows(flash_seconds=3.0)
        refiltered.set_sort(column, reverse=False)
        if filtered:
            refiltered.set_filter(established)
        on_screen(refiltered)
        screen = [row.key for row in refiltered.rows]
        refiltered.set_filter(wanted, in_parts=True)
        assert [row.key for row in refiltered.rows] == screen and refiltered.filtering and not refiltered.loading
        refiltered.load_part = 7
        refiltered.apply_diff(first, in_parts=True)
        assert refiltered.filtering
        refiltered.load_step()
        refiltered.set_filter(unwanted, in_parts=True)
        refiltered.load_step()
        refiltered.apply_diff(second, in_parts=True)
        refiltered.set_filter(wanted, in_parts=True)
        assert refiltered.filtering and refiltered.filter_on is filtered  # the rows shown are still the screen's
        steps = 1
        while refiltered.load_step():
            steps += 1
            assert [row.key for row in refiltered.rows] == screen
        assert steps > sockets // 7 and not refiltered.filtering and refiltered.filter_on is not filtered
        reference = ConnectionRows(flash_seconds=3.0)
        reference.set_sort(column, reverse=False)
        if filtered:
            reference.set_filter(established)
        on_screen(reference)
        reference.apply_diff(first)
        reference.set_filter(wanted)
        reference.apply_diff(second)
        _same_rows(refiltered, reference)
        assert refiltered.cursor == reference.cursor
        assert refiltered.selected_key == reference.selected_key
        # The refresh of a screen filtered over, made at once, is made under that filter too.
        screened = ConnectionRows(flash_seconds=3.0)
        screened.set_sort(column, reverse=False)
        if filtered:
            screened.set_filter(established)
        on_screen(screened)
        screened.set_filter(wanted, in_parts=True)
        screened.apply_diff(first)
        screened.apply_diff(second)
        _same_rows(screened, reference)
        assert not screened.filtering and screened.filter_on is not filtered
        # So are sockets loaded in its place (another session's, shown instead).
        for rows in (screened, reference):
            rows.set_filter(established if filtered else None)
        on_screen(screened)
        screened.set_filter(wanted, in_parts=True)
        screened.load(first.snapshot.sockets.values(), first.snapshot.taken_at)
        reference.set_filter(wanted)
        reference.load(first.snapshot.sockets.values(), first.snapshot.taken_at)
        _same_rows(screened, reference)
        assert not screened.filtering and screened.filter_on is not filtered
    finally:
        collector.close()
        for end in held:
            end.close()


@pytest.mark.parametrize("column", ["program", "local", "rtt"])
def test_a_filter_made_into_rows_in_parts_is_the_filter_applied_at_once(
    listener: socket.socket, column: str,
) -> None:
    """A new filter over more than `load_part` sockets is made into rows a few sockets a step (set_filter's
    `in_parts`), the rows from before shown until the last step. Then the rows, folds, counts, widths, the cursor
    and the closed rows lingering are those of the filter applied at once; so too for a filter over a filter with a
    refresh queued meanwhile, and for clearing it: the rows set aside come back at once, but by rtt (a tcp_info
    column, whose rows are not kept in order by diffs) every socket is made into rows again in parts."""
    port = listener.getsockname()[1]
    held = held_beside_a_fold(listener)
    collector = ConnectionCollector(interval=1.0, query=parse_filter(f":{port} 127.77.0.1").kernel_query())
    established, on_port = parse_filter(f":{port} established"), parse_filter(f":{port}")

    def rows_of_keys(rows: ConnectionRows) -> list[tuple[object, bool]]:
        return [(row.key, rows.is_closed(row)) for row in rows.rows]

    def closed_then_read(ends: list[socket.socket]) -> SnapshotDiff:
        for end in ends:
            end.close()
        time.sleep(0.05)
        return collector.next_diff()

    def step_through(rows: ConnectionRows, before: list[tuple[object, bool]]) -> int:
        steps = 1
        while rows.load_step():
            steps += 1
            assert rows_of_keys(rows) == before  # the rows from before, until the last step
        return steps

    try:
        time.sleep(0.05)
        first = collector.next_diff()
        at_once, in_parts = ConnectionRows(flash_seconds=30.0), ConnectionRows(flash_seconds=30.0)
        in_parts.load_part = 7
        for rows in (at_once, in_parts):
            rows.set_sort(column, reverse=False)
            rows.apply_diff(first)
        second = closed_then_read(held[:2])  # a connection closed: its server's end lingers, closed
        for rows in (at_once, in_parts):
            rows.apply_diff(second)
        assert any(at_once.is_closed(row) for row in at_once.rows)
        cursor = next(index for index, row in enumerate(at_once.rows) if row.state == "LISTEN")
        for rows in (at_once, in_parts):
            rows.move_cursor(cursor)  # on a row the filter hides: the cursor goes to the first row

        before = rows_of_keys(in_parts)
        at_once.set_filter(established.matches)
        in_parts.set_filter(established.matches, in_parts=True)
        assert in_parts.loading and in_parts.filtering and not in_parts.filter_on
        assert step_through(in_parts, before) > len(second.snapshot.sockets) // 7
        assert in_parts.filter_on and not in_parts.filtering and not in_parts.loading
        _same_rows(in_parts, at_once)
        assert rows_of_keys(in_parts) == rows_of_keys(at_once)
        assert any(closed for _, closed in rows_of_keys(in_parts))
        assert in_parts.cursor == at_once.cursor == 0
        assert in_parts.selected_socket is at_once.selected_socket is at_once.rows[0]

        # A filter over the filter, a refresh arriving between its steps: applied after them; the cursor stays
        # on its connection.
        cursor = next(index for index, row in enumerate(at_once.rows) if index > 2 and not at_once.is_closed(row))
        for rows in (at_once, in_parts):
            rows.move_cursor(cursor)
        selected = at_once.selected_key
        before = rows_of_keys(in_parts)
        in_parts.set_filter(on_port.matches, in_parts=True)
        in_parts.load_step()
        third = closed_then_read(held[2:4])
        in_parts.apply_diff(third, in_parts=True)
        step_through(in_parts, before)
        at_once.set_filter(on_port.matches)
        at_once.apply_diff(third)
        _same_rows(in_parts, at_once)
        assert rows_of_keys(in_parts) == rows_of_keys(at_once)
        assert any(isinstance(row, FoldedSockets) for row in in_parts.rows)
        assert in_parts.selected_key == at_once.selected_key == selected
        assert in_parts.cursor == at_once.cursor > 0

        # Cleared.
        before = rows_of_keys(in_parts)
        in_parts.set_filter(None, in_parts=True)
        at_once.set_filter(None)
        assert in_parts.loading is (column == "rtt")
        step_through(in_parts, before)
        assert not in_parts.filter_on
        _same_rows(in_parts, at_once)
        assert rows_of_keys(in_parts) == rows_of_keys(at_once)
        assert in_parts.selected_key == at_once.selected_key == selected

        # A filter typed over one still being made drops it, the refresh queued meanwhile applied first; Escape
        # over one still being made leaves the rows as they are.
        in_parts.set_filter(established.matches, in_parts=True)
        in_parts.load_step()
        fourth = closed_then_read(held[4:6])
        in_parts.apply_diff(fourth, in_parts=True)
        in_parts.set_filter(on_port.matches, in_parts=True)
        steps = step_through(in_parts, rows_of_keys(in_parts))
        at_once.apply_diff(fourth)
        at_once.set_filter(on_port.matches)
        assert steps > len(fourth.snapshot.sockets) // 7
        _same_rows(in_parts, at_once)
        assert rows_of_keys(in_parts) == rows_of_keys(at_once)
        before = rows_of_keys(in_parts)
        in_parts.set_filter(established.matches, in_parts=True)
        in_parts.load_step()
        in_parts.set_filter(on_port.matches)  # at once: finishes the one being made first
        _same_rows(in_parts, at_once)
        in_parts.set_filter(None, in_parts=True)
        step_through(in_parts, rows_of_keys(in_parts))  # by rtt, every socket again
        in_parts.set_filter(established.matches, in_parts=True)
        in_parts.load_step()
        in_parts.set_filter(None, in_parts=True)
        at_once.set_filter(None)
        assert not in_parts.loading and not in_parts.filter_on
        _same_rows(in_parts, at_once)
    finally:
        collector.close()
        for end in held:
            end.close()


def test_columns_widen_for_a_row_that_needs_more_and_after_escape_fit_every_row(listener: socket.socket) -> None:
    """The rows keep what their columns need as rows come in (SortedRows.extents), so that neither a refresh with
    one wider row nor Escape from a filter measures every row again: a queue that grows under the filter, on a
    row it hides, still widens its column once the filter is cleared."""
    port = listener.getsockname()[1]
    pairs = [connect(listener) for _ in range(4)]
    collector = ConnectionCollector(interval=1.0, query=parse_filter(f":{port} 127.77.0.1").kernel_query())
    floors = ContentWidths(local=1, remote=1, user=1, recv_q=1, send_q=1)

    def widest_queue(rows: ConnectionRows) -> int:
        return max(len(str(row.recv_q)) for row in rows.rows)

    try:
        time.sleep(0.05)
        rows = ConnectionRows(flash_seconds=0.0)
        rows.apply_diff(collector.next_diff())
        assert rows.measure(floors).recv_q == 1
        pairs[0][0].sendall(b"x" * 5_000)  # the server's end does not read: its Recv-Q holds them
        time.sleep(0.05)
        rows.apply_diff(collector.next_diff())
        assert rows.widths_stale and rows.measure(floors).recv_q == widest_queue(rows) == 4

        rows.set_filter(parse_filter(f"rport:{port}").matches)  # the clients' ends: the server's are hidden
        pairs[1][0].sendall(b"x" * 50_000)
        time.sleep(0.05)
        rows.apply_diff(collector.next_diff())
        assert rows.measure(floors).recv_q == 1
        rows.set_filter(None)
        assert rows.measure(floors).recv_q == widest_queue(rows) == 5
    finally:
        collector.close()
        for pair in pairs:
            for end in pair:
                end.close()
