"""Recording, replaying and exporting from the full-screen UI, driven through Pilot on real loopback sockets."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Peer, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.collectors.recording import RecordingReader, RecordingTee, ReplaySource

SIZE = (160, 45)


async def test_r_records_and_replay_shows_it_without_killing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawn_peer: Callable[..., Peer]
) -> None:
    monkeypatch.chdir(tmp_path)
    server = spawn_peer("server", "--name", "ns-recorded")
    app = NetscopeApp(interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        await pilot.press("R")
        await wait_for(pilot, lambda: "REC" in str(app.status_bar.render()))
        # The first frame (only the listener) must be written before the clients connect.
        tee = app.source
        assert isinstance(tee, RecordingTee)
        await wait_for(pilot, lambda: tee.writer is not None and tee.writer.frames >= 1)
        start = app.refresh_count
        client = spawn_peer("client", str(server.port), "--count", "2", "--name", "ns-rec-client")  # a change
        await wait_for(pilot, lambda: app.refresh_count >= start + 5)
        # Under load the views (read in a thread) can lag the sockets: end with socket frames after a views frame.
        writer = tee.writer
        assert writer is not None
        await wait_for(pilot, lambda: writer.view_frames >= 1)
        frames = writer.frames
        await wait_for(pilot, lambda: writer.frames >= frames + 2)
        await pilot.press("R")
        await wait_for(pilot, lambda: "REC" not in str(app.status_bar.render()))
    [path] = list(tmp_path.glob("netscope-*.nsrec"))
    with RecordingReader(path) as reader:
        assert len(reader) >= 4
        first, last = reader.snapshot_at(0), reader.snapshot_at(len(reader) - 1)
        assert any(s.pid == server.pid and s.state == "LISTEN" for s in first.sockets.values())
        clients = [s for s in last.sockets.values() if s.pid == client.pid]
        assert len(clients) == 2 and {s.remote_port for s in clients} == {server.port}

    replay = ReplaySource(path, playing=False)
    app = NetscopeApp(replay, filter_text="proc:ns-rec")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        assert app.is_replay and app.table.row_count == 1  # the first frame: only the listener
        await pilot.press("full_stop")  # step forward until the clients' connections appear
        for _ in range(len(replay.reader) + 1):
            if app.table.row_count == 5:
                break
            await pilot.press("full_stop")
            await pilot.pause(0.1)
        await wait_for(pilot, lambda: app.table.row_count == 5)
        assert "REPLAY" in str(app.status_bar.render())
        listener = next(i for i, row in enumerate(app.table.rows) if row.state == "LISTEN")
        app.table.move_cursor(listener)
        await pilot.press("k")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmKillScreen)
        assert any("This is a recording" in message for message in app.notices.messages)
        assert server.process.poll() is None
        # Views 2-5 were recorded with the sockets: they show what this machine had then, at the replay's time.
        for _ in range(len(replay.reader)):  # to the last frame, which was written after a views frame
            if replay.current_time == replay.reader.timestamps[-1]:
                break
            await pilot.press("full_stop")
            await pilot.pause(0.05)
        assert replay.current_time == replay.reader.timestamps[-1]
        await pilot.press("2")
        assert app.active_view == "interfaces" and app.connections.traffic.display
        await wait_for(pilot, lambda: app.interfaces_view.snapshot is not None)
        assert app.interfaces_view.snapshot is not None
        assert "lo" in {interface.name for interface in app.interfaces_view.snapshot.interfaces}
        assert abs(app.interfaces_view.snapshot.taken_at - (replay.current_time or 0)) < 2
        await pilot.press("1", "left_square_bracket")  # and going back works
        await wait_for(pilot, lambda: app.table.row_count == 1)


async def test_export_writes_the_rows_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_with_clients: tuple[Peer, list[Peer]]
) -> None:
    monkeypatch.chdir(tmp_path)
    server, _ = server_with_clients
    app = NetscopeApp(interval=0.2, filter_text=f":{server.port} established proc:ns-")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 6)
        await pilot.press("s")  # sorted by remote address
        shown = [(row.local_port, row.remote_port) for row in app.table.rows]
        await pilot.press("e")
        await wait_for(pilot, lambda: bool(list(tmp_path.glob("netscope-export-*.csv"))))
        await pilot.press("E")
        await wait_for(pilot, lambda: bool(list(tmp_path.glob("netscope-export-*.json"))))
    [csv_path] = list(tmp_path.glob("netscope-export-*.csv"))
    with csv_path.open() as file:
        rows = list(csv.DictReader(file))
    assert [(int(r["local_port"]), int(r["remote_port"])) for r in rows] == shown
    assert {r["state"] for r in rows} == {"ESTABLISHED"}
    [json_path] = list(tmp_path.glob("netscope-export-*.json"))
    records = json.loads(json_path.read_text())
    assert [(r["local_port"], r["remote_port"]) for r in records] == shown


async def test_export_works_in_every_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fixed_data import FixedSource
    from fixed_views import FixedViews

    monkeypatch.chdir(tmp_path)
    app = NetscopeApp(FixedSource(), views=FixedViews())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count == 2)
        await pilot.press("4")  # statistics, narrowed with its own filter
        await wait_for(pilot, lambda: app.statistics_view.table.row_count > 0)
        labels, shown = app.statistics_view.table.export_rows()
        await pilot.press("e")
        await wait_for(pilot, lambda: bool(list(tmp_path.glob("netscope-export-statistics-*.csv"))))
        await pilot.press("6")
        await wait_for(pilot, lambda: app.top_view.table.row_count > 0)
        await pilot.press("E")
        await wait_for(pilot, lambda: bool(list(tmp_path.glob("netscope-export-top-*.json"))))
        top = [str(app.top_view.table.get_row_at(row)[0]) for row in range(app.top_view.table.row_count)]
    [csv_path] = list(tmp_path.glob("netscope-export-statistics-*.csv"))
    with csv_path.open() as file:
        rows = list(csv.reader(file))
    assert rows[0] == labels and rows[1:] == shown and len(shown) > 10
    [json_path] = list(tmp_path.glob("netscope-export-top-*.json"))
    records = json.loads(json_path.read_text())
    # The groups as the view lists them, a group that just emptied (listed once, with its change) included.
    assert [record["Group"] for record in records] == top
    assert records[0]["Sockets"] == "3" and records[0]["TIME_WAIT"] == "3"
