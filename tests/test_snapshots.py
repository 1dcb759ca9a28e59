"""SVG snapshots of the main screens, made from a fixed machine (tests/fixed_data.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixed_data import T0, FixedSource, snapshots, sock
from fixed_views import FixedViews, record_fixed
from support import wait_for
from textual.pilot import Pilot

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.model import Snapshot
from netscope.collectors.recording import ReplaySource

SIZE = (150, 36)


def fixed_app(filter_text: str = "") -> NetscopeApp:
    # Long highlights so that the snapshot shows them however slow the machine is.
    return NetscopeApp(FixedSource(), filter_text=filter_text, flash_seconds=3600, views=FixedViews())


async def two_refreshes(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, NetscopeApp)
    await wait_for(pilot, lambda: app.refresh_count == 2)


async def shown_and_read_again(pilot: Pilot[Any], key: str, view: Any) -> None:
    """After two refreshes, show the view `key` opens and wait for its second read of the system. Such a view reads
    once it is shown, and a table drawn for the first time may be drawn before its styles exist or with its
    columns sized to the headers; the next read styles and sizes it (full-suite and clean-clone runs caught an
    unstyled routes table, an unstyled interfaces table and a narrow multicast Group column)."""
    await two_refreshes(pilot)
    await pilot.press(key)
    await wait_for(pilot, lambda: view.snapshot is not None)
    first = view.snapshot
    await wait_for(pilot, lambda: view.snapshot is not first)
    await pilot.pause()


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=two_refreshes)


def test_main_screen_at_80x24(snap_compare: Any) -> None:
    """The design size over SSH: one counter line, no Top panel, 17 table rows, the TIME_WAIT folded."""
    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=two_refreshes)


def test_low_bandwidth_at_80x24(snap_compare: Any) -> None:
    # One refresh: the mode holds later ones for its next paint, a race with the snapshot.
    app = NetscopeApp(FixedSource(snapshots()[:1]), views=FixedViews(), low_bandwidth=True)

    async def one_refresh(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: app.refresh_count == 1 and app.table.row_count > 0)
        await wait_for(pilot, lambda: bool(app.connections.traffic.busiest))  # drawn with the mode's first paint
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=one_refresh)


def test_filtered_and_sorted(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await two_refreshes(pilot)
        await pilot.press("s", "s", "r")  # sort by State, descending: the cursor follows its row to the end

    assert snap_compare(fixed_app(":443 established"), terminal_size=SIZE, run_before=run_before)


def test_filter_error(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await two_refreshes(pilot)
        await pilot.press("slash", *"state:estab ip:10.0.0.0/33", "enter")

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["question_mark"], run_before=two_refreshes)


def test_interfaces_view(snap_compare: Any) -> None:
    app = fixed_app()

    async def interfaces_shown(pilot: Pilot[Any]) -> None:
        await shown_and_read_again(pilot, "2", app.interfaces_view)
        await pilot.press("down")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=interfaces_shown)


def test_routes_view(snap_compare: Any) -> None:
    app = fixed_app()

    async def routes_shown(pilot: Pilot[Any]) -> None:
        await shown_and_read_again(pilot, "3", app.routes_view)

    assert snap_compare(app, terminal_size=SIZE, run_before=routes_shown)


def test_statistics_view(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["4"], run_before=two_refreshes)


def test_multicast_view(snap_compare: Any) -> None:
    app = fixed_app()

    async def multicast_shown(pilot: Pilot[Any]) -> None:
        await shown_and_read_again(pilot, "5", app.multicast_view)

    assert snap_compare(app, terminal_size=SIZE, run_before=multicast_shown)


def test_top_view(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["6"], run_before=two_refreshes)


def test_top_view_by_process(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["6", "g", "g", "g"], run_before=two_refreshes)


def test_alerts_and_columns_chooser(snap_compare: Any) -> None:
    # A SYN flood on the fixed machine: the alert strip above the views, then the tcp_info column chooser.
    frames = snapshots()
    flood = dict(frames[-1].sockets)
    for index in range(150):
        half_open = sock("tcp", "10.0.0.5", 80, f"203.0.113.{index % 5}", 30000 + index, "SYN_RECV", age=0)
        flood[half_open.key] = half_open
    frames.append(Snapshot(taken_at=T0 + 1, sockets=flood, collect_seconds=0.011))
    app = NetscopeApp(FixedSource(frames), flash_seconds=3600, views=FixedViews())

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: app.refresh_count == 3)
        await pilot.press("c")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_replay_of_a_recording_with_views(snap_compare: Any, tmp_path: Path) -> None:
    path = tmp_path / "fixed.nsrec"
    record_fixed(path)
    app = NetscopeApp(ReplaySource(path, playing=False), flash_seconds=3600)

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: app.refresh_count == 1)
        await pilot.press("full_stop")
        await wait_for(pilot, lambda: app.refresh_count == 2)
        await pilot.press("2")
        await wait_for(pilot, lambda: app.interfaces_view.snapshot is not None)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
