"""The settings file: where it is, what it may hold, what a bad one does, and writing `columns` back."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from netscope.collectors.session.alerts import Thresholds
from netscope.collectors.session.config import (
    THRESHOLD_NAMES,
    Config,
    apply_threshold_overrides,
    config_path,
    load_config,
    save_columns,
)

tomllib = pytest.importorskip("tomllib", reason="reading settings needs Python 3.11's tomllib")

GOOD = """\
# netscope settings
interval = 2.5
cpu_limit = 5
columns = ["bytes_sent", "rtt"]

[alerts]
syn_recv = 300        # a busy front end
close_wait = 50
close_wait_refreshes = 5
per_remote_ip = 0     # behind a NAT: off
listen_drops = 10
"""


KNOWN = "interval, cpu_limit, columns, [alerts], [keys], [metrics]"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_values_are_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config == Config(
        thresholds=Thresholds(
            syn_recv=300, syn_recv_rise=50, close_wait=50, close_wait_refreshes=5, per_remote_ip=0, listen_drops=10
        ),
        columns=["bytes_sent", "rtt"],
        interval=2.5,
        warnings=[],
        cpu_limit=5.0,
    )


def test_a_missing_file_is_the_defaults_and_an_empty_one_too(tmp_path: Path) -> None:
    assert load_config(tmp_path / "nowhere.toml") == Config(Thresholds(), [], None, [])
    assert load_config(write(tmp_path, "# nothing yet\n")) == Config(Thresholds(), [], None, [])


def test_unknown_keys_are_ignored_with_a_warning_naming_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'interval = 1\ncolour = "blue"\n\n[alerts]\nsyn_recv = 150\nsyn_flood = 3\n\n[theme]\nname = "dark"\n',
    )
    config = load_config(path)
    assert config.interval == 1.0 and config.thresholds.syn_recv == 150
    assert config.warnings == [
        f"{path}, line 2: colour is not a setting netscope knows ({KNOWN}); ignored",
        f"{path}, line 6: alerts.syn_flood is not an alert setting (known: {', '.join(THRESHOLD_NAMES)}); ignored",
        f"{path}, line 8: theme is not a setting netscope knows ({KNOWN}); ignored",
    ]


def test_wrong_types_and_ranges_keep_the_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "interval = 0.01\n"
        "columns = [\"rtt\", 5, \"\", \"rtt\", \"cwnd\"]\n"
        "[alerts]\n"
        "syn_recv = -5\n"
        "syn_recv_rise = \"lots\"\n"
        "close_wait = 12.5\n"
        "close_wait_refreshes = 0\n"
        "per_remote_ip = true\n"
        "listen_drops = 3.0\n",
    )  # fmt: skip
    config = load_config(path)
    assert config.thresholds == Thresholds(listen_drops=3)  # 3.0 is plainly 3; the rest stay at their defaults
    assert config.interval is None
    assert config.columns == ["rtt", "cwnd"]  # the usable names, once each
    assert config.warnings == [
        f"{path}, line 1: interval should be at least 0.1 seconds, not 0.01; ignored",
        f"{path}, line 2: columns holds a number (5), which is not a column name; that item is ignored",
        f"{path}, line 2: columns holds a string (''), which is not a column name; that item is ignored",
        f"{path}, line 4: alerts.syn_recv should be at least 0 (0 turns the alert off), not -5; the default 100 "
        "is kept",
        f"{path}, line 5: alerts.syn_recv_rise should be a whole number, not a string ('lots'); the default 50 is "
        "kept",
        f"{path}, line 6: alerts.close_wait should be a whole number, not a number (12.5); the default 20 is kept",
        f"{path}, line 7: alerts.close_wait_refreshes should be at least 1, not 0; the default 3 is kept",
        f"{path}, line 8: alerts.per_remote_ip should be a whole number, not a boolean (true); the default 500 is "
        "kept",
    ]


def test_a_cpu_limit_out_of_range_or_not_a_number_is_ignored_with_a_warning(tmp_path: Path) -> None:
    for value, problem in (("150", "should be from 0 to 100 (percent of one core), not 150"),
                           ("nan", "should be from 0 to 100 (percent of one core), not nan"),
                           ('"low"', "should be a percentage of one core, not a string ('low')")):
        path = write(tmp_path, f"cpu_limit = {value}\n")
        config = load_config(path)
        assert config.cpu_limit is None
        assert config.warnings == [f"{path}, line 1: cpu_limit {problem}; ignored"]


def test_whole_tables_and_values_of_the_wrong_shape(tmp_path: Path) -> None:
    path = write(tmp_path, 'alerts = 5\ninterval = "fast"\ncolumns = "rtt"\n')
    config = load_config(path)
    assert config == Config(Thresholds(), [], None, config.warnings)
    assert config.warnings == [
        f"{path}, line 1: alerts should be a table ([alerts]), not a number (5); ignored",
        f"{path}, line 2: interval should be a number of seconds, not a string ('fast'); ignored",
        f"{path}, line 3: columns should be a list of column names, not a string ('rtt'); ignored",
    ]
    # Dotted keys have no line of their own to point at: the path alone.
    path = write(tmp_path, "alerts.nonsense = 1\n")
    assert load_config(path).warnings == [
        f"{path}: alerts.nonsense is not an alert setting (known: {', '.join(THRESHOLD_NAMES)}); ignored"
    ]


def test_bad_toml_is_ignored_whole_and_the_warning_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "interval = 2\n[alerts]\nsyn_recv = = 5\n")
    config = load_config(path)
    assert (config.thresholds, config.interval, config.columns) == (Thresholds(), None, [])
    (warning,) = config.warnings
    assert warning.startswith(f"{path}: not valid TOML: ") and "line 3" in warning
    assert warning.endswith("; the file is ignored, using the defaults")


def test_unreadable_and_undecodable_files_warn(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'interval = 1\ncolumns = ["r\xfftt"]\n')
    assert load_config(path).warnings == [
        f"{path}, line 2: not UTF-8 text; the file is ignored, using the defaults"
    ]
    directory = tmp_path / "a-directory.toml"
    directory.mkdir()
    (warning,) = load_config(directory).warnings
    assert warning.startswith(f"{directory}: cannot be read (") and warning.endswith("; using the defaults")


def test_where_the_file_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NETSCOPE_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert config_path() == tmp_path / "home" / ".config" / "netscope" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "netscope" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # invalid by the XDG spec: ignored
    assert config_path() == tmp_path / "home" / ".config" / "netscope" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NETSCOPE_CONFIG", str(tmp_path / "explicit.toml"))
    assert config_path() == tmp_path / "explicit.toml"  # wins over XDG
    monkeypatch.setenv("NETSCOPE_CONFIG", "")  # set but empty: as if unset
    assert config_path() == tmp_path / "xdg" / "netscope" / "config.toml"
    # load_config() and save_columns() with no path use it.
    monkeypatch.setenv("NETSCOPE_CONFIG", str(tmp_path / "explicit.toml"))
    save_columns(["rtt"])
    assert load_config().columns == ["rtt"] and (tmp_path / "explicit.toml").exists()


def test_save_columns_keeps_everything_else(tmp_path: Path) -> None:
    original = (
        "# my netscope settings\n"
        "interval = 2   # seconds\n"
        "\n"
        "# the columns I like\n"
        "columns = [\n"
        '    "rtt",      # round trip ] time\n'
        '    "a]b",\n'
        "]  # chosen in the UI\n"
        "\n"
        "[alerts]\n"
        "syn_recv = 300  # busy\n"
    )
    path = write(tmp_path, original)
    os.chmod(path, 0o640)
    save_columns(["bytes_sent", 'quote"and\\back'], path)
    text = path.read_text(encoding="utf-8")
    assert text == original.replace(
        'columns = [\n    "rtt",      # round trip ] time\n    "a]b",\n]',
        'columns = ["bytes_sent", "quote\\"and\\\\back"]',
    )
    assert text.endswith("]  # chosen in the UI\n\n[alerts]\nsyn_recv = 300  # busy\n")
    config = load_config(path)
    assert config.columns == ["bytes_sent", 'quote"and\\back'] and config.thresholds.syn_recv == 300
    assert config.interval == 2.0 and config.warnings == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the file keeps its permissions
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary left behind

    # Saved again, and emptied: still one key, the rest untouched.
    save_columns([], path)
    assert tomllib.loads(path.read_text(encoding="utf-8"))["columns"] == []
    assert path.read_text(encoding="utf-8").count("columns =") == 1


def test_save_columns_adds_the_key_above_the_first_table_or_creates_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# settings\n[alerts]\nclose_wait = 5\n")
    save_columns(["rtt"], path)
    assert path.read_text(encoding="utf-8") == '# settings\ncolumns = ["rtt"]\n[alerts]\nclose_wait = 5\n'
    assert load_config(path).thresholds.close_wait == 5

    no_newline = write(tmp_path, "interval = 3")
    save_columns(["cwnd", "tab\there", "ünïcode"], no_newline)
    assert (
        no_newline.read_text(encoding="utf-8") == 'interval = 3\ncolumns = ["cwnd", "tab\\u0009here", "ünïcode"]\n'
    )
    assert load_config(no_newline).columns == ["cwnd", "tab\there", "ünïcode"]

    fresh = tmp_path / "deep" / "er" / "config.toml"
    save_columns(["rtt"], fresh)
    assert fresh.read_text(encoding="utf-8") == 'columns = ["rtt"]\n'


def test_a_columns_key_inside_a_table_is_not_the_one(tmp_path: Path) -> None:
    path = write(tmp_path, '[alerts]\nsyn_recv = 5\n[other]\ncolumns = ["x"]\n')
    save_columns(["rtt"], path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["columns"] == ["rtt"] and data["other"] == {"columns": ["x"]}


def test_cli_overrides() -> None:
    base = Thresholds(syn_recv=300)
    result = apply_threshold_overrides(base, ["syn_recv=200", "close-wait=7", " per_remote_ip = 0 "])
    assert result == Thresholds(syn_recv=200, close_wait=7, per_remote_ip=0)
    assert base.syn_recv == 300  # a new object; the one given is left alone
    assert apply_threshold_overrides(base, []) == base
    names = ", ".join(THRESHOLD_NAMES)
    bad = {
        "syn_recv": f"write NAME=VALUE, e.g. syn_recv=200; names: {names}",
        "=5": f"write NAME=VALUE, e.g. syn_recv=200; names: {names}",
        "syn_recv=": f"write NAME=VALUE, e.g. syn_recv=200; names: {names}",
        "synrecv=5": f"unknown alert setting 'synrecv'; names: {names}",
        "syn_recv=-1": "'-1' is not a whole number (0 or more)",
        "syn_recv=1.5": "'1.5' is not a whole number (0 or more)",
        "syn_recv=lots": "'lots' is not a whole number (0 or more)",
        "close_wait_refreshes=0": "close_wait_refreshes must be at least 1",
    }
    for override, message in bad.items():
        with pytest.raises(ValueError) as raised:
            apply_threshold_overrides(base, ["syn_recv=1", override])
        assert str(raised.value) == f"--alert {override!r}: {message}"
