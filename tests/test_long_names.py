"""A process may call itself anything, 3,000 characters long: dialogs keep their question and keys on screen, the
details scroll by keyboard to the whole text, and Top keeps its counts beside a capped name."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from support import PEERS, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.app.screens.details import DetailsScreen
from netscope.app.views.top import GROUP_NAME_WIDTH

SIZE = (120, 45)
LONG = "ns-long-" + "x" * 3000


@pytest.fixture
def long_named() -> Iterator[tuple[subprocess.Popen[str], int]]:
    # argv[0] is the process's own choice: 3,000 characters, and psutil's name follows it (comm is cut at 15).
    process = subprocess.Popen([LONG, str(PEERS), "server", "--name", "ns-long-xxxxxxx", "--lifetime", "120"],
                               executable=sys.executable, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield process, port
    process.kill()
    process.wait(timeout=10)
    process.stdout.close()


def visible(app: NetscopeApp, selector: str) -> bool:
    region = app.screen.query_one(selector).region
    return region.height > 0 and region.bottom <= SIZE[1]


async def test_the_kill_dialog_keeps_its_count_and_keys_on_screen(long_named: tuple[subprocess.Popen[str], int]
                                                                 ) -> None:
    process, port = long_named
    app = NetscopeApp(interval=0.3, filter_text=f"lport:{port} listen")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        assert len(app.table.rows[0].program) > 3000
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKillScreen))
        await pilot.pause(0.1)
        body = str(app.screen.query_one("#confirm-body").render())
        assert "held by this process now" in body and "characters)" in body
        assert visible(app, "#confirm-body") and visible(app, "#confirm-hint")
        await pilot.press("n")
    assert process.poll() is None


async def test_the_details_scroll_by_keyboard_to_the_whole_command(long_named: tuple[subprocess.Popen[str], int]
                                                                  ) -> None:
    _, port = long_named
    app = NetscopeApp(interval=0.3, filter_text=f"lport:{port} listen")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        await pilot.pause(0.1)
        scroll = app.screen.query_one("#details-scroll")
        assert app.screen.focused is scroll and scroll.max_scroll_y > 0
        assert LONG in str(app.screen.query_one("#details-info").render())  # all of it, wrapped
        await pilot.press("end")
        await wait_for(pilot, lambda: scroll.scroll_y == scroll.max_scroll_y)
        assert visible(app, "#confirm-hint")


async def test_top_by_process_caps_the_name_and_keeps_the_counts(long_named: tuple[subprocess.Popen[str], int]
                                                                ) -> None:
    _, port = long_named
    app = NetscopeApp(interval=0.3, filter_text=f"lport:{port} listen")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("6")
        for _ in range(3):  # remote host, network, local port, process
            await pilot.press("g")
        await wait_for(pilot, lambda: "process" in app.top_view.grouping)
        table = app.top_view.active_table
        await wait_for(pilot, lambda: table.row_count == 1)
        labels, (row,) = table.export_rows()
        assert len(row[0]) == GROUP_NAME_WIDTH and row[0].endswith("…")
        assert row[labels.index("LISTEN")] == "1"
