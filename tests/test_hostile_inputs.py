"""Files and numbers from outside that once hung or crashed netscope: each is refused with a message, at once."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Peer

from netscope.app.printed.export import write_export
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.regular_files import NotARegularFile, open_regular
from netscope.collectors.session.config import load_config
from netscope.widgets.formatting import spreadsheet_safe

NETSCOPE = [sys.executable, "-m", "netscope"]


def netscope(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A hang is the failure these tests look for: 30 s is far beyond any answer.
    return subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("args", [
    ["--info"], ["--at", "+1", "--json"], ["--once"], ["--watch", "--duration", "1"],
])  # fmt: skip
def test_a_fifo_as_a_recording_is_refused(fifo: Path, args: list[str]) -> None:
    result = netscope("--replay", str(fifo), *args)
    assert result.returncode == 1
    assert f"{fifo} is a FIFO (named pipe), not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_fifo_as_the_recording_to_write_is_refused(fifo: Path) -> None:
    result = netscope("--record", str(fifo), "--no-ui", "--duration", "1")
    assert result.returncode == 1 and "is a FIFO (named pipe), not a regular file" in result.stderr


def test_a_fifo_as_the_config_file_is_refused_and_the_defaults_kept(fifo: Path) -> None:
    result = netscope("--config", str(fifo), "--once", "--count")
    assert result.returncode == 0 and result.stdout.strip().isdigit()
    assert f"netscope: {fifo}: cannot be read ({fifo} is a FIFO (named pipe)" in result.stderr
    env_result = netscope("--once", "--count", env={"NETSCOPE_CONFIG": str(fifo)})
    assert env_result.returncode == 0 and "is a FIFO" in env_result.stderr


def test_directories_and_devices_are_refused_too(tmp_path: Path) -> None:
    for path, kind in ((tmp_path, "a directory"), (Path("/dev/null"), "a character device")):
        with pytest.raises(NotARegularFile, match=f"is {kind}, not a regular file"):
            open_regular(path)
    with pytest.raises(NotARegularFile, match="is a character device"):
        open_regular("/dev/null", write=True)


def test_a_deeply_nested_config_is_reported_and_netscope_starts(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("x = " + "[" * 100_000)
    config = load_config(path)
    assert config.warnings == [f"{path}: nested too deeply to be a settings file; the file is ignored, using the "
                               "defaults"]
    result = netscope("--config", str(path), "--once", "--count")
    assert result.returncode == 0 and "nested too deeply" in result.stderr and "Traceback" not in result.stderr


def test_a_named_config_file_that_is_missing_is_said(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = netscope("--config", str(missing), "--once", "--count")
    assert result.returncode == 0 and f"netscope: {missing}: no such file; using the defaults" in result.stderr
    assert load_config(missing, named=True).warnings == [f"{missing}: no such file; using the defaults"]
    assert netscope("--once", "--count", env={"NETSCOPE_CONFIG": str(missing)}).stderr.count("no such file") == 1


def test_a_huge_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# " + "x" * (2 << 20))
    (warning,) = load_config(path).warnings
    assert "is larger than 1,048,576 bytes" in warning


@pytest.mark.parametrize("value", ["inf", "1e308", "nan", "3601", "0.01"])
def test_intervals_that_cannot_work_are_refused(value: str) -> None:
    result = netscope("--interval", value, "--watch", "--duration", "1")
    assert result.returncode == 2
    assert "--interval" in result.stderr and "should be at" in result.stderr


def test_an_interval_in_the_config_file_is_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("interval = 1e308\n")
    config = load_config(path)
    assert config.interval is None
    assert config.warnings == [f"{path}, line 1: interval should be at most 3600 seconds (an hour), not 1e+308; "
                               "ignored"]


@pytest.mark.parametrize(("flag", "value"), [("--duration", "1e308"), ("--speed", "1e308"), ("--speed", "0")])
def test_other_numbers_are_bounded(flag: str, value: str) -> None:
    result = netscope(flag, value, "--watch")
    assert result.returncode == 2 and flag in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("name", "cell"), [
    ('=HYPERLINK("x")', '\'=HYPERLINK("x")'), ("@SUM(1+1)*cmd", "'@SUM(1+1)*cmd"),
    ("+1+cmd|' /C c'", "'+1+cmd|' /C c'"), ("-2+3+cmd", "'-2+3+cmd"),
    ("\tat=1", "\\x09at=1"),  # the tab is escaped as text already, so nothing can follow it into a formula
])  # fmt: skip
def test_csv_never_starts_a_formula(spawn_peer: Callable[..., Peer], tmp_path: Path, name: str, cell: str) -> None:
    server = spawn_peer("server", f"--name={name}")
    printed = netscope("--csv", "--filter", f"pid:{server.pid} listen")
    exported = tmp_path / "export.csv"
    write_export(exported, [sock for sock in ConnectionCollector().collect().sockets.values()
                            if sock.pid == server.pid], "csv")
    for text in (printed.stdout, exported.read_text()):
        (row,) = list(csv.DictReader(io.StringIO(text)))
        assert row["program"] == cell  # shown as text by a spreadsheet, never run
        assert row["local_port"] == str(server.port)  # numbers untouched


def test_plain_numbers_and_dashes_stay_numbers_in_csv() -> None:
    for cell in ("-5", "+3", "1,024.5", "-", "12%"):
        assert spreadsheet_safe(cell) == cell
    assert spreadsheet_safe("-cmd") == "'-cmd"


def test_a_fifo_as_the_namespace_is_refused(fifo: Path) -> None:
    result = netscope("--netns", str(fifo), "--once")
    assert result.returncode == 1
    assert "not a network namespace" in result.stderr or "needs root" in result.stderr
