"""What the running app costs: memory, CPU, terminal output, start-up, and `--once --json` against `ss -tanp`.

    python benchmarks/resources.py [--connections N ...]     (default: 1000 10000 50000; 3 to 5 minutes per N)

For each N it holds N established loopback connections (2N sockets, `loopback_load.py` via compare.py's
start_load) and measures:

* `netscope --once --json` and `netscope --once --count` against `ss -tanp` and `ss -tan`, whole commands with
  start-up, output to /dev/null: medians of --once-reps interleaved rounds.
* time to the first full table, from fork+exec to the moment the counter bar says `ALL:T` with T >= 2N,
  read from the real app in a pseudo-terminal (TERM=xterm-256color, 160x45): median of --reps launches. That is
  the worker's first screen (the table's top rows and every socket's count) where it sends one; so also the time
  until the status line stops saying "loading the rest" (the whole table: scrolling, sorting and filtering see
  every socket). The same from exec of a headless `App.run_test` process (no terminal) until the table holds 2N
  rows (the whole table).
* one long run of the real app in the pseudo-terminal, at its default 1 s interval, with no key pressed:
  - memory: VmRSS of the UI process and of its collector worker (`python -m netscope.collectors.worker`) from
    /proc/PID/status, --settle seconds after the first full table; VmHWM (the peak) at the end of the run;
  - terminal output in the first minute: bytes read from the pty master per second over --window seconds from
    --settle s after the first table (in its first minute the Age column counts seconds: `>12s`);
  - steady state, from 61 s after the first table on, over --window seconds: bytes per second to the terminal,
    CPU (utime + stime from /proc/PID/stat) of the UI and of the worker as % of one core, and CPU per refresh tick
    (each process's CPU over the window divided by the frames the worker sent, counted by tick_counter/'s
    sitecustomize: one refresh each);
  - with churn: `churn_load.py` replaces --churn connections a second on the first screen; bytes and CPU again.

Prints the details as it goes (with the load average and the sockets in the table, to tell a quiet machine from a
busy one), where the terminal bytes go (bytes/s per screen row, with the row's text, and how much of it rewrote a
row exactly as it was), then one Markdown table. Screen text is read with pyte (a terminal emulator, a
benchmark-only dependency) when it is installed, else from the raw stream with escape codes stripped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from compare import bytecode_as_installed, check_limits, machine, start_load, stop_load

try:
    import pyte  # optional: benchmark-only, reads the screen as a terminal would
except ImportError:
    pyte = None

HERE = Path(__file__).parent
CHURN = HERE / "churn_load.py"
TICK_COUNTER = HERE / "tick_counter"  # a sitecustomize that counts the worker's frames (see its docstring)
COLUMNS, LINES = 160, 45
CLK_TCK = os.sysconf("SC_CLK_TCK")
FIRST_MINUTE = 61.0  # past it every Age shows minutes and changes once a minute
# The counter bar's ALL: `ALL:T`, or `ALL:S/T` while a filter is on.
STATUS = re.compile(r"ALL:(\d+)(?:/(\d+))?")
# The status line once a refresh is in the table (its read time; 0 before any): not while it says that only a first
# screen is shown ("loading the rest"), nor before anything came.
REFRESHED = re.compile(r"read in [1-9]\d* ms")
CURSOR_TO = re.compile(rb"\x1b\[(\d+);(\d+)H")
ESCAPE = re.compile(rb"\x1b\[[0-9;?<>=$ ]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
ISSUE_14_RSS_MB = {50_000: 150, 250_000: 600}  # connections -> MB for both processes
TARGETS = {
    "rss": "< 250 MB at 50,000",
    "cpu": "< 3% at 1,000",
    "bytes": "< 4 KB/s",
    "first": "< 1 s",
    "once": "<= 0.5x at 50,000",
    "tick": "< 250 ms at 50,000",
}


def netscope_command() -> list[str]:
    # The console script beside this interpreter is what users run; `-m netscope` where it is not installed so.
    script = Path(sys.executable).with_name("netscope")
    return [str(script)] if script.exists() else [sys.executable, "-m", "netscope"]


# ------------------------------------------------------------------------------------------------ /proc


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces: split after it
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def worker_of(ui_pid: int) -> int | None:
    try:
        for child in psutil.Process(ui_pid).children():
            if "netscope.collectors.worker" in " ".join(child.cmdline()):
                return child.pid
    except psutil.Error:
        pass
    return None


@dataclass
class Sample:
    at: float
    ui_cpu: float
    worker_cpu: float
    frames: int
    worker: int

    @classmethod
    def take(cls, ui_pid: int, worker_pid: int, ticks: Path) -> Sample:
        frames = ticks.stat().st_size if ticks.exists() else 0
        return cls(time.monotonic(), cpu_seconds(ui_pid), cpu_seconds(worker_pid), frames, worker_pid)


@dataclass
class Usage:
    """CPU over one window, as % of one core and per refresh tick."""

    seconds: float
    ui_percent: float
    worker_percent: float
    ticks: int
    ui_tick_ms: float | None
    worker_tick_ms: float | None

    @classmethod
    def between(cls, a: Sample, b: Sample) -> Usage:
        if a.worker != b.worker:
            raise RuntimeError("the collector worker restarted during the window")
        if b.frames == a.frames:
            raise RuntimeError("no frames counted: is another sitecustomize shadowing benchmarks/tick_counter?")
        span = b.at - a.at
        ticks = b.frames - a.frames
        ui, worker = b.ui_cpu - a.ui_cpu, b.worker_cpu - a.worker_cpu
        return cls(span, 100 * ui / span, 100 * worker / span, ticks,
                   1000 * ui / ticks if ticks else None, 1000 * worker / ticks if ticks else None)


# ---------------------------------------------------------------------------------------- the terminal


@dataclass
class Chunk:
    at: float
    size: int
    rows: Counter[int]  # bytes per screen row (1-based), 0 for what precedes any cursor move
    same: int  # bytes that left their row exactly as it was, text and colours (known only with pyte)


class Terminal:
    """The app on a pseudo-terminal: everything it writes is read, timed, and attributed to screen rows."""

    def __init__(
        self, argv: list[str], size: tuple[int, int] = (COLUMNS, LINES), extra_env: dict[str, str] | None = None
    ) -> None:
        env = dict(os.environ, TERM="xterm-256color", **(extra_env or {}))
        for name in ("NO_COLOR", "TEXTUAL", "TEXTUAL_DRIVER"):
            env.pop(name, None)
        self.started = time.monotonic()
        pid, master = pty.fork()
        if pid == 0:  # the child: size the terminal before the app can ask for it, then become the app
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.master = pid, master
        self.chunks: list[Chunk] = []
        self.row_text: dict[int, str] = {}
        self.status: tuple[int, int] | None = None
        self.status_at = 0.0
        self.refreshed = False  # the status line says a refresh is in the table (REFRESHED)
        self.last_at = 0.0  # when the last output was read
        self.exited = False
        self._row = 0
        self._text_tail = ""
        self._exit_status: int | None = None
        self._screen: Any = None
        self._stream: Any = None
        if pyte is not None:
            self._screen = pyte.Screen(*size)
            self._stream = pyte.ByteStream(self._screen)

    def _take(self, data: bytes, at: float) -> None:
        rows: Counter[int] = Counter()
        position = 0
        for match in CURSOR_TO.finditer(data):
            rows[self._row] += match.start() - position
            self._note_text(self._row, data[position:match.start()])
            self._row, position = int(match.group(1)), match.start()
        rows[self._row] += len(data) - position
        self._note_text(self._row, data[position:])
        same = 0
        if self._stream is not None:
            buffer, columns = self._screen.buffer, self._screen.columns
            written = [row for row in rows if 1 <= row <= self._screen.lines]
            before = {row: [buffer[row - 1][x] for x in range(columns)] for row in written}
            self._stream.feed(data)
            same = sum(rows[row] for row in written if before[row] == [buffer[row - 1][x] for x in range(columns)])
            found = [STATUS.search(line) for line in self._screen.display]
            self.refreshed = any(REFRESHED.search(line) for line in self._screen.display)
        else:
            # No emulator: the counter bar is written as one run of text, so strip escapes and look at the end.
            self._text_tail = (self._text_tail + ESCAPE.sub(b"", data).decode(errors="replace"))[-4096:]
            found = list(STATUS.finditer(self._text_tail))[-1:]
            self.refreshed = self.refreshed or REFRESHED.search(self._text_tail[-1024:]) is not None
        self.chunks.append(Chunk(at, len(data), rows, same))
        self.last_at = at
        for match in found:
            if match:
                shown = int(match.group(1))
                status = (shown, int(match.group(2) or shown))  # ALL:T without a filter: all are shown
                if status != self.status:
                    self.status, self.status_at = status, at

    def _note_text(self, row: int, piece: bytes) -> None:
        text = ESCAPE.sub(b"", CURSOR_TO.sub(b"", piece)).decode(errors="replace").strip()
        if text:
            self.row_text[row] = text

    def screen_row(self, row: int) -> str:
        if self._screen is not None:
            return str(self._screen.display[row - 1]).strip()
        return self.row_text.get(row, "")

    def pump(self, until: float, done: Callable[[], bool] | None = None) -> bool:
        """Read until `until` (monotonic) or until done() is true, which returns True."""
        while True:
            if done is not None and done():
                return True
            left = until - time.monotonic()
            if left <= 0 or self.exited:
                return False
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                data = os.read(self.master, 1 << 16)
            except OSError as error:
                if error.errno != errno.EIO:
                    raise
                data = b""
            if not data:  # EIO or EOF: the app and everything on its terminal are gone
                self.exited = True
                continue
            self._take(data, time.monotonic())

    def wait_first_table(self, expected: int, timeout: float) -> float:
        """Seconds from fork to the first screen whose counter bar counts at least `expected` sockets."""
        def full() -> bool:
            return self.status is not None and self.status[1] >= expected

        if not self.pump(time.monotonic() + timeout, full):
            raise RuntimeError(
                f"no full table within {timeout:.0f} s (status {self.status}, exited {self.exited});"
                f" last screen rows: {[self.screen_row(r) for r in range(LINES - 3, LINES + 1)]}"
            )
        return self.status_at - self.started

    def wait_whole_table(self, expected: int, timeout: float) -> float:
        """Seconds from fork until the counter bar counts `expected` and the status line says a refresh is in the
        table, not only a first screen: every socket is (scrolling, sorting and filtering see them all)."""
        if not self.pump(time.monotonic() + timeout,
                         lambda: self.status is not None and self.status[1] >= expected and self.refreshed):
            raise RuntimeError(f"the table did not finish loading within {timeout:.0f} s")
        return self.last_at - self.started

    def bytes_between(self, start: float, end: float) -> tuple[int, int, Counter[int]]:
        """(all bytes, bytes that rewrote a row unchanged, bytes per row) read in [start, end)."""
        total = same = 0
        rows: Counter[int] = Counter()
        for chunk in self.chunks:
            if start <= chunk.at < end:
                total += chunk.size
                same += chunk.same
                rows.update(chunk.rows)
        return total, same, rows

    @property
    def compares_rows(self) -> bool:
        return self._screen is not None

    def close(self) -> None:
        """Quit as a user would (q); kill the app and its worker if that does not end them within 10 s."""
        worker = worker_of(self.pid)
        if not self.exited:
            with contextlib.suppress(OSError):  # the app may be gone already
                os.write(self.master, b"q")
            self.pump(time.monotonic() + 10, lambda: self._reaped(block=False))
        if not self._reaped(block=False):
            for pid in (self.pid, worker):
                if pid is not None and psutil.pid_exists(pid):
                    os.kill(pid, signal.SIGKILL)
            self._reaped(block=True)
        os.close(self.master)

    def _reaped(self, block: bool) -> bool:
        if self._exit_status is not None:
            return True
        pid, code = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self._exit_status = code
        return True


# ------------------------------------------------------------------------------------------- measures


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def time_commands(commands: dict[str, list[str]], rounds: int) -> dict[str, float | None]:
    """Medians of whole commands (start-up included, output to /dev/null), in interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    runnable = {name: argv for name, argv in commands.items() if shutil.which(argv[0]) or Path(argv[0]).exists()}
    for argv in runnable.values():  # fail loudly once, rather than time an error message
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    for _ in range(rounds):
        for name, argv in runnable.items():
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            samples[name].append(time.perf_counter() - started)
    return {name: median(values) for name, values in samples.items()}


def headless_first_table(expected: int) -> float:
    """Seconds from exec of a process running the app under run_test (no terminal) to its first full table."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, "--headless-probe", str(expected)],
        capture_output=True, text=True, check=True, timeout=180,
    )
    return float(done.stdout.split()[-1]) - started  # CLOCK_MONOTONIC is one clock for every process


async def _probe(expected: int) -> None:
    from netscope.app.netscope_app import NetscopeApp  # imported here: its import time is part of start-up

    app = NetscopeApp(interval=1.0)
    async with app.run_test(size=(COLUMNS, LINES)) as pilot:
        while app.refresh_count < 1 or app.table.row_count < expected:
            await pilot.pause(0.01)
        print(time.monotonic(), flush=True)


def pty_first_table(expected: int, timeout: float) -> tuple[float, float]:
    """Seconds to the first table (counts and the top rows), and to the whole table."""
    terminal = Terminal(netscope_command())
    try:
        return terminal.wait_first_table(expected, timeout), terminal.wait_whole_table(expected, timeout)
    finally:
        terminal.close()


@dataclass
class Window:
    name: str
    bytes_per_s: float
    same_per_s: float | None  # of which rewrote rows unchanged; None without pyte
    rows: list[tuple[int, float, str]]  # (row, bytes/s, its text) for the rows that took the most
    usage: Usage


@dataclass
class LongRun:
    first_table: float
    sockets: tuple[int, int]  # the counter bar's total at the first table and after the steady window
    ui_rss: int
    worker_rss: int
    ui_hwm: int
    worker_hwm: int
    ui_rss_end: int
    worker_rss_end: int
    windows: list[Window] = field(default_factory=list)


def observe(terminal: Terminal, name: str, seconds: float, ui: int, worker: int, ticks: Path) -> Window:
    before = Sample.take(ui, worker, ticks)
    terminal.pump(before.at + seconds)
    after = Sample.take(ui, worker, ticks)
    total, same, rows = terminal.bytes_between(before.at, after.at)
    span = after.at - before.at
    top = [(row, count / span, terminal.screen_row(row)) for row, count in rows.most_common(6)]
    unchanged = same / span if terminal.compares_rows else None
    return Window(name, total / span, unchanged, top, Usage.between(before, after))


def long_run(expected: int, args: argparse.Namespace, ticks: Path) -> LongRun:
    path = os.pathsep.join(filter(None, [str(TICK_COUNTER), os.environ.get("PYTHONPATH")]))
    # `--cpu-limit 0`: the CPU rows are at a 1 s pace; with the default limit the worker would stretch it at 50,000
    # (self_limit.py measures that).
    terminal = Terminal([*netscope_command(), "--cpu-limit", "0"],
                        extra_env={"PYTHONPATH": path, "NETSCOPE_BENCH_TICKS": str(ticks)})
    churn: subprocess.Popen[str] | None = None
    try:
        first = terminal.wait_first_table(expected, args.timeout)
        first_at = terminal.started + first
        terminal.pump(first_at + args.settle)
        ui = terminal.pid
        worker = worker_of(ui)
        if worker is None:
            raise RuntimeError("no collector worker under the app")
        ui_rss, _ = memory_kb(ui)
        worker_rss, _ = memory_kb(worker)
        first_total = terminal.status[1] if terminal.status else 0
        run = LongRun(first, (first_total, 0), ui_rss, worker_rss, 0, 0, 0, 0)
        run.windows.append(observe(terminal, "first minute", args.window, ui, worker, ticks))
        terminal.pump(first_at + FIRST_MINUTE)
        run.windows.append(observe(terminal, "steady", args.window, ui, worker, ticks))
        run.ui_rss_end, run.ui_hwm = memory_kb(ui)
        run.worker_rss_end, run.worker_hwm = memory_kb(worker)
        run.sockets = (first_total, terminal.status[1] if terminal.status else 0)
        if args.churn > 0:
            churn = subprocess.Popen(
                [sys.executable, str(CHURN), "--count", "20", "--per-second", str(args.churn)],
                stdout=subprocess.PIPE, text=True,
            )
            terminal.pump(time.monotonic() + 3)  # the churn gets going and the first highlights appear
            assert churn.stdout is not None
            if not churn.stdout.readline().startswith("ready"):
                raise RuntimeError("churn_load.py failed")
            run.windows.append(observe(terminal, f"churn {args.churn:g}/s", args.window, ui, worker, ticks))
        return run
    finally:
        if churn is not None:
            churn.kill()
            churn.wait()
        terminal.close()


@dataclass
class Result:
    connections: int
    once: dict[str, float | None]
    pty_first: list[float]
    pty_whole: list[float]
    headless_first: list[float]
    run: LongRun
    load_average: tuple[str, str]  # /proc/loadavg before and after: how quiet the machine was


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(count: int, args: argparse.Namespace) -> Result:
    check_limits(count)
    before = load_average()
    loads = start_load(count)
    expected = 2 * count
    try:
        netscope = netscope_command()
        once = time_commands({
            "netscope --once --json": [*netscope, "--once", "--json"],
            "netscope --once --count": [*netscope, "--once", "--count"],
            "ss -tanp": ["ss", "-tanp"],
            "ss -tan": ["ss", "-tan"],  # issue 14's yardstick, in the same rounds
        }, args.once_reps)
        headless = [headless_first_table(expected) for _ in range(args.reps)]
        first, whole = zip(*(pty_first_table(expected, args.timeout) for _ in range(args.reps)), strict=True)
        with tempfile.TemporaryDirectory() as scratch:
            run = long_run(expected, args, Path(scratch) / "ticks")
    finally:
        stop_load(loads)
    return Result(count, once, list(first), list(whole), headless, run, (before, load_average()))


# ------------------------------------------------------------------------------------------- printing


def mb(kib: int) -> str:
    return f"{kib * 1024 / 1e6:,.0f} MB"


def secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def msec(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:,.0f} ms"


def print_details(result: Result) -> None:
    run = result.run
    print(f"\n{result.connections:,} connections ({2 * result.connections:,} load sockets):")
    print(f"  sockets in the table: {run.sockets[0]:,} at the first table, {run.sockets[1]:,} after the steady"
          f" window; load average {result.load_average[0]} before, {result.load_average[1]} after")
    for name, value in result.once.items():
        print(f"  {name:<26} {msec(value):>10}")
    print(f"  first full table, pty:      {', '.join(f'{x:.2f}' for x in result.pty_first)} s"
          f" (in the long run {run.first_table:.2f} s)")
    print(f"  whole table loaded, pty:    {', '.join(f'{x:.2f}' for x in result.pty_whole)} s")
    print(f"  first full table, headless: {', '.join(f'{x:.2f}' for x in result.headless_first)} s")
    print(f"  RSS {run.ui_rss / 1024:.0f} + {run.worker_rss / 1024:.0f} MiB (UI + worker) after the first table;"
          f" {run.ui_rss_end / 1024:.0f} + {run.worker_rss_end / 1024:.0f} MiB after the steady window;"
          f" peak {run.ui_hwm / 1024:.0f} + {run.worker_hwm / 1024:.0f} MiB")
    for window in run.windows:
        usage = window.usage
        same = "" if window.same_per_s is None else f" ({window.same_per_s:,.0f} B/s rewrote rows unchanged)"
        print(f"  {window.name}: {window.bytes_per_s:,.0f} B/s to the terminal{same};"
              f" CPU UI {usage.ui_percent:.1f}% worker {usage.worker_percent:.1f}% of a core"
              f" over {usage.seconds:.0f} s,"
              f" {usage.ticks} ticks: {usage.ui_tick_ms or 0:.0f} + {usage.worker_tick_ms or 0:.0f} ms per tick")
        for row, rate, text in window.rows:
            print(f"    row {row:>2}: {rate:7,.0f} B/s  {text[:90]}")


def print_table(results: list[Result]) -> None:
    def row(label: str, cells: list[str], target: str = "") -> None:
        print(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    print("\n| measurement | " + " | ".join(f"{r.connections:,} connections" for r in results) + " | target |")
    print("| --- | " + " | ".join("---:" for _ in results) + " | --- |")
    runs = [r.run for r in results]
    row("RSS after the first table, UI", [mb(r.ui_rss) for r in runs])
    row("RSS after the first table, worker", [mb(r.worker_rss) for r in runs])
    row("**RSS, UI + worker**", [mb(r.ui_rss + r.worker_rss) for r in runs], TARGETS["rss"])
    row("peak RSS (VmHWM), UI + worker", [mb(r.ui_hwm + r.worker_hwm) for r in runs])
    steady = [next(w for w in r.windows if w.name == "steady") for r in runs]
    row("CPU, UI (% of one core, 1 s interval)", [f"{w.usage.ui_percent:.1f}%" for w in steady])
    row("CPU, worker", [f"{w.usage.worker_percent:.1f}%" for w in steady])
    row("**CPU, UI + worker**", [f"{w.usage.ui_percent + w.usage.worker_percent:.1f}%" for w in steady],
        TARGETS["cpu"])
    row("CPU per tick, UI", [f"{w.usage.ui_tick_ms or 0:.0f} ms" for w in steady])
    row("CPU per tick, worker", [f"{w.usage.worker_tick_ms or 0:.0f} ms" for w in steady])
    row("**CPU per tick, UI + worker**",
        [f"{(w.usage.ui_tick_ms or 0) + (w.usage.worker_tick_ms or 0):.0f} ms" for w in steady], TARGETS["tick"])
    for name, label in (("first minute", "terminal output, first minute"),
                        ("steady", "**terminal output, steady**")):
        windows = [next(w for w in r.windows if w.name == name) for r in runs]
        row(label, [f"{w.bytes_per_s:,.0f} B/s" for w in windows], TARGETS["bytes"] if name == "steady" else "")
        if name == "steady":
            row("of which rewrote rows unchanged (text and colours)",
                ["n/a" if w.same_per_s is None else f"{w.same_per_s:,.0f} B/s" for w in windows])
    churned = [next((w for w in r.windows if w.name.startswith("churn")), None) for r in runs]
    if any(churned):
        name = next(w.name for w in churned if w)
        row(f"terminal output, {name} replaced on screen",
            [f"{w.bytes_per_s:,.0f} B/s" if w else "n/a" for w in churned])
    row("**first full table, pty** (median)", [secs(median(r.pty_first)) for r in results], TARGETS["first"])
    row("whole table loaded, pty (median)", [secs(median(r.pty_whole)) for r in results])
    row("first full table, headless run_test (median)", [secs(median(r.headless_first)) for r in results])
    for name in ("netscope --once --json", "netscope --once --count", "ss -tanp"):
        row(f"`{name}`", [msec(r.once[name]) for r in results])
    ratios = []
    for r in results:
        json_s, ss_s = r.once["netscope --once --json"], r.once["ss -tanp"]
        ratios.append(f"{json_s / ss_s:.2f}x" if json_s and ss_s else "n/a")
    row("**`--once --json` / `ss -tanp`**", ratios, TARGETS["once"])
    # Issue 14's targets, as ratios to one `ss -tan` of the same load, timed in the --once rounds above.
    row("`ss -tan`", [msec(r.once["ss -tan"]) for r in results])
    for label, seconds_of, target in (
        ("CPU per tick, UI + worker",
         lambda r, w: ((w.usage.ui_tick_ms or 0) + (w.usage.worker_tick_ms or 0)) / 1000, "≤ 0.75×"),
        ("first full table, pty", lambda r, w: median(r.pty_first), "≤ 4×"),
        ("whole table loaded, pty", lambda r, w: median(r.pty_whole), ""),
        ("`--once --json`", lambda r, w: r.once["netscope --once --json"], "≤ 4×"),
    ):
        cells = []
        for r, w in zip(results, steady, strict=True):
            base, seconds = r.once["ss -tan"], seconds_of(r, w)
            cells.append(f"{seconds / base:.2f}×" if base and seconds else "n/a")
        row(f"**{label} / `ss -tan`**", cells, target)
    # Issue 14's memory target is in megabytes, not a ratio: said here met or missed, and by how much.
    verdicts = []
    for result, run in zip(results, runs, strict=True):
        limit = ISSUE_14_RSS_MB.get(result.connections)
        total = (run.ui_rss + run.worker_rss) * 1024 / 1e6  # KiB -> MB, as mb() prints
        verdicts.append("n/a" if limit is None
                        else "met" if total <= limit else f"missed by {total - limit:,.0f} MB")
    row("**RSS, UI + worker, against issue 14's target**", verdicts, "≤ 150 MB at 50,000; ≤ 600 MB at 250,000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[1000, 10000, 50000], metavar="N")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of each measured window")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the first table before memory")
    parser.add_argument("--reps", type=int, default=3, help="launches for the time to the first table")
    parser.add_argument("--once-reps", type=int, default=5, help="interleaved rounds of --once and ss")
    parser.add_argument("--churn", type=float, default=5.0, help="connections replaced a second (0: none)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a first table")
    parser.add_argument("--headless-probe", type=int, metavar="SOCKETS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.headless_probe is not None:  # the child process of headless_first_table
        asyncio.run(_probe(args.headless_probe))
        return
    if any(count < 1 for count in args.connections):
        parser.error("--connections: at least 1")
    print(machine())
    print(bytecode_as_installed())
    print(f"screen text read with {'pyte' if pyte is not None else 'escape codes stripped (pyte not installed)'}")
    results = []
    for count in args.connections:
        started = time.monotonic()
        result = measure(count, args)
        results.append(result)
        print_details(result)
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    print_table(results)


if __name__ == "__main__":
    main()
