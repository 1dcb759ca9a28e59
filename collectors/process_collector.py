"""A SnapshotSource that collects in a separate worker process.

Reading /proc for 100,000 sockets takes a Python thread hundreds of milliseconds of every second; in the UI's own
process that thread holds the GIL often enough to stall key presses for most of a second (measured: p95 0.75 s at
40,000 sockets). In a worker process it runs on another core, and the UI only applies the small diffs it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Any

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.gc_pause import freeze_first_read, gc_paused
from netscope.collectors.heap import give_back_free_pages
from netscope.collectors.model import FirstScreen, SnapshotDiff
from netscope.collectors.pace import DEFAULT_CPU_SHARE, PaceState
from netscope.collectors.sources import SourceDefaults
from netscope.collectors.wire import HEADER, DiffAssembler, WireFirstScreen, decode_frame
from netscope.collectors.worker_launch import worker_command

if TYPE_CHECKING:
    from netscope.collectors.sources import SourceUpdate

# A frame this large (the first, full one at scale) is decoded in a thread so the event loop keeps turning.
LARGE_FRAME = 1 << 20
STREAM_LIMIT = 1 << 24
# A worker that sends nothing for this long (at least; 5 intervals if that is longer) is taken for stuck (stopped,
# hung in a read) and replaced. The first frame may take far longer at 500,000 sockets: it gets FIRST_FRAME_FACTOR
# times as long.
STALL_SECONDS = 10.0
FIRST_FRAME_FACTOR = 6


class ProcessCollector(SourceDefaults):
    """Diffs from `python -m netscope.collectors.worker`, rebuilt into SnapshotDiffs.

    `tcp_info` (and `set_tcp_info` at any time) makes the worker fill `Snapshot.tcp_info`. Switching does not
    restart the worker: the command goes down its stdin and takes effect from its next refresh, so nothing starts
    over (no first frame, `restarts` unchanged); the first frame after switching on carries every connection's
    TcpInfo, the first after switching off empties the dict. A worker started later starts with the setting.
    """

    def __init__(
        self,
        interval: float = 1.0,
        tcp_info: bool = False,
        prestarted: subprocess.Popen[bytes] | None = None,
        netns: str = "",
        stall_seconds: float | None = None,
        cpu_share: float = DEFAULT_CPU_SHARE,
        unix: bool = False,
        first_screen: int = 0,
    ) -> None:
        """`unix`: the worker reads unix sockets instead of TCP/UDP. `prestarted`: a worker already started with
        `start_worker` (the CLI starts it before importing Textual, so that the two start-ups overlap); it is used
        first, and any restart is started as usual. `netns`: a network namespace file every worker started here
        enters (give `prestarted` the same). `stall_seconds`: how long a silent worker is waited for before it is
        restarted (default: STALL_SECONDS or 5 intervals, whichever is longer). `cpu_share`: see worker_command;
        give `prestarted` the same. `first_screen`: the first worker started here sends a FirstScreen of that many
        rows ahead of its first frame (a restarted one does not: the table is there by then)."""
        self.interval = interval
        self.cpu_share = cpu_share
        self._pace: PaceState | None = None  # the worker's, from its latest frame
        self.stall_seconds = stall_seconds if stall_seconds is not None else max(STALL_SECONDS, 5 * interval)
        self.netns = netns
        self.unix = unix
        self.restarts = 0
        self.tcp_info = tcp_info
        self._process: Any = None  # an asyncio Process, or an _AdoptedWorker with the same interface
        self._prestarted = prestarted
        self._first_screen = first_screen

    def set_tcp_info(self, enabled: bool) -> None:
        """Collect TCP internals (or stop) from the worker's next refresh on."""
        self.tcp_info = enabled
        self._send_tcp_info()

    def _send_tcp_info(self) -> None:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            return  # none running: the next worker is started with the setting
        # A worker that is dying makes this fail or do nothing: its successor is started with the setting.
        with contextlib.suppress(OSError, RuntimeError):
            process.stdin.write(b"tcp-info on\n" if self.tcp_info else b"tcp-info off\n")

    async def stream(self) -> AsyncIterator[SourceUpdate]:
        """Diffs from the worker; if it dies it is restarted after an interval, and the failure reported."""
        while True:
            try:
                async for update in self._stream_once():
                    yield update
            finally:
                await self._stop()
            self.restarts += 1
            await asyncio.sleep(self.interval)

    async def _stream_once(self) -> AsyncIterator[SourceUpdate]:
        prestarted, self._prestarted = self._prestarted, None
        if prestarted is not None:
            self._first_screen = 0  # the prestarted worker was asked, or not, when it was started
            started_with = isinstance(prestarted.args, list) and "--tcp-info" in prestarted.args
            process: Any = await _AdoptedWorker.adopt(prestarted)
            self._process = process
        else:
            started_with = self.tcp_info
            first_screen, self._first_screen = self._first_screen, 0
            self._process = process = await asyncio.create_subprocess_exec(
                *worker_command(self.interval, started_with, self.netns, self.cpu_share, self.unix, first_screen),
                stdin=asyncio.subprocess.PIPE,  # for set_tcp_info's commands
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=STREAM_LIMIT,
            )
        if self.tcp_info != started_with:  # switched while the process was being started
            self._send_tcp_info()
        assert process.stdout is not None
        assembler = DiffAssembler()
        patience = self.stall_seconds * FIRST_FRAME_FACTOR
        try:
            while True:
                try:
                    head = await asyncio.wait_for(process.stdout.readexactly(HEADER.size), patience)
                except TimeoutError:
                    yield CollectionFailure(
                        f"The collector process (PID {process.pid}) sent nothing for {patience:g}s (stopped or "
                        f"stuck); restarting it. The table shows the last data it sent until then."
                    )
                    return
                # A worker that slowed itself down (collectors/pace.py) is given as long, in proportion.
                patience = max(self.stall_seconds, 5 * (self._pace.interval if self._pace else 0.0))
                (length,) = HEADER.unpack(head)
                data = await process.stdout.readexactly(length)
                # Decoding and rebuilding a large frame's sockets (the first, at scale) runs in a thread so the
                # event loop keeps turning; only this loop touches the assembler, one frame at a time.
                result, pace = (
                    await asyncio.to_thread(_decode_and_apply, assembler, data)
                    if length > LARGE_FRAME else _decode_and_apply(assembler, data)
                )
                if pace is not None:
                    self._pace = pace
                if isinstance(result, str):
                    yield CollectionFailure(f"Reading sockets failed: {result}")
                    continue
                yield result
                if length > LARGE_FRAME:
                    # Back here once the frame is applied: what its decoding and the table's rebuild freed in
                    # small blocks is returned (about a millisecond).
                    give_back_free_pages()
        except (asyncio.IncompleteReadError, ValueError) as error:
            stderr = await self._stderr_tail()
            detail = stderr or f"{error.__class__.__name__}: {error}"
            yield CollectionFailure(
                f"The collector process stopped ({detail}); restarting it in {self.interval:g}s."
            )

    async def _stderr_tail(self) -> str:
        process = self._process
        if process is None or process.stderr is None:
            return ""
        try:
            text = (await asyncio.wait_for(process.stderr.read(), timeout=1.0)).decode(errors="replace")
        except TimeoutError:
            return ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        if process.returncode is not None:
            return
        process.kill()
        await process.wait()

    async def aclose(self) -> None:
        """Stop the worker; the app calls this on exit so no process or pipe outlives it."""
        await self._stop()

    @property
    def pace(self) -> PaceState | None:
        return self._pace

    @property
    def worker_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


def _decode_and_apply(assembler: DiffAssembler, data: bytes
                      ) -> tuple[SnapshotDiff | FirstScreen | str, PaceState | None]:
    """The frame's diff (or first screen), or the worker's error message if the refresh failed; and the worker's
    pace."""
    with gc_paused():  # a first frame is 100,000 sockets: see gc_pause
        wire = decode_frame(data)
        if isinstance(wire, WireFirstScreen):
            return wire.rebuilt(), None
        if wire.error:
            return wire.error, wire.pace
        diff = assembler.apply(wire)
        if diff.first:
            freeze_first_read(len(diff.snapshot.sockets))
        return diff, wire.pace


class _AdoptedWorker:
    """A worker started with subprocess.Popen, read through the event loop like an asyncio subprocess: the
    attributes and methods ProcessCollector uses, and no more."""

    def __init__(self, popen: subprocess.Popen[bytes], stdout: asyncio.StreamReader,
                 stderr: asyncio.StreamReader) -> None:
        self.popen = popen
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = _CommandPipe(popen.stdin) if popen.stdin is not None else None

    @classmethod
    async def adopt(cls, popen: subprocess.Popen[bytes]) -> _AdoptedWorker:
        loop = asyncio.get_running_loop()
        readers = []
        for pipe in (popen.stdout, popen.stderr):
            reader = asyncio.StreamReader(limit=STREAM_LIMIT)
            await loop.connect_read_pipe(functools.partial(asyncio.StreamReaderProtocol, reader), pipe)
            readers.append(reader)
        if popen.stdin is not None:
            os.set_blocking(popen.stdin.fileno(), False)  # a command is a few bytes; never wait on the pipe
        return cls(popen, *readers)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()

    async def wait(self) -> int:
        return await asyncio.to_thread(self.popen.wait)


class _CommandPipe:
    """The worker's stdin as ProcessCollector writes to it: each command sent at once, never blocking."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.file.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
