"""A busy server's screen stays readable and cheap: ownerless TIME_WAIT folded, rows that move only when they must,
one-key filters that narrow, 80x24 as the design size, and a low-bandwidth mode. Real loopback sockets where the
kernel's behaviour matters (TIME_WAIT, owners), the fixed machine where the layout does."""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fixed_data import T0, FixedSource, machine, snapshots, sock
from fixed_views import FixedViews, interfaces
from support import wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.model import Snapshot, Socket, SocketKey
from netscope.collectors.session.filters import narrowed, parse_filter, term_kind, without_last_term
from netscope.collectors.session.folding import FOLD_AT, FoldedSockets, Folder
from netscope.collectors.session.steady import SteadyFigure, SteadyFigures
from netscope.widgets.formatting import SPARK_LEVELS, sparkline
from netscope.widgets.key_footer import KeyFooter, keys_shown
from netscope.widgets.state_counters import StateCounters
from netscope.widgets.top_panel import TopPanel
from netscope.widgets.traffic_panel import SPARK_FLOOR, TrafficPanel

SIZE = (120, 40)


class Server:
    """A listener in this process, with connections it holds and server-side TIME_WAIT sockets it leaves."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port: int = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []

    def hold(self, count: int) -> None:
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", self.port))
            server_end, _ = self.listener.accept()
            self.held += [client, server_end]

    def leave_time_waits(self, count: int) -> list[int]:
        """`count` connections the server closes first: its ends stay in TIME_WAIT, owned by nobody, for 60 s.
        Returns the clients' ports."""
        ports = []
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", self.port))
            server_end, _ = self.listener.accept()
            ports.append(client.getsockname()[1])
            server_end.close()
            client.close()
        return ports

    def close(self) -> None:
        for held in self.held:
            held.close()
        self.listener.close()


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    yield made
    made.close()


def folds(app: NetscopeApp) -> list[FoldedSockets]:
    return [row for row in app.table.rows if isinstance(row, FoldedSockets) and not app.table.is_closed(row)]


async def test_ownerless_time_wait_folds_into_one_row_that_counts_matches_and_opens(server: Server) -> None:
    server.hold(2)
    client_ports = server.leave_time_waits(12)
    app = NetscopeApp(interval=0.2, filter_text=f"lport:{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: [f.count for f in folds(app)] == [12])
        (fold,) = folds(app)
        assert fold.state == "TIME_WAIT" and fold.local_port == server.port and fold.remote_port == 0
        assert table.row_count == 4  # the listener, two connections, one fold
        assert table.filtered_counts["TIME_WAIT"] == 12  # every socket still counted
        assert app.connections.counters.filtered.total() == 15  # ALL: in the counter bar
        row = table.rows.index(fold)
        assert "×12 no owner" in table.row_text(row) and f"127.0.0.1:{server.port}" in table.row_text(row)
        # The default sort: the listener, then the owned connections, the ownerless fold last.
        assert table.rows[0].state == "LISTEN" and table.rows[0].pid is not None
        assert [r.state for r in table.rows[1:3]] == ["ESTABLISHED"] * 2 and table.rows[-1] == fold
        # A folded row counts the sockets that match the filter.
        app.connections.apply_filter(parse_filter(f"lport:{server.port} !rport:{client_ports[0]}"))
        await wait_for(pilot, lambda: [f.count for f in folds(app)] == [11])
        # Enter opens it: its sockets one by one, the cursor on the first.
        table.move_cursor(table.rows.index(folds(app)[0]))
        await pilot.press("enter")
        assert not folds(app) and table.row_count == 3 + 11
        selected = table.selected_socket
        assert selected is not None and selected.state == "TIME_WAIT" and selected.pid is None
        # f unfolds everything, f again folds every group again (the opened one too).
        await pilot.press("f")
        assert not table.folding and table.row_count == 14
        await pilot.press("f")
        assert table.folding and [f.count for f in folds(app)] == [11] and table.row_count == 4
        # Kill and close refuse a fold, saying why and what to do.
        table.move_cursor(table.rows.index(folds(app)[0]))
        await pilot.press("k")
        await pilot.press("x")
        assert sum("stands for 11 sockets" in message for message in app.notices.messages) == 1  # told once, ×2


async def test_the_cursor_follows_its_socket_into_a_fold_and_stays_on_a_connection(server: Server) -> None:
    server.hold(1)
    server.leave_time_waits(FOLD_AT - 1)  # not yet a fold
    app = NetscopeApp(interval=0.2, filter_text=f"lport:{server.port}")
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: table.filtered_counts["TIME_WAIT"] == FOLD_AT - 1)
        assert not folds(app)
        time_wait = next(index for index, row in enumerate(table.rows) if row.state == "TIME_WAIT")
        table.move_cursor(time_wait)
        server.leave_time_waits(3)
        await wait_for(pilot, lambda: [f.count for f in folds(app)] == [FOLD_AT + 2])
        assert table.selected_socket == folds(app)[0]  # it went into the fold; so did the cursor
        connection = next(index for index, row in enumerate(table.rows) if row.state == "ESTABLISHED")
        table.move_cursor(connection)
        chosen = table.selected_socket
        assert chosen is not None
        server.leave_time_waits(4)
        await wait_for(pilot, lambda: [f.count for f in folds(app)] == [FOLD_AT + 6])
        assert table.selected_socket is not None and table.selected_socket.key == chosen.key


async def test_o_then_t_on_a_server_row_narrows_to_its_port_and_state(server: Server) -> None:
    server.hold(3)
    server.leave_time_waits(4)
    app = NetscopeApp(interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        table = app.table
        await wait_for(pilot, lambda: any(r.local_port == server.port and r.state == "ESTABLISHED"
                                          for r in table.rows))
        table.move_cursor(next(index for index, row in enumerate(table.rows)
                               if row.local_port == server.port and row.state == "ESTABLISHED"))
        await pilot.press("o", "t")
        assert app.filter.text == f":{server.port} established"
        await wait_for(pilot, lambda: table.row_count == 6)  # both ends of the three connections
        assert {row.state for row in table.rows} == {"ESTABLISHED"}
        assert all(server.port in (row.local_port, row.remote_port) for row in table.rows)
        assert "established" in str(app.status_bar.render())
        await pilot.press("t")  # the same state again: nothing doubles
        assert app.filter.text == f":{server.port} established"
        await pilot.press("backspace")
        assert app.filter.text == f":{server.port}"


def test_one_key_terms_replace_only_their_own_kind() -> None:
    assert narrowed("", ":80") == ":80"
    assert narrowed(":80", "established") == ":80 established"
    assert narrowed(":80 established", "time_wait") == ":80 time_wait"
    assert narrowed("lport:80 state:listen", ":443") == "state:listen :443"
    assert narrowed("proc:nginx !:22", ":80") == "proc:nginx !:22 :80"  # a negation says something else
    assert narrowed("pid:12 ip:10.0.0.0/8", "pid:13") == "ip:10.0.0.0/8 pid:13"
    assert narrowed('proc:"Web Content"', "established") == '"proc:Web Content" established'
    assert [term_kind(t) for t in (":80", "80", "rport:5432", "estab", "-l", "listen", "tcp6", "::1",
                                   "10.0.0.0/8", "!:22", "syn_recv,syn_sent")] == [
        "port", "port", "port", "state", "state", "state", "proto", "ip", "ip", "!port", "state"]
    assert without_last_term(":80 established") == ":80"
    assert without_last_term(":80") == ""


async def test_80x24_gives_the_table_17_rows_and_the_counters_one_line() -> None:
    app = NetscopeApp(FixedSource(), views=FixedViews())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        await pilot.pause()
        assert app.table.size.height - 1 >= 17  # the header line, then the rows
        counters = app.query_one(StateCounters)
        assert counters.size.height == 1
        line = counters.render().plain
        assert "ESTABLISHED:12" in line and "FIN_WAIT1" not in line  # the states with sockets, when all do not fit
        assert not app.query_one(TopPanel).display
    app = NetscopeApp(FixedSource(), views=FixedViews())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        await pilot.pause()
        assert app.query_one(TopPanel).display
    app = NetscopeApp(FixedSource(), views=FixedViews())
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        await pilot.pause()
        assert "FIN_WAIT1:0" in app.query_one(StateCounters).render().plain


async def test_low_bandwidth_draws_no_sparklines_no_flashes_and_repaints_on_its_cadence() -> None:
    frames = snapshots()
    app = NetscopeApp(FixedSource(frames), views=FixedViews(), low_bandwidth=True)
    new_key = next(key for key in frames[1].sockets if key not in frames[0].sockets)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        await wait_for(pilot, lambda: bool(app.query_one(TrafficPanel).busiest))
        assert not set(SPARK_LEVELS) & set(app.query_one(TrafficPanel).render().plain)
        assert "LOW-BW" in str(app.status_bar.render())
        # The second refresh is taken (the session counts it) and drawn with the next paint, unflashed.
        await wait_for(pilot, lambda: any(row.key == new_key for row in app.table.rows), timeout=6)
        assert app.table.flash_of(new_key) is None
        assert not any(app.table.is_closed(row) for row in app.table.rows)
        await pilot.press("b")
        assert not app.connections.low_bandwidth and app.table.flash_seconds > 0
        app.connections.show_interfaces(interfaces().interfaces)
        assert set(SPARK_LEVELS) & set(app.query_one(TrafficPanel).render().plain)


async def test_the_traffic_panel_holds_still_while_an_ssh_session_trickles_over_lo() -> None:
    """Over SSH, lo carries the session's own 0-3 KB/s: it must neither change the rate shown, nor the order of
    the interfaces, nor draw a jagged sparkline; a real change (tens of KB/s) shows at once."""
    from dataclasses import replace

    app = NetscopeApp(FixedSource(), views=FixedViews())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        panel = app.query_one(TrafficPanel)
        quiet = [replace(i, rx_bytes_per_s=0.0, tx_bytes_per_s=0.0, rx_history=[0.0] * 12, tx_history=[0.0] * 12)
                 for i in interfaces().interfaces]
        lo = next(i for i in quiet if i.name == "lo")
        trickle = [900.0, 0.0] * 6
        seen = []
        for rate in (900.0, 0.0, 2800.0, 0.0, 1500.0):
            ticked = replace(lo, rx_bytes_per_s=rate, tx_bytes_per_s=rate, rx_history=trickle, tx_history=trickle)
            app.connections.show_interfaces([ticked if i is lo else i for i in quiet])
            seen.append(([i.name for i in panel.busiest], panel.rates["lo"], panel.sparklines.get("lo")))
        assert all(entry == seen[0] for entry in seen), seen
        assert seen[0][0][0] == "lo" and 0 < seen[0][1][0] < 4000
        # A trickle is drawn low (scaled to at least 4 KB/s), not as full-height spikes.
        assert set(sparkline(trickle, 12, SPARK_FLOOR)) <= set(SPARK_LEVELS[:3])
        assert SPARK_LEVELS[-1] in sparkline(trickle, 12)
        busy = replace(lo, rx_bytes_per_s=68_000.0, tx_bytes_per_s=68_000.0)
        app.connections.show_interfaces([busy if i is lo else i for i in quiet])
        assert panel.rates["lo"] == (68_000.0, 68_000.0)


async def test_the_footer_is_made_again_only_when_its_keys_change() -> None:
    """Textual's Footer makes its keys again on every bindings signal (each focus change: opening the filter
    prompt gave two, its Enter two more, each a repaint sent over SSH). netscope's keeps them while the keys shown
    stay the same, and makes them again, as the keys now active, when they change."""
    app = NetscopeApp(FixedSource(), views=FixedViews())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await pilot.pause(0.2)
        footer = app.query_one(KeyFooter)

        def shown() -> list[tuple[str, str]]:
            keys = footer.query("FooterKey")
            return [(key.key, key.description) for key in keys if not key.has_class("-command-palette")]

        made = list(footer.query("FooterKey"))
        table_keys = shown()
        assert ("slash", "Filter") in table_keys, table_keys
        app.screen.refresh_bindings()  # a signal with nothing changed: what a focus move within the table sends
        app.table.focus()
        await pilot.pause(0.2)
        assert list(footer.query("FooterKey")) == made  # the same widgets: not made again
        await pilot.press("slash")
        await pilot.pause(0.2)
        assert shown() != table_keys  # the filter prompt's keys
        assert shown() == [(key, description) for key, description, *_ in keys_shown(app.screen)]
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert shown() == table_keys


def test_a_fold_forms_at_its_threshold_and_unfolds_only_near_empty() -> None:
    folder = Folder()
    listener = sock("tcp", "10.0.0.5", 80, "0.0.0.0", 0, "LISTEN", pid=7, inode=1)
    folder.listening_ports = {80}
    waits = [sock("tcp", "10.0.0.5", 80, "192.0.2.1", 40000 + n, "TIME_WAIT") for n in range(5)]
    folder.reset([listener, *waits[:2]], T0)
    assert len(folder.rows) == 3
    folder.add(waits[2])
    changes = folder.take_changes()
    # The two single rows are hidden (they went into the fold), not removed (nothing closed).
    assert [type(row) for row in changes.added] == [FoldedSockets] and len(changes.hidden) == 2
    assert not changes.removed
    assert len(folder.rows) == 2
    folder.remove(waits[0])
    changes = folder.take_changes()
    assert [row.count for row in changes.changed] == [2]  # down to 2: still one row (no flicker at the edge)
    folder.remove(waits[1])
    changes = folder.take_changes()
    assert changes.added == [waits[2]] and [type(row) for row in changes.hidden] == [FoldedSockets]
    # A client's TIME_WAIT (no listener on its local port) folds by the remote endpoint instead.
    clients = [sock("tcp", "10.0.0.5", 50000 + n, "203.0.113.9", 443, "TIME_WAIT") for n in range(3)]
    folder.reset(clients, T0)
    (fold,) = folder.rows.values()
    assert isinstance(fold, FoldedSockets) and (fold.local_port, fold.remote_port) == (0, 443)
    assert folder.row_key_of(clients[1].key) == fold.key
    # An owned socket, or one whose owner is unseen (inode set), never folds.
    owned = [sock("tcp", "10.0.0.5", 80, "192.0.2.1", 41000 + n, "FIN_WAIT1", pid=9, inode=10 + n)
             for n in range(4)]
    folder.reset(owned, T0)
    assert len(folder.rows) == 4


def test_rows_held_over_the_snapshot_equal_rows_held_whole_through_folds_and_unfolds() -> None:
    """A folder whose rows are every socket of a snapshot holds them as differences from the snapshot's dict
    (row_map.py). Fed the same refreshes as one that holds its rows in a dict of their own, it gives the same rows
    and the same row changes after each: groups of TIME_WAIT sockets fold, grow, shrink and unfold, sockets
    change under their keys, and a refresh that leaves most sockets folded has it hold its rows whole."""
    import random

    rng = random.Random(14)
    ports = iter(range(30000, 65000))

    def made(time_wait_share: float) -> Socket:
        if rng.random() >= time_wait_share:
            return sock("tcp", "10.0.0.5", 80, f"192.0.2.{rng.randrange(7)}", next(ports), "ESTABLISHED", pid=7,
                        inode=next(ports))
        return sock("tcp", "10.0.0.5", 80, f"198.51.100.{rng.randrange(4)}", next(ports), "TIME_WAIT")

    def refreshed(snapshot: dict[SocketKey, Socket], arriving: int, time_wait_share: float = 0.5,
                  ) -> dict[SocketKey, Socket]:
        """The next snapshot's dict: a new one, whose unchanged sockets are the same objects."""
        after: dict[SocketKey, Socket] = {}
        for key, was in snapshot.items():
            luck = rng.random()
            if was.state == "LISTEN" or luck >= 0.25:
                after[key] = was
            elif luck >= 0.12 and was.state == "ESTABLISHED":  # data arrived: a new version under its key
                after[key] = sock(was.proto, was.local_ip, was.local_port, was.remote_ip, was.remote_port,
                                  was.state, pid=was.pid, inode=was.inode, recv_q=was.recv_q + 1)
        for new in (made(time_wait_share) for _ in range(arriving)):
            after[new.key] = new
        return after

    plain, held = Folder(), Folder()
    for folder in (plain, held):
        folder.listening_ports = {80}
    listener = sock("tcp", "10.0.0.5", 80, "0.0.0.0", 0, "LISTEN", pid=7, inode=1)
    snapshot = refreshed({listener.key: listener}, 30, 0.2)
    plain.reset(snapshot.values(), T0)
    held.reset_over(snapshot, T0)
    assert held.rows.is_over_base
    for step in range(40):
        # Step 30 brings so many TIME_WAIT sockets that most of the table is folded: held whole from then on.
        after = refreshed(snapshot, 600, 1.0) if step == 30 else refreshed(snapshot, rng.randrange(12))
        gone = [was for key, was in snapshot.items() if after.get(key) is not was]
        came = [now for key, now in after.items() if snapshot.get(key) is not now]
        changes = []
        for folder, snapshot_given in ((plain, None), (held, after)):
            for was in gone:
                folder.remove(was)
            for now in came:
                folder.add(now)
            changes.append(folder.take_changes(snapshot_given))
        kinds = ("added", "changed", "replaced", "removed", "hidden")
        plain_keys, held_keys = ({kind: sorted(row.key for row in getattr(change, kind)) for kind in kinds}
                                 for change in changes)
        assert held_keys == plain_keys, step
        assert dict(held.rows.items()) == dict(plain.rows.items()), step
        assert len(held.rows) == len(plain.rows) and sorted(held.rows) == sorted(plain.rows)
        assert all(held.rows.get(key) is row for key, row in plain.rows.items()  # each made its own folds
                   if not isinstance(row, FoldedSockets))
        assert held.rows.is_over_base == (step < 30), step
        snapshot = after


def test_a_measured_figure_changes_on_screen_only_when_it_moves_meaningfully() -> None:
    read_ms = SteadyFigure(tolerance=0.5, least=5)
    assert [read_ms.update(value) for value in (12, 14, 9, 17, 40, 38, 3)] == [12, 12, 12, 12, 40, 40, 3]
    rates = SteadyFigures(tolerance=0.5, least=4000)
    assert rates.update({"lo": 1000}) == {"lo": 1000}
    # Over SSH, lo carries the session's own bytes: 1 to 3 KB/s back and forth is not news.
    assert rates.update({"lo": 2800, "eth0": 0}) == {"lo": 1000, "eth0": 0}
    assert rates.update({"lo": 68_000}) == {"lo": 68_000}
    assert rates.update({"lo": 50_000}) == {"lo": 68_000}  # by less than a factor of 1.5
    assert rates.update({"lo": 40_000}) == {"lo": 40_000}  # a drop counts as a rise does
    assert rates.update({"lo": 0}) == {"lo": 0}


async def test_a_syn_queue_from_many_hosts_is_one_row_per_host_and_every_socket_counted() -> None:
    calm = machine()
    flood = calm + [sock("tcp", "10.0.0.5", 80, f"192.0.2.{n % 5}", 20000 + n, "SYN_RECV", age=0)
                    for n in range(500)]
    frames = [Snapshot(T0 - 1, {s.key: s for s in calm}), Snapshot(T0, {s.key: s for s in flood})]
    app = NetscopeApp(FixedSource(frames), views=FixedViews())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        syn = [row for row in folds(app) if row.state == "SYN_RECV"]
        assert sorted(row.remote_ip for row in syn) == [f"192.0.2.{n}" for n in range(5)]
        assert app.table.filtered_counts["SYN_RECV"] == 504  # with the fixed machine's own four


def test_printed_outputs_fold_only_when_asked(server: Server) -> None:
    server.leave_time_waits(5)
    port = f"lport:{server.port}"
    plain = json.loads(netscope("--once", "--json", "--filter", port).stdout)
    assert sum(record["state"] == "TIME_WAIT" for record in plain) == 5 and "sockets" not in plain[0]
    folded = json.loads(netscope("--once", "--json", "--fold", "--filter", port).stdout)
    (fold,) = [record for record in folded if record["state"] == "TIME_WAIT"]
    assert fold["sockets"] == 5 and fold["remote_port"] == 0 and fold["pid"] is None
    assert all(record["sockets"] == 1 for record in folded if record is not fold)
    table = netscope("--once", "--fold", "--filter", port).stdout
    assert "×5 no owner" in table
    rows = list(csv.DictReader(io.StringIO(netscope("--once", "--csv", "--fold", "--filter", port).stdout)))
    assert [row["sockets"] for row in rows if row["state"] == "TIME_WAIT"] == ["5"]


def netscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netscope", *args], capture_output=True, text=True, timeout=60,
                          check=True)
