"""View 6 (top), the who-is-connected panel and the alert strip, through Pilot against real loopback load."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator

import pytest
from fixed_data import T0, FixedSource, machine, sock
from support import Peer, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.model import Snapshot
from netscope.collectors.session.alerts import Thresholds
from netscope.widgets.state_counters import StateCounters

SIZE = (160, 45)


def private_net() -> str:
    """A /24 of loopback (127.0.0.0/8 is all loopback) that no other test or benchmark load uses: other loads on
    the machine hold thousands of 127.0.x.y sockets whose port numbers can equal ours."""
    return f"127.{random.randint(100, 249)}.{random.randint(0, 255)}"

# Clients from a chosen source address (127.0.0.x are all loopback), holding `count` connections; with --leak they
# then close one connection every `--every` seconds while the server never closes its ends: CLOSE_WAIT piles up.
CLIENTS = textwrap.dedent("""
    import socket, sys, time
    host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    count, leak_every = int(sys.argv[4]), float(sys.argv[5])
    held = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.connect((host, port))
        held.append(s)
    print("ready", flush=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(leak_every if leak_every > 0 else 1)
        if leak_every > 0 and held:
            held.pop().close()
""")


@pytest.fixture
def spawn_clients() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def spawn(server: Peer, host: str, source: str, count: int, leak_every: float = 0.0) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", CLIENTS, host, str(server.port), source, str(count), str(leak_every)],
            stdout=subprocess.PIPE, text=True,
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        return process

    yield spawn
    for process in started:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


async def test_top_view_counts_clients_per_host_and_one_key_narrows_the_table(
    spawn_peer: Callable[..., Peer], spawn_clients: Callable[..., subprocess.Popen[str]],
) -> None:
    net = private_net()
    server = spawn_peer("server", "--name", "ns-top-server", "--host", f"{net}.1")
    spawn_clients(server, f"{net}.1", f"{net}.2", 20)
    spawn_clients(server, f"{net}.1", f"{net}.3", 5)
    app = NetscopeApp(interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await pilot.press("6")
        assert app.active_view == "top"

        def group(key: str) -> tuple[int, int] | None:
            found = next((g for g in app.top_view.shown if g.key == key), None)
            return None if found is None else (found.total, found.states.get("ESTABLISHED", 0))

        await wait_for(pilot, lambda: group(f"{net}.2") == (20, 20) and group(f"{net}.3") == (5, 5))
        # What the user reads: the rows of the table, with the counts in them.
        keys = [str(app.top_view.table.get_row_at(row)[0]) for row in range(app.top_view.table.row_count)]
        row = keys.index(f"{net}.2")
        cells = [str(cell) for cell in app.top_view.table.get_row_at(row)]
        assert cells[1] == "20" and cells[3] == "20"

        app.top_view.table.move_cursor(row=row)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.active_view == "connections")
        assert app.filter.text == f"rip:{net}.2"
        await wait_for(pilot, lambda: app.table.row_count == 20)
        assert {row.remote_ip for row in app.table.rows} == {f"{net}.2"}
        assert {row.pid for row in app.table.rows} == {server.pid}

        # The panel on the connections screen counts what the filter shows: only the 20 from NET.2.
        await wait_for(pilot, lambda: app.connections.top_panel.sections[0][1][:1] != [])
        hosts = app.connections.top_panel.sections[0][1]
        assert [(g.key, g.total) for g in hosts] == [(f"{net}.2", 20)]


async def test_grouping_and_sort_keys_in_the_top_view(
    spawn_peer: Callable[..., Peer], spawn_clients: Callable[..., subprocess.Popen[str]],
) -> None:
    net = private_net()
    server = spawn_peer("server", "--name", "ns-top-server", "--host", f"{net}.1")
    spawn_clients(server, f"{net}.1", f"{net}.4", 7)
    app = NetscopeApp(interval=0.2, filter_text=f"ip:{net}.0/24")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await pilot.press("6")
        await wait_for(pilot, lambda: app.focused is app.top_view.table)
        await pilot.press("g", "g")  # remote host -> remote network -> local port
        assert app.top_view.grouping == "local_port"
        # The server's port holds its listener and the 7 accepted ends; each client's own port holds one socket.
        await wait_for(pilot, lambda: any(g.key == str(server.port) and g.total == 8 for g in app.top_view.shown))
        assert sum(g.total for g in app.top_view.shown) == 15, [(g.key, g.total) for g in app.top_view.shown][:20]
        await pilot.press("g")
        assert app.top_view.grouping == "process", (app.focused, app.top_view.grouping)
        await wait_for(pilot, lambda: any(f"({server.pid})" in g.key and g.total == 8 for g in app.top_view.shown))
        await pilot.press("s")
        assert app.top_view.sort == "change"
        keys = [g.key for g in app.top_view.shown]
        app.top_view.table.move_cursor(row=next(i for i, key in enumerate(keys) if f"({server.pid})" in key))
        await pilot.press("f")
        await wait_for(pilot, lambda: app.active_view == "connections")
        # The group's filter and the view's own filter together: what the view counted is what the table shows.
        assert app.filter.text == f"ip:{net}.0/24 pid:{server.pid}"
        await wait_for(pilot, lambda: app.table.row_count == 8)


async def test_a_process_leaking_close_wait_raises_an_alert_naming_it(
    spawn_peer: Callable[..., Peer], spawn_clients: Callable[..., subprocess.Popen[str]],
) -> None:
    net = private_net()
    server = spawn_peer("server", "--name", "ns-leaky", "--host", f"{net}.1")
    spawn_clients(server, f"{net}.1", f"{net}.5", 30, leak_every=0.15)
    app = NetscopeApp(interval=0.2, thresholds=Thresholds(close_wait=5, close_wait_refreshes=3))
    async with app.run_test(size=SIZE) as pilot:
        alerts = app.session.alerts
        await wait_for(pilot, lambda: any(a.kind == "close_wait_leak" for a in alerts.active), timeout=15)
        alert = next(a for a in app.session.alerts.active if a.kind == "close_wait_leak")
        assert "ns-leaky" in alert.detail or "ns-leaky" in alert.title
        assert str(server.pid) in alert.detail or str(server.pid) in alert.title
        assert app.alert_bar.display
        assert "ns-leaky" in str(app.alert_bar.render())
        assert any("ns-leaky" in message for message in app.notices.messages)
        # The strip is on every view.
        await pilot.press("2")
        assert app.alert_bar.display
        await pilot.press("1", "a")
        assert app.filter.text == alert.filter_text
        await wait_for(pilot, lambda: app.table.row_count >= 5)
        assert {row.state for row in app.table.rows} <= {"CLOSE_WAIT"}
        assert {row.pid for row in app.table.rows} == {server.pid}


async def test_syn_flood_alert_names_the_sources() -> None:
    calm = machine()
    flood = calm + [
        sock("tcp", "10.0.0.5", 80, f"192.0.2.{index % 3}", 20000 + index, "SYN_RECV", age=0)
        for index in range(150)
    ]
    frames = [
        Snapshot(taken_at=T0 - 1, sockets={s.key: s for s in calm}),
        Snapshot(taken_at=T0, sockets={s.key: s for s in flood}),
    ]
    app = NetscopeApp(FixedSource(frames))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        # The counter bar marks SYN_RECV, the strip says what and where, and it is told once.
        counters = app.query_one(StateCounters)
        assert counters.syn_recv_alert and counters.has_class("-alert") and counters.total["SYN_RECV"] == 154
        alert = next(a for a in app.session.alerts.active if a.kind == "syn_flood")
        assert any(alert.title in message for message in app.notices.messages)
        assert "192.0.2.0" in alert.detail
        assert app.alert_bar.display
        assert "SYN" in str(app.alert_bar.render())
        await pilot.press("a")
        assert app.filter.text == alert.filter_text
        # The flood's half-open sockets, no process's yet, fold into one row per source host; all are counted.
        await wait_for(pilot, lambda: app.table.filtered_counts["SYN_RECV"] >= 150)
        assert app.table.row_count < 10


async def test_a_big_first_load_shows_its_table_then_its_groups_and_alerts_a_part_at_a_time() -> None:
    """A first load of more sockets than FIRST_INSIGHTS_LATER has its groups and alerts counted INSIGHTS_PART
    sockets a turn of the event loop (keys are answered in between; the table's rows are made in parts too, in
    turns with them), until the Top panel counts every host and the flood's alert is told."""
    from netscope.collectors.session.live import FIRST_INSIGHTS_LATER, INSIGHTS_PART

    count = max(FIRST_INSIGHTS_LATER, 2 * INSIGHTS_PART) + 500
    sockets = [sock("tcp", "10.0.0.5", 80, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 40000, "ESTABLISHED",
                    pid=7, program="web", inode=100 + n) for n in range(count)]
    sockets += [sock("tcp", "10.0.0.5", 80, "192.0.2.9", 20000 + n, "SYN_RECV") for n in range(150)]
    app = NetscopeApp(FixedSource([Snapshot(taken_at=T0, sockets={s.key: s for s in sockets})]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 1, timeout=30)
        await wait_for(pilot, lambda: app.session.groups.count("remote_ip") == count + 1, timeout=30)
        await wait_for(pilot, lambda: any(a.kind == "syn_flood" for a in app.session.alerts.active), timeout=30)
        await wait_for(pilot, lambda: app.alert_bar.display and "SYN" in str(app.alert_bar.render()))
        await wait_for(pilot, lambda: app.table.row_count >= count, timeout=30)
