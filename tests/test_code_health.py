"""The house rules that CI checks through the README's one test command: import contracts, types, and the
Textual behaviour the connection table relies on."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import pytest
from fixed_data import machine
from textual.app import App, ComposeResult

from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot
from netscope.widgets.connection_table import ConnectionTable

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: app -> widgets -> collectors, and no drawing below."""
    result = subprocess.run([str(BIN / "lint-imports"), "--no-cache", str(ROOT / "pyproject.toml")],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_ui_and_the_worker_load_only_what_they_use_at_start() -> None:
    """Modules loaded at start stay resident for the whole session: the UI does not load the recording package
    beyond the tee that records on demand, and the collector worker none of the standard modules it once pulled
    in for one function each (concurrent.futures with logging, statistics with fractions and decimal, tempfile):
    together 3 MB of resident memory, measured (benchmarks/README.md)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, netscope.app.cli, netscope.app.netscope_app; print(*sys.modules)"],
        capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert "netscope.collectors.recording.tee" in loaded
    assert not {f"netscope.collectors.recording.{name}" for name in ("reader", "writer", "replay")} & set(loaded)
    worker = subprocess.run(
        [sys.executable, "-c", "import sys, netscope.collectors.worker; print(*sys.modules)"],
        capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert "netscope.collectors.connections" in worker
    assert not {"concurrent.futures", "logging", "statistics", "tempfile"} & set(worker)


def test_the_ui_process_maps_no_openssl() -> None:
    """The UI never speaks TLS, and keeps OpenSSL out of its process (4.2 MB resident, measured): the real UI in a
    pseudo-terminal draws its table with neither libssl nor libcrypto mapped."""
    pid, terminal = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "netscope", "--no-config"])
    try:
        screen = b""
        deadline = time.monotonic() + 30
        while b"Proto" not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.5)
            if ready:
                screen += os.read(terminal, 65536)
        assert b"Proto" in screen, screen[-500:]
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libpython" in maps or "python" in maps
        assert "libssl" not in maps and "libcrypto" not in maps
    finally:
        for child in psutil.Process(pid).children(recursive=True):
            child.kill()
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(terminal)


def test_the_package_type_checks(tmp_path: Path) -> None:
    """mypy, at the strictness pyproject.toml states ([tool.mypy] strict), over the package but not the tests.

    The repository's root is the package `netscope` (setuptools package-dir), so mypy is shown it under that
    name through a link in a temporary folder."""
    (tmp_path / "netscope").symlink_to(ROOT, target_is_directory=True)
    packages = ["netscope.app", "netscope.collectors", "netscope.widgets", "netscope.styles"]
    result = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"),
         "-m", "netscope", "-m", "netscope.__main__", *(arg for p in packages for arg in ("-p", p))],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "MYPYPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


class _TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ConnectionTable(id="connections")


async def test_the_table_s_scrollbar_follows_its_row_count_without_a_layout_pass() -> None:
    """ConnectionTable sets its virtual size without a full repaint and then asks Textual's Widget._scroll_update
    to resize the scrollbar and clamp the scroll position. That is private API: pyproject.toml pins Textual to the
    major version tested, and this fails if the behaviour changes under it."""
    sockets = machine()
    many = Snapshot(1.0, {sock.key: sock for sock in sockets})
    few = Snapshot(2.0, {sock.key: sock for sock in sockets[:15]})
    app = _TableApp()
    async with app.run_test(size=(120, 12)) as pilot:
        table = app.query_one(ConnectionTable)
        table.set_folding(False)  # a row per socket
        table.apply_diff(diff_snapshots(None, many))
        await pilot.pause()
        assert table.virtual_size.height == len(sockets) + 1  # the header line and the rows
        assert table.vertical_scrollbar.window_virtual_size == len(sockets) + 1
        table.scroll_end(animate=False)
        await pilot.pause()
        assert table.scroll_y == table.max_scroll_y > 0
        table.apply_diff(diff_snapshots(many, few))
        await pilot.pause()
        table.expire_highlights(1e12)  # the closed rows stop lingering
        await pilot.pause()
        assert table.row_count == 15 and table.virtual_size.height == 16
        assert table.vertical_scrollbar.window_virtual_size == 16
        assert table.scroll_y <= table.max_scroll_y == 16 - 11  # never past the end of the shorter table
        table.apply_diff(diff_snapshots(few, Snapshot(3.0, {})))
        table.expire_highlights(1e12)
        await pilot.pause()
        assert table.scroll_y == 0 and not table.show_vertical_scrollbar


@pytest.mark.parametrize("name", ["lint-imports", "mypy"])
def test_the_checkers_are_installed_with_the_test_extras(name: str) -> None:
    assert (BIN / name).exists(), f"{name} is missing: pip install -e '.[test]'"


def test_every_system_reader_is_under_the_readers_contract() -> None:
    """A new module in collectors/ must be named in the contract that keeps readers off collectors/session."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"]
                   if c.get("forbidden_modules") == ["netscope.collectors.session"]]
    readers = {f"netscope.collectors.{path.stem}" for path in (ROOT / "collectors").glob("*.py")
               if path.stem != "__init__"}
    readers |= {f"netscope.collectors.{path.parent.name}" for path in (ROOT / "collectors").glob("*/__init__.py")
                if path.parent.name != "session"}
    assert set(contract["source_modules"]) == readers
