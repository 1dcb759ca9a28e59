"""The first screen: the top of the table and every socket's count, sent by the worker ahead of its first full
frame, and shown until that frame comes. Real sockets held by real processes on loopback."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest
from fixed_data import FixedSource
from support import Peer, next_matching, wait_for
from textual import events

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import FirstScreen, Snapshot, SnapshotDiff, Socket
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.row_order import DEFAULT_SORT, bytes_sort_key, first_rows
from netscope.collectors.session import connection_rows
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.folding import socket_count
from netscope.widgets import connection_table

SIZE = (160, 45)


def _default_order(sockets: list[Socket]) -> list[Socket]:
    return sorted(sockets, key=lambda sock: bytes_sort_key(DEFAULT_SORT, sock))


def _machine(spawn_peer: Callable[..., Peer]) -> Snapshot:
    """This machine's sockets with, among them, programs whose names differ only in case, several processes of
    one name, listeners and their connections, and ownerless ones (a connection closed by its client: the
    server's end waits in CLOSE_WAIT, the client's in FIN_WAIT2 with no owner)."""
    servers = [spawn_peer("server", "--name", name) for name in ("Aa-first", "aa-first", "aa-first", "zz-last")]
    for server in servers:
        spawn_peer("client", str(server.port), "--count", "3", "--name", "aa-first")
    closer = spawn_peer("client", str(servers[0].port), "--name", "aa-closer")
    closer.process.kill()
    closer.process.wait()
    deadline = time.monotonic() + 10
    while True:
        snapshot = ConnectionCollector().next_diff().snapshot
        mine = [s for s in snapshot.sockets.values() if s.program in {"Aa-first", "aa-first", "zz-last"}]
        ownerless = [s for s in snapshot.sockets.values() if s.pid is None]
        if (len(mine) >= 4 + 4 * 3 * 2 and ownerless) or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.05)


def test_first_rows_are_the_owned_top_of_the_default_order(spawn_peer: Callable[..., Peer]) -> None:
    sockets = list(_machine(spawn_peer).sockets.values())
    assert any(sock.pid is None for sock in sockets), "the test needs an ownerless socket"
    owned = _default_order([sock for sock in sockets if sock.pid is not None])
    for count in (*range(0, 30), len(owned) - 1, len(owned), len(owned) + 5, len(sockets) + 5):
        assert first_rows(sockets, count) == owned[:max(0, count)], count
    # The ownerless ones sort after every owned one, folded or not: a first screen never holds them.
    everything = _default_order(sockets)
    assert everything[:len(owned)] == owned


def test_first_rows_look_past_count_into_other_owner_tuples_of_the_same_program_part() -> None:
    """Two listeners of one process with different backlogs have owner tuples of their own but one program part:
    the first row is the one whose endpoints sort first, whichever tuple the read met first. (Made sockets: which
    a real dump meets first is the kernel's hash order, which a test cannot choose.)"""
    def listener(port: int, backlog: int) -> Socket:
        return Socket("tcp", "127.0.0.1", port, "0.0.0.0", 0, "LISTEN", 0, 0, port * 10, 0, "root", 4242, "srv",
                      1000.0, backlog=backlog)

    later, earlier = listener(9000, 5), listener(8000, 7)
    assert later.shared is not earlier.shared
    connection = Socket("tcp", "127.0.0.1", 8000, "127.0.0.1", 50000, "ESTABLISHED", 0, 0, 1, 0, "root", 4242,
                        "srv", 1000.0)
    sockets = [later, connection, earlier]
    for count in range(1, 4):
        assert first_rows(sockets, count) == _default_order(sockets)[:count], count
    assert first_rows(sockets, 1) == [earlier]


async def test_the_worker_sends_a_first_screen_ahead_of_its_first_frame(
    spawn_peer: Callable[..., Peer],
) -> None:
    _machine(spawn_peer)
    collector = ProcessCollector(interval=0.2, first_screen=12)
    stream = collector.stream()
    try:
        first_screen = await anext(stream)
        assert isinstance(first_screen, FirstScreen)
        first = await anext(stream)
        assert isinstance(first, SnapshotDiff) and first.first
        # The same read: its counts are the first frame's, and its rows the first frame's top.
        sockets = list(first.snapshot.sockets.values())
        assert first_screen.counts == dict(Counter(sock.counter_name for sock in sockets))
        assert first_screen.total == len(sockets)
        assert first_screen.taken_at == first.snapshot.taken_at
        assert first_screen.rows == first_rows(sockets, 12)
        assert len(first_screen.rows) == 12
        # None again, however long it runs.
        for _ in range(2):
            assert isinstance(await next_matching(stream, lambda u: not isinstance(u, FirstScreen)), SnapshotDiff)
    finally:
        await stream.aclose()
        await collector.aclose()

    plain = ProcessCollector(interval=0.2)
    stream = plain.stream()
    try:
        assert isinstance(await anext(stream), SnapshotDiff)  # not asked for: none
    finally:
        await stream.aclose()
        await plain.aclose()


async def test_the_table_shows_a_first_screen_until_the_first_refresh(spawn_peer: Callable[..., Peer]) -> None:
    snapshot = _machine(spawn_peer)
    sockets = list(snapshot.sockets.values())
    top = first_rows(sockets, 5)
    counts = dict(Counter(sock.counter_name for sock in sockets))
    app = NetscopeApp(source=FixedSource([]), interval=60)
    async with app.run_test(size=SIZE) as pilot:
        app.connections.show_first_screen(FirstScreen(snapshot.taken_at, top, counts))
        await pilot.pause()
        assert app.table.rows == top
        assert app.connections.counters.total == Counter(counts)
        status = app.status_bar.status
        assert status.loading == len(sockets)
        await pilot.press("down", "down")
        chosen = app.table.selected_socket
        assert chosen is top[2]

        # The first refresh replaces it: every socket, the cursor still on its connection, the status as usual.
        app.apply_diff(SnapshotDiff(snapshot, added=sockets, changed=[], removed=[], first=True))
        await wait_for(pilot, lambda: app.refresh_count == 1)
        assert app.table.row_count > len(top)
        selected = app.table.selected_socket
        assert selected is not None and selected.key == chosen.key
        assert app.status_bar.status.loading == 0

        # A late first screen (a restarted worker's) changes nothing.
        rows = app.table.rows
        app.connections.show_first_screen(FirstScreen(snapshot.taken_at, top[:1], {"LISTEN": 1}))
        await pilot.pause()
        assert app.table.rows == rows and app.status_bar.status.loading == 0


async def test_a_big_first_refresh_is_made_into_rows_in_parts_under_its_first_screen(
    spawn_peer: Callable[..., Peer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first refresh of more sockets than a part (first_load.py; one socket a part here) is made into rows a
    part at a time between turns of the event loop: the first screen, its counts and "loading" stay meanwhile, and
    keys move the cursor on it; then every socket shows, the cursor on its connection."""
    monkeypatch.setattr(connection_rows, "LOAD_PART", 1)
    monkeypatch.setattr(connection_table, "LOAD_STEP_BUDGET", 0)  # a part a turn
    snapshot = _machine(spawn_peer)
    sockets = list(snapshot.sockets.values())
    top = first_rows(sockets, 5)
    counts = dict(Counter(sock.counter_name for sock in sockets))
    app = NetscopeApp(source=FixedSource([]), interval=60)
    async with app.run_test(size=SIZE) as pilot:
        app.connections.show_first_screen(FirstScreen(snapshot.taken_at, top, counts))
        await pilot.pause()
        app.apply_diff(SnapshotDiff(snapshot, added=sockets, changed=[], removed=[], first=True))
        assert app.refresh_count == 1 and app.table.loading_rows
        for _ in range(2):  # sent as a terminal would, not waited for as Pilot.press does (until all is idle)
            app.post_message(events.Key("down", None))
        deadline = time.monotonic() + 5
        while app.table.cursor_row < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        assert app.table.loading_rows  # answered between parts
        assert app.table.rows == top and app.table.selected_socket is top[2]
        assert app.connections.counters.total == Counter(counts)
        assert app.status_bar.status.loading == len(sockets)

        await wait_for(pilot, lambda: not app.table.loading_rows, timeout=30)
        assert sum(socket_count(row) for row in app.table.rows) == len(sockets)
        selected = app.table.selected_socket
        assert selected is not None and selected.key == top[2].key
        assert app.status_bar.status.loading == 0


async def test_a_filter_typed_before_a_big_first_refresh_is_made_into_rows_is_made_with_it(
    spawn_peer: Callable[..., Peer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A filter typed over the first screen, its refresh still on its way, leaves the screen as it is (a filter of
    its top rows alone would say nothing matches) and the refresh is made into rows under it. Another typed while
    that refresh is being made into rows a part at a time makes it again under that one, from its first part:
    not finished at once first (at 500,000 sockets, ≈ 0.5 s of a still event loop). The status line says it is
    filtering throughout; then the rows are the last filter's."""
    monkeypatch.setattr(connection_rows, "LOAD_PART", 1)
    monkeypatch.setattr(connection_table, "LOAD_STEP_BUDGET", 0)  # a part a turn
    snapshot = _machine(spawn_peer)
    sockets = list(snapshot.sockets.values())
    top = first_rows(sockets, 5)
    listening = [sock for sock in sockets if parse_filter("listen").matches(sock)]
    app = NetscopeApp(source=FixedSource([]), interval=60)

    async def prompt() -> None:
        """`/`, and the filter's text cleared (a binding's key: run after printable keys sent with it)."""
        await wait_for(pilot, lambda: app.focused is app.table, timeout=5)
        await pilot.press("slash", "ctrl+u")

    def entered(text: str) -> None:
        """Sent as a terminal sends them, not waiting until all is idle as Pilot.press does."""
        for key, character in [*((letter, letter) for letter in text), ("enter", "\r")]:
            app.post_message(events.Key(key, character))

    async with app.run_test(size=SIZE) as pilot:
        app.connections.show_first_screen(FirstScreen(snapshot.taken_at, top, dict(Counter(
            sock.counter_name for sock in sockets))))
        await pilot.pause()
        await prompt()
        entered("established")
        await wait_for(pilot, lambda: app.table.filtering_rows, timeout=5)
        await pilot.pause(0.1)
        assert app.table.rows == top and not app.table.filter_on and app.table.empty_message == ""
        assert app.status_bar.status.filtering == len(sockets) and app.status_bar.status.loading == 0

        await prompt()
        app.apply_diff(SnapshotDiff(snapshot, added=sockets, changed=[], removed=[], first=True))
        assert app.table.loading_rows and app.table.filtering_rows
        entered("listen")
        await wait_for(pilot, lambda: app.session.filter.text == "listen", timeout=5)
        assert app.table.loading_rows and app.table.rows == top  # the first screen, not the whole refresh
        assert app.status_bar.status.filtering == len(sockets) and app.status_bar.status.loading == 0

        await wait_for(pilot, lambda: not app.table.loading_rows, timeout=30)
        rows = app.table.rows
        assert {row.key for row in rows} == {sock.key for sock in listening}
        assert app.table.filter_on and app.table.cursor_row == 0
        assert app.connections.counters.filter_active
        assert app.status_bar.status.filtering == 0


async def test_a_first_screen_is_not_shown_over_a_filter(spawn_peer: Callable[..., Peer]) -> None:
    snapshot = _machine(spawn_peer)
    sockets = list(snapshot.sockets.values())
    app = NetscopeApp(source=FixedSource([]), interval=60, filter_text="state:listen")
    async with app.run_test(size=SIZE) as pilot:
        app.connections.show_first_screen(FirstScreen(snapshot.taken_at, first_rows(sockets, 5), {"LISTEN": 9}))
        await pilot.pause()
        assert app.table.row_count == 0 and app.status_bar.status.loading == 0
