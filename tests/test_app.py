"""The connections screen driven through Pilot against real sockets and real processes on loopback."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import psutil
import pytest
from fixed_data import T0, FixedSource, sock
from support import Peer, stop_peer, type_filter, wait_for
from textual import events

from netscope.app.netscope_app import NetscopeApp
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.app.screens.details import DetailsScreen
from netscope.app.screens.help import HelpScreen, plain
from netscope.collectors.model import Snapshot, Socket
from netscope.collectors.session import connection_rows, live
from netscope.collectors.session.filters import GRAMMAR, parse_filter
from netscope.collectors.session.insights import GROUPINGS, GroupCounter
from netscope.widgets import connection_table
from netscope.widgets.state_counters import StateCounters

SIZE = (160, 45)


async def test_filter_shows_exactly_the_server_and_client_sockets(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    server, clients = server_with_clients
    app = NetscopeApp(interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await type_filter(pilot, f":{server.port} established")
        await wait_for(pilot, lambda: app.table.row_count == 6)
        rows = app.table.rows
        assert {row.state for row in rows} == {"ESTABLISHED"}
        assert sorted(row.pid for row in rows) == sorted([server.pid] * 3 + [client.pid for client in clients])
        assert {row.program for row in rows} == {"ns-test-server", "ns-client-0", "ns-client-1", "ns-client-2"}
        counters = app.query_one(StateCounters)
        assert counters.filtered["ESTABLISHED"] == 6
        assert counters.total["ESTABLISHED"] >= 6
        assert app.table.cursor_row == 0
        assert app.filter.text == f":{server.port} established"


async def test_bad_filter_is_explained_and_the_old_filter_kept(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f":{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 7)  # the listener and six connection ends
        await type_filter(pilot, "state:bogus")
        error = app.query_one("#filter-error")
        assert error.display
        assert "bogus" in str(error.render())
        assert app.filter.text == f":{server.port}"
        assert app.table.row_count == 7
        await pilot.press("escape")  # clears the filter and closes the prompt
        await wait_for(pilot, lambda: app.filter.is_empty and app.table.row_count > 7)


async def test_one_key_filters_from_the_selected_row(server_with_clients: tuple[Peer, list[Peer]]) -> None:
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f"rport:{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 3)
        target = app.table.selected_socket
        assert target is not None and target.pid is not None
        # Each key narrows: it adds a term, replacing only a term of its own kind.
        await pilot.press("p")
        assert app.filter.text == f"rport:{server.port} pid:{target.pid}"
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("t")
        assert app.filter.text == f"rport:{server.port} pid:{target.pid} established"
        await pilot.press("o")  # a port term replaces the other port term
        assert app.filter.text == f"pid:{target.pid} established :{target.local_port}"
        await pilot.press("backspace")
        assert app.filter.text == f"pid:{target.pid} established"
        await pilot.press("backspace", "backspace")
        assert app.filter.is_empty


async def test_sort_keys_and_header_click(server_with_clients: tuple[Peer, list[Peer]]) -> None:
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f":{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 7)
        table = app.table
        assert table.sort_column == "program"  # the default: owned sockets by program, listeners first
        table.sort_by("local")
        await pilot.press("s")
        assert table.sort_column == "remote"
        remotes = [(row.remote_ip, row.remote_port) for row in table.rows]
        assert [port for _, port in remotes] == sorted(port for _, port in remotes)
        chosen = table.selected_socket
        assert chosen is not None
        await pilot.press("r")
        assert table.sort_reverse
        assert table.selected_socket is not None and table.selected_socket.key == chosen.key
        assert table.cursor_row == table.row_count - 1 - [row.key for row in table.rows][::-1].index(chosen.key)
        ports = [row.remote_port for row in table.rows]
        assert ports == sorted(ports, reverse=True)
        # A click on the State header sorts by state; LISTEN sorts after ESTABLISHED.
        state_x = sum(width + 1 for width in table.column_widths[:5]) + 1
        await pilot.click("#connections", offset=(state_x, 0))
        assert table.sort_column == "state"
        assert not table.sort_reverse
        assert table.rows[-1].state == "LISTEN"


async def test_a_widened_filter_sorts_a_connection_that_changed_by_what_it_is_now(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    """A rebuild (a wider filter, Escape) sorts every row again from sort keys it remembers; a connection that
    changed since its key was made is sorted by its new state, not the remembered one."""
    server, clients = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f":{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: table.row_count == 7)
        table.sort_by("state")  # every row's key made, and remembered
        await type_filter(pilot, f":{server.port} pid:{server.pid}")
        await wait_for(pilot, lambda: table.row_count == 4)
        # The client whose connection sorts last among the server's ends: remembered as ESTABLISHED, the server's
        # end would stay after the others, where CLOSE_WAIT is out of order.
        victim = max(clients, key=lambda client: psutil.Process(client.pid).net_connections("tcp")[0].laddr.port)
        stop_peer(victim)
        await wait_for(pilot, lambda: any(row.state == "CLOSE_WAIT" for row in table.rows))
        await type_filter(pilot, f":{server.port}")
        await wait_for(pilot, lambda: table.row_count >= 7)
        states = [row.state for row in table.rows if row.pid == server.pid]
        assert states == ["CLOSE_WAIT", "ESTABLISHED", "ESTABLISHED", "LISTEN"]
        everything = [row.state for row in table.rows]
        assert everything == sorted(everything)


async def test_clearing_a_filter_shows_what_sorting_every_socket_again_would(
    server_with_clients: tuple[Peer, list[Peer]], spawn_peer: Callable[..., Peer]
) -> None:
    """Escape takes back the unfiltered rows and counts, kept up to date while the filter was on, instead of
    sorting and counting every socket again: they must be what that would give, after connections opened, changed
    and closed under the filter."""
    server, clients = server_with_clients
    app = NetscopeApp(interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        table, session = app.table, app.connections.main_session
        # Unfolded: folds keep their members and their formation time as they go (a group folds at 3 sockets and
        # unfolds at 1), so kept rows may fold what a rebuild from the same sockets would not.
        table.set_folding(False)
        await wait_for(pilot, lambda: any(row.pid == server.pid for row in table.rows))
        # A closed row lingering when the filter comes on: it is shown, but not counted, and not kept aside.
        spare = spawn_peer("server", "--name", "ns-spare-server")
        await wait_for(pilot, lambda: any(row.pid == spare.pid for row in table.rows))
        [spare_key] = [row.key for row in table.rows if row.pid == spare.pid]
        stop_peer(spare)
        await wait_for(pilot, lambda: table.flash_of(spare_key) == "removed")
        await type_filter(pilot, f"pid:{server.pid} listen")
        await wait_for(pilot, lambda: table.row_count == 1)
        stop_peer(clients[0])  # its end and the server's change state under the filter
        late = spawn_peer("client", str(server.port), "--count", "3", "--name", "ns-late-client")
        await wait_for(pilot, lambda: late.pid in {sock.pid for sock in session.snapshot.sockets.values()}
                       and any(sock.state == "CLOSE_WAIT" for sock in session.snapshot.sockets.values()))
        await pilot.pause(0.5)  # a few more refreshes fed to both
        await pilot.press("escape")
        assert session.filter.is_empty
        rows, counts = list(table.rows), dict(table.filtered_counts)
        assert {row.pid for row in table.rows} >= {server.pid, late.pid}
        groups = {name: session.groups.groups(name) for name in ("remote_ip", "local_port", "process")}
        # The same, made from scratch from the same sockets (nothing is awaited: no refresh comes in between).
        table.set_filter(lambda sock: True)
        assert table.rows == rows
        assert dict(table.filtered_counts) == counts
        recounted = GroupCounter()
        recounted.set_filter(None, session.snapshot)
        for name, found in groups.items():
            # A group that emptied in the last refresh shows its 0 until the next (the change it made).
            assert [(g.key, g.total, g.states) for g in found if g.total] == [
                (g.key, g.total, g.states) for g in recounted.groups(name)
            ]


async def test_selection_follows_its_connection_when_rows_move(
    server_with_clients: tuple[Peer, list[Peer]], spawn_peer: Callable[..., Peer]
) -> None:
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f"rport:{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.press("s", "s")  # PID/Program -> User, Age
        assert table.sort_column == "age"
        await pilot.press("end")
        chosen = table.selected_socket
        assert chosen is not None and table.cursor_row == 2
        spawn_peer("client", str(server.port), "--count", "4")
        # Four younger connections sort above the chosen one; the cursor moves with it.
        await wait_for(pilot, lambda: table.row_count == 7)
        assert table.selected_socket is not None
        assert table.selected_socket.key == chosen.key
        assert table.cursor_row == 6


async def test_new_and_closed_rows_are_highlighted(spawn_peer: Callable[..., Peer]) -> None:
    app = NetscopeApp(interval=0.2, filter_text="proc:ns-late", flash_seconds=4.0)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        assert table.row_count == 0
        late = spawn_peer("server", "--name", "ns-late-server")
        await wait_for(pilot, lambda: table.row_count == 1)
        row = table.rows[0]
        assert row.pid == late.pid and row.state == "LISTEN"
        assert table.flash_of(row.key) == "added"
        assert "ns-late-server" in table.row_text(0)
        # The highlight fades after flash_seconds.
        await wait_for(pilot, lambda: table.flash_of(row.key) is None, timeout=15)
        late.process.kill()
        late.process.wait(timeout=10)
        # The closed listener lingers, marked as closed and not counted, then goes.
        await wait_for(pilot, lambda: table.row_count == 1 and table.is_closed(table.rows[0]))
        assert table.flash_of(row.key) == "removed"
        assert sum(table.filtered_counts.values()) == 0
        await wait_for(pilot, lambda: table.row_count == 0, timeout=15)


async def test_details_show_the_owning_process(server_with_clients: tuple[Peer, list[Peer]]) -> None:
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f"lport:{server.port} listen")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        assert screen.details is not None and screen.details.pid == server.pid
        assert any("peers.py" in part for part in screen.details.cmdline)
        info = str(screen.query_one("#details-info").render())
        assert "ns-test-server" in info and "peers.py" in info
        # The listener and its three accepted connections.
        assert len(screen.process_sockets) == 4
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DetailsScreen))


async def test_kill_asks_then_terminates_the_owner(server_with_clients: tuple[Peer, list[Peer]]) -> None:
    _, clients = server_with_clients
    victim, survivor = clients[0], clients[1]
    app = NetscopeApp(interval=0.2, filter_text=f"pid:{victim.pid}", flash_seconds=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKillScreen))
        await pilot.press("n")  # cancel: nothing is sent
        await pilot.pause(0.2)
        assert victim.process.poll() is None
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKillScreen))
        body = str(app.screen.query_one("#confirm-body").render())
        assert str(victim.pid) in body and "ns-client-0" in body and "1 held" in body
        await pilot.press("y")
        deadline = time.monotonic() + 10
        while victim.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert victim.process.returncode == -signal.SIGTERM
        assert survivor.process.poll() is None
        # Its socket goes on the next refreshes, and the empty view says why it is empty.
        await wait_for(pilot, lambda: app.table.row_count == 0)
        assert "No socket matches the filter" in app.table.empty_message


async def test_closed_client_leaves_ownerless_fin_wait2_that_cannot_be_killed(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    server, clients = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f":{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 7)
        # The client closes first and the server never does: the client's end goes to FIN_WAIT2, owned by the
        # kernel alone, and the server's end to CLOSE_WAIT, still owned by the server.
        clients[0].process.kill()
        clients[0].process.wait(timeout=10)
        await wait_for(pilot, lambda: {"FIN_WAIT2", "CLOSE_WAIT"} <= {row.state for row in app.table.rows})
        orphan = next(row for row in app.table.rows if row.state == "FIN_WAIT2")
        assert orphan.pid is None and orphan.inode == 0
        close_wait = next(row for row in app.table.rows if row.state == "CLOSE_WAIT")
        assert close_wait.pid == server.pid
        app.table.move_cursor(app.table.rows.index(orphan))
        await pilot.press("k")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmKillScreen)
        assert any("no process owns it" in message for message in app.notices.messages)


async def test_hostile_process_name_is_shown_literally(spawn_peer: Callable[..., Peer]) -> None:
    hostile = "[b]x[/b]\x1b[2J"
    server = spawn_peer("server", "--name", hostile)
    app = NetscopeApp(interval=0.2, filter_text=f"pid:{server.pid}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        row = app.table.rows[0]
        assert row.program == hostile  # the collector keeps the real name...
        text = app.table.row_text(0)
        assert "[b]x[/b]\\x1b[2J" in text  # ...and the screen shows it literally, the escape escaped
        assert "\x1b" not in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        info = str(app.screen.query_one("#details-info").render())
        assert "[b]x[/b]\\x1b[2J" in info


async def test_names_toggle_never_blocks_and_shows_localhost(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f"lport:{server.port} listen")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("n")
        await wait_for(pilot, lambda: "localhost" in app.table.row_text(0))
        await pilot.press("n")
        assert f"127.0.0.1:{server.port}" in app.table.row_text(0)


async def test_help_lists_every_key() -> None:
    app = NetscopeApp(interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        for view in "123456":
            await pilot.press(view)
            await pilot.pause(0.1)
            active = app.screen.active_bindings  # the view's own keys, its focused table's, and the App's
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen")
            screen = app.screen
            assert isinstance(screen, HelpScreen)
            rows = {what: keys.split(" ") for keys, what, _ids in screen.keys}  # the rows the help table shows
            for key, active_binding in active.items():
                binding = active_binding.binding
                what = binding.tooltip or binding.description
                assert what, f"the binding for {key!r} ({binding.action}) says nothing: give it a description"
                assert app.get_key_display(binding) in rows.get(what, []), f"view {view}: {key!r} is not in help"
            grammar = [term.written for term in GRAMMAR]
            assert [plain(cell) for cell in screen.grammar_rows()] == [plain(written) for written in grammar]
            assert any("container:web" in written for written in grammar)  # once missing from help
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen.__class__.__name__ != "HelpScreen")


async def test_sigkill_binding_asks_and_kills(spawn_peer: Callable[..., Peer]) -> None:
    stubborn = spawn_peer("server", "--name", "ns-stubborn")
    app = NetscopeApp(interval=0.2, filter_text=f"pid:{stubborn.pid}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKillScreen))
        assert "SIGKILL" in str(app.screen.query_one("#confirm-title").render())
        await pilot.press("enter")
        stubborn.process.wait(timeout=10)
        assert stubborn.process.returncode == -signal.SIGKILL


async def test_narrow_terminal_keeps_the_owner_and_drops_age_and_user(
    server_with_clients: tuple[Peer, list[Peer]],
) -> None:
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f"lport:{server.port} listen")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.pause(0.1)
        header = "".join(segment.text for segment in app.table.render_line(0))
        assert "PID/Program" in header and "Local Address" in header
        assert "Age" not in header and "User" not in header
        row = app.table.row_text(0)
        assert f"{server.pid}/ns-test-server" in row and len(row) <= 80
        await pilot.resize_terminal(160, 30)
        await wait_for(pilot, lambda: "Age" in "".join(s.text for s in app.table.render_line(0)))


def many(count: int, start: int = 0) -> list[Socket]:
    return [
        sock("tcp", "10.0.0.5", 443, f"198.18.{index // 250}.{index % 250}", 40000 + index % 20000, "ESTABLISHED",
             pid=1221, program="nginx", inode=100_000 + index)
        for index in range(start, start + count)
    ]


async def test_a_big_first_load_shows_the_table_then_the_groups_and_rows_scroll_as_they_grow() -> None:
    # 25,000 sockets: over the size at which the groups and alerts follow the first table instead of delaying it.
    first = many(25_000)
    grown = first + many(500, start=25_000)
    frames = [Snapshot(taken_at=T0 - 1, sockets={s.key: s for s in first}),
              Snapshot(taken_at=T0, sockets={s.key: s for s in grown})]
    app = NetscopeApp(FixedSource(frames))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        await wait_for(pilot, lambda: app.session.groups.count("remote_ip") == 25_500)
        panel = app.connections.top_panel
        assert panel.sections and panel.sections[2][1][0].total == 25_500  # nginx's sockets
        # The scrollable height follows the rows without a full repaint, and End reaches the last row.
        assert app.table.virtual_size.height == 25_501
        await pilot.press("end")
        assert app.table.cursor_row == 25_499 and app.table.scroll_y > 25_000


async def test_before_the_first_read_the_status_line_says_so_with_the_sort() -> None:
    class Late(FixedSource):
        """Sends its one refresh when told to."""

        def __init__(self) -> None:
            super().__init__()
            self.go = asyncio.Event()

        async def stream(self):  # type: ignore[no-untyped-def]
            await self.go.wait()
            async for update in super().stream():
                yield update

    source = Late()
    app = NetscopeApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        status = app.connections.status_bar.status
        assert status.waiting and status.sort_label == app.table.sort_label != ""
        assert "waiting for the first read" in str(app.connections.status_bar.render())
        source.go.set()
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await pilot.pause(0.1)
        assert not app.connections.status_bar.status.waiting
        assert "read in" in str(app.connections.status_bar.render())


async def test_a_filter_over_many_sockets_is_made_in_parts_under_the_rows_before(
    server_with_clients: tuple[Peer, list[Peer]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A filter over more sockets than a part (one socket a part here, and two a part of the groups' recount) is
    made into rows a part at a time between turns of the event loop: the rows and counts from before stay, the
    status line says it is filtering, and keys move the cursor meanwhile. Then its rows show, counted as filtered,
    and the groups are those of a recount under the filter."""
    monkeypatch.setattr(connection_rows, "LOAD_PART", 1)
    monkeypatch.setattr(connection_table, "LOAD_STEP_BUDGET", 0)  # a part a turn
    monkeypatch.setattr(live, "INSIGHTS_PART", 2)
    server, clients = server_with_clients
    app = NetscopeApp(interval=60)  # one refresh: the sockets stay those of the snapshot compared with
    async with app.run_test(size=SIZE) as pilot:
        table, session = app.table, app.session
        await wait_for(pilot, lambda: app.refresh_count >= 1 and not table.loading_rows)
        await pilot.pause(0.2)
        snapshot = session.snapshot
        assert snapshot is not None
        before = table.rows
        await pilot.press("slash", *f":{server.port} established")
        app.post_message(events.Key("enter", "\r"))  # as a terminal sends it: Pilot.press would wait for idle
        await wait_for(pilot, lambda: table.filtering_rows, timeout=5)
        for _ in range(2):
            app.post_message(events.Key("down", None))
        deadline = time.monotonic() + 5
        while table.cursor_row < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        assert table.filtering_rows  # answered between parts
        assert table.rows == before and table.cursor_row == 2 and not table.filter_on
        assert app.connections.status_bar.status.filtering == len(snapshot.sockets)
        assert "filtering" in str(app.connections.status_bar.render())
        assert not app.connections.counters.filter_active  # the rows shown are not filtered yet

        await wait_for(pilot, lambda: not table.loading_rows, timeout=30)
        rows = table.rows
        assert len(rows) == 6 and {row.state for row in rows} == {"ESTABLISHED"}
        assert sorted(row.pid for row in rows) == sorted([server.pid] * 3 + [client.pid for client in clients])
        assert app.connections.counters.filter_active and app.connections.counters.filtered["ESTABLISHED"] == 6
        assert app.connections.status_bar.status.filtering == 0
        recount = GroupCounter()
        recount.set_filter(parse_filter(f":{server.port} established").matches, snapshot)

        def groups(counter: GroupCounter) -> list[list[tuple[object, int, object]]]:
            return [[(g.key, g.total, g.states) for g in counter.groups(name) if g.total] for name in GROUPINGS]

        await wait_for(pilot, lambda: groups(session.groups) == groups(recount), timeout=10)
        assert groups(recount)[0]  # the clients' hosts, counted
