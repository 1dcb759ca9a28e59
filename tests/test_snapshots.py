"""SVG snapshots of the main screens, made from a fixed machine (tests/fixed_data.py)."""

from __future__ import annotations

from typing import Any

from fixed_data import FixedSource
from fixed_views import FixedViews
from support import wait_for
from textual.pilot import Pilot

from netscope.app.netscope_app import NetscopeApp

SIZE = (150, 36)


def fixed_app(filter_text: str = "") -> NetscopeApp:
    # Long highlights so that the snapshot shows them however slow the machine is.
    return NetscopeApp(FixedSource(), filter_text=filter_text, flash_seconds=3600, views=FixedViews())


async def two_refreshes(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, NetscopeApp)
    await wait_for(pilot, lambda: app.refresh_count == 2)


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=two_refreshes)


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
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["2", "down"], run_before=two_refreshes)


def test_routes_view(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["3"], run_before=two_refreshes)


def test_statistics_view(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["4"], run_before=two_refreshes)


def test_multicast_view(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, press=["5"], run_before=two_refreshes)
