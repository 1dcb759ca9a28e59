"""[keys] in the config file remaps bindings by id; a bad entry is reported with its line, the default kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support import Peer, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.app.screens.confirm_kill import ConfirmKillScreen
from netscope.app.screens.help import HelpScreen
from netscope.collectors.session.config import load_config


async def test_keys_remap_by_id_and_bad_entries_are_reported(tmp_path: Path,
                                                             spawn_peer: Callable[..., Peer]) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[keys]\nkill = "ctrl+k"\nno_such_key = "z"\nfilter = 42\nstatistics_zeros = "Z"\n')
    config = load_config(path)
    assert config.keys == {"kill": "ctrl+k", "no_such_key": "z", "statistics_zeros": "Z"}
    assert config.warnings == [f'{path}, line 4: keys.filter should be a key name such as "ctrl+k" or "k,f9", '
                               "not a number (42); the default key is kept"]
    server = spawn_peer("server", "--name", "ns-keymap")
    app = NetscopeApp(interval=0.3, filter_text=f"lport:{server.port} listen", keys=config.keys,
                      key_places=config.key_places, notices=config.warnings)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        unknown = f"{path}, line 3: keys.no_such_key is not a key netscope has"
        assert any(unknown in message for message in app.notices.messages)
        await pilot.press("k")  # no longer kill
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmKillScreen)
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKillScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmKillScreen))
        await pilot.press("question_mark")  # the help shows the key as remapped, with its id
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        assert any(keys == "^k" and ids == "kill" for keys, _what, ids in screen.keys), screen.keys
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        # A key of a view not shown yet, which is mounted only when first shown: known, and remapped there.
        assert not any("statistics_zeros" in message for message in app.notices.messages)
        assert not app.statistics_view.is_mounted
        await pilot.press("4")
        await wait_for(pilot, lambda: app.statistics_view.is_mounted and app.active_view == "statistics")
        await pilot.press("z")
        await pilot.pause(0.2)
        assert not app.statistics_view.hide_zeros
        await pilot.press("Z")
        await wait_for(pilot, lambda: app.statistics_view.hide_zeros)
    assert server.process.poll() is None
