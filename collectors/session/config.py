"""netscope's settings file: the refresh interval, extra table columns, and the alert thresholds.

Where: `$NETSCOPE_CONFIG` if set, else `$XDG_CONFIG_HOME/netscope/config.toml`, else
`~/.config/netscope/config.toml`. A missing file is the defaults. The file is TOML:

    # refresh every 2 seconds (as --interval 2; the command line wins)
    interval = 2.0
    # refreshing may cost this % of one core before the interval stretches (as --cpu-limit; 0: never)
    cpu_limit = 20
    # extra connection table columns (the table's column chooser writes this key)
    columns = ["bytes_sent", "rtt"]

    [alerts]
    syn_recv = 100             # SYN_RECV sockets that alert by themselves
    syn_recv_rise = 50         # rise of SYN_RECV within one refresh that alerts
    close_wait = 20            # a process holding this many CLOSE_WAIT sockets ...
    close_wait_refreshes = 3   # ... rising for this many refreshes: a leak
    per_remote_ip = 500        # sockets with one remote address
    listen_drops = 1           # TcpExt ListenOverflows/ListenDrops moving by this much between samples

    [metrics]                  # the Prometheus endpoint (--metrics; the command line wins)
    address = "127.0.0.1:9850" # where --metrics serves when given no address
    top = 10                   # groups (ports, programs, networks, listeners) with their own series; rest "other"
    interfaces = 64            # interfaces with their own series, the busiest
    families = ["sockets", "listen", "ports", "processes", "remotes", "alerts", "interfaces", "netstat"]

    [keys]                     # remap keys by their id (? lists each key's id), as posting's keymaps do
    kill = "ctrl+k"
    filter = "slash,f"

Every key is optional. An alert threshold of 0 turns that alert off (`close_wait_refreshes` is at least 1);
`--alert NAME=VALUE` on the command line overrides one for a run.

A bad file never stops netscope: an unknown key, a value of the wrong type or out of range is ignored with a
warning (the default is kept), and a file that is not valid TOML is ignored whole, the warning giving the line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscope.collectors.limits import interval_problem
from netscope.collectors.regular_files import read_regular
from netscope.collectors.session.alerts import Thresholds
from netscope.collectors.session.metrics import MAX_TOP, MetricsSettings, families_problem

MAX_CONFIG_BYTES = 1 << 20  # a settings file is a few hundred bytes
# Textual key names joined by "+" (modifiers) and "," (several keys): "ctrl+k", "f9", "k,x".
_KEYS_VALUE = re.compile(r"[a-z0-9_]+(\+[a-z0-9_]+)*(,[a-z0-9_]+(\+[a-z0-9_]+)*)*", re.IGNORECASE)
THRESHOLD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Thresholds))
# The least each threshold may be: 0 turns an alert off, but a leak needs at least one refresh to grow over.
THRESHOLD_MINIMUM: dict[str, int] = {name: 1 if name == "close_wait_refreshes" else 0 for name in THRESHOLD_NAMES}


def config_path() -> Path:
    explicit = os.environ.get("NETSCOPE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    # The XDG spec says a relative $XDG_CONFIG_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "netscope" / "config.toml"


@dataclass(slots=True)
class Config:
    thresholds: Thresholds
    columns: list[str]  # extra table columns the user chose (issue 7, tcp_info); [] by default
    interval: float | None = None
    warnings: list[str] = field(default_factory=list)  # problems found reading the file, in plain words
    keys: dict[str, str] = field(default_factory=dict)  # [keys]: binding id -> keys, as posting's keymaps
    key_places: dict[str, str] = field(default_factory=dict)  # binding id -> "FILE, line N", for messages
    cpu_limit: float | None = None  # percent of one core refreshing may cost (collectors/pace.py); None: default
    metrics: MetricsSettings = field(default_factory=MetricsSettings)  # [metrics]: the Prometheus endpoint


def load_config(path: Path | None = None, *, named: bool = False) -> Config:
    """Read the settings; never raises. Whatever cannot be used is left at its default and said in `warnings`.

    A missing file is the defaults, silently, unless the user named it (`named`: --config, or $NETSCOPE_CONFIG
    when `path` is None): then that is said. Anything that is not a regular file is refused (a FIFO would hang)."""
    named = named or (path is None and bool(os.environ.get("NETSCOPE_CONFIG")))
    path = path if path is not None else config_path()
    config = Config(thresholds=Thresholds(), columns=[])
    try:
        raw = read_regular(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        if named:
            config.warnings.append(f"{path}: no such file; using the defaults")
        return config
    except OSError as exc:
        config.warnings.append(f"{path}: cannot be read ({exc.strerror or exc}); using the defaults")
        return config
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        config.warnings.append(f"{path}, line {line}: not UTF-8 text; the file is ignored, using the defaults")
        return config
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message ends "(at line 3, column 7)": the place is in it already.
        config.warnings.append(f"{path}: not valid TOML: {exc}; the file is ignored, using the defaults")
        return config
    except RecursionError:  # tomllib recurses once per nesting level: 100,000 "[" exhaust the stack
        config.warnings.append(f"{path}: nested too deeply to be a settings file; the file is ignored, using the "
                               "defaults")
        return config
    _Reader(path, text, config).read(data)
    return config


class _Reader:
    """Checks each key of a parsed file into `config`, warning about the ones it cannot use."""

    def __init__(self, path: Path, text: str, config: Config) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.config = config

    def warn(self, table: str, key: str, problem: str) -> None:
        name = f"{table}.{key}" if table else key
        line = _line_of(self.lines, table, key)
        where = f"{self.path}, line {line}" if line else str(self.path)
        self.config.warnings.append(f"{where}: {name} {problem}")

    def read(self, data: dict[str, Any]) -> None:
        for key, value in data.items():
            if key == "interval":
                self.read_interval(value)
            elif key == "cpu_limit":
                self.read_cpu_limit(value)
            elif key == "columns":
                self.read_columns(value)
            elif key in ("alerts", "keys", "metrics"):
                if not isinstance(value, dict):
                    self.warn("", key, f"should be a table ([{key}]), not {_kind(value)}; ignored")
                elif key == "alerts":
                    self.read_alerts(value)
                elif key == "metrics":
                    self.read_metrics(value)
                else:
                    self.read_keys(value)
            else:
                known = "interval, cpu_limit, columns, [alerts], [keys], [metrics]"
                self.warn("", key, f"is not a setting netscope knows ({known}); ignored")

    def read_interval(self, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.warn("", "interval", f"should be a number of seconds, not {_kind(value)}; ignored")
        elif (problem := interval_problem(float(value))) is not None:
            self.warn("", "interval", f"{problem}; ignored")
        else:
            self.config.interval = float(value)

    def read_cpu_limit(self, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.warn("", "cpu_limit", f"should be a percentage of one core, not {_kind(value)}; ignored")
        elif not 0 <= value <= 100:  # also NaN
            self.warn("", "cpu_limit", f"should be from 0 to 100 (percent of one core), not {value}; ignored")
        else:
            self.config.cpu_limit = float(value)

    def read_columns(self, value: object) -> None:
        if not isinstance(value, list):
            self.warn("", "columns", f"should be a list of column names, not {_kind(value)}; ignored")
            return
        columns: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                self.warn("", "columns", f"holds {_kind(item)}, which is not a column name; that item is ignored")
            elif item.strip() not in columns:
                columns.append(item.strip())
        self.config.columns = columns

    def read_keys(self, table: dict[str, Any]) -> None:
        """[keys]: binding id = "key" or "key1,key2". Whether the id exists is the screen's to say (it has the
        bindings); `key_places` keeps each entry's line for that."""
        for binding_id, value in table.items():
            if not isinstance(value, str) or not _KEYS_VALUE.fullmatch(value):
                self.warn("keys", binding_id, f"should be a key name such as \"ctrl+k\" or \"k,f9\", not "
                          f"{_kind(value)}; the default key is kept")
                continue
            self.config.keys[binding_id] = value
            line = _line_of(self.lines, "keys", binding_id)
            self.config.key_places[binding_id] = f"{self.path}, line {line}" if line else str(self.path)

    def read_alerts(self, table: dict[str, Any]) -> None:
        values: dict[str, int] = {}
        for key, value in table.items():
            if key not in THRESHOLD_NAMES:
                self.warn("alerts", key, f"is not an alert setting (known: {', '.join(THRESHOLD_NAMES)}); ignored")
                continue
            problem = _threshold_problem(key, value)
            if problem:
                self.warn("alerts", key, f"{problem}; the default {getattr(self.config.thresholds, key)} is kept")
            else:
                values[key] = int(value)
        self.config.thresholds = dataclasses.replace(self.config.thresholds, **values)


    def read_metrics(self, table: dict[str, Any]) -> None:
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "address":
                if not isinstance(value, str) or not value.strip():
                    self.warn("metrics", key, f"should be a string \"ADDRESS:PORT\", not {_kind(value)}; ignored")
                else:
                    values[key] = value.strip()  # checked where it is used, with the command line's
            elif key in ("top", "interfaces"):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP:
                    self.warn("metrics", key, f"should be a whole number from 1 to {MAX_TOP}, not {_kind(value)}; "
                              "ignored")
                else:
                    values[key] = value
            elif key == "families":
                problem = (f"should be a list of names, not {_kind(value)}" if not isinstance(value, list)
                           or not all(isinstance(item, str) for item in value) else families_problem(value))
                if problem:
                    self.warn("metrics", key, f"{problem}; all are kept on")
                else:
                    values[key] = frozenset(value)
            else:
                self.warn("metrics", key, "is not a metrics setting (known: address, top, interfaces, families); "
                          "ignored")
        self.config.metrics = dataclasses.replace(self.config.metrics, **values)


def _kind(value: object) -> str:
    """A TOML value's type in the file's words."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _threshold_problem(name: str, value: object) -> str:
    """Why `value` cannot be the threshold `name`, or "" if it can."""
    least = THRESHOLD_MINIMUM[name]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return ""  # 100.0 is plainly 100
        return f"should be a whole number, not {_kind(value)}"
    if value < least:
        return f"should be at least {least}{' (0 turns the alert off)' if least == 0 else ''}, not {value}"
    return ""


# A [table] or [[array of tables]] header line.
_TABLE_HEADER = re.compile(r"\s*\[\[?\s*([^\]\[]+?)\s*\]")


def _line_of(lines: list[str], table: str, key: str) -> int:
    """The 1-based line where `key` is set inside `table` ("" for the top level), or where a top-level `key` opens
    as a [key] table; 0 if not found (a dotted key, an inline table)."""
    pattern = re.compile(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
    current = ""
    for number, line in enumerate(lines, 1):
        header = _TABLE_HEADER.match(line)
        if header:
            current = header.group(1).strip("\"'")
            if not table and current == key:
                return number
            continue
        if current == table and pattern.match(line):
            return number
    return 0


# --- writing ---------------------------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, everything else as it is."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_COLUMNS_KEY = re.compile(r"""\s*(?:columns|"columns"|'columns')\s*=""")


def save_columns(columns: list[str], path: Path | None = None) -> None:
    """Set the `columns` key, leaving every other line of the file (comments too) as it was.

    Creates the directory and the file if needed; writes a temporary file and renames it over the old one, so a
    crash leaves the old file or the new one, never half of either."""
    path = path if path is not None else config_path()
    assignment = "columns = [" + ", ".join(_toml_string(column) for column in columns) + "]"
    try:
        text = path.read_text(encoding="utf-8")
        mode: int | None = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        text, mode = "", None
    lines = text.splitlines(keepends=True)
    span = _columns_span(lines)
    if span is not None:
        first, last, rest = span
        lines[first : last + 1] = [assignment + rest]
    else:
        # A top-level key must come before the first [table]: put it just above that, else at the end.
        at = next((i for i, line in enumerate(lines) if _TABLE_HEADER.match(line)), len(lines))
        if at == len(lines) and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.insert(at, assignment + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(lines))
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _columns_span(lines: list[str]) -> tuple[int, int, str] | None:
    """Where the top-level `columns = [...]` is: its first and last line, and what follows the value on the last
    line (a comment, the line end), kept. None if the file has no such key before its first table."""
    for first, line in enumerate(lines):
        if _TABLE_HEADER.match(line):
            return None
        if not _COLUMNS_KEY.match(line):
            continue
        # The value may span lines and hold brackets inside strings: the end is the first `]` at which the
        # lines so far parse as TOML.
        for last in range(first, len(lines)):
            ending = lines[last]
            for position, ch in enumerate(ending):
                if ch != "]":
                    continue
                candidate = "".join(lines[first:last]) + ending[: position + 1]
                if _parses(candidate):
                    return first, last, ending[position + 1 :] or "\n"
        # A value that never parses (the file is broken there already): replace its first line only.
        return first, first, "\n"
    return None


def _parses(fragment: str) -> bool:
    try:
        tomllib.loads(fragment)
    except tomllib.TOMLDecodeError:
        return False
    return True


# --- command line ----------------------------------------------------------------------------------------------


def apply_threshold_overrides(thresholds: Thresholds, overrides: list[str]) -> Thresholds:
    """Thresholds with `--alert NAME=VALUE` options applied (a new object); ValueError says what is wrong."""
    values: dict[str, int] = {}
    known = ", ".join(THRESHOLD_NAMES)
    for override in overrides:
        name, sep, text = override.partition("=")
        name = name.strip().lower().replace("-", "_")
        text = text.strip()
        if not sep or not name or not text:
            raise ValueError(f"--alert {override!r}: write NAME=VALUE, e.g. syn_recv=200; names: {known}")
        if name not in THRESHOLD_NAMES:
            raise ValueError(f"--alert {override!r}: unknown alert setting {name!r}; names: {known}")
        if not (text.isascii() and text.isdigit()) or len(text) > 9:
            raise ValueError(f"--alert {override!r}: {text!r} is not a whole number (0 or more)")
        value = int(text)
        least = THRESHOLD_MINIMUM[name]
        if value < least:
            raise ValueError(f"--alert {override!r}: {name} must be at least {least}")
        values[name] = value
    return dataclasses.replace(thresholds, **values)
