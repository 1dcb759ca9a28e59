"""A SnapshotSource that collects in a separate worker process.

Reading /proc for 100,000 sockets takes a Python thread hundreds of milliseconds of every second; in the UI's own
process that thread holds the GIL often enough to stall key presses for most of a second (measured: p95 0.75 s at
40,000 sockets). In a worker process it runs on another core, and the UI only applies the small diffs it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.wire import HEADER, DiffAssembler, decode_frame

# A frame this large (the first, full one at scale) is decoded in a thread so the event loop keeps turning.
LARGE_FRAME = 1 << 20


class ProcessCollector:
    """Diffs from `python -m netscope.collectors.worker`, rebuilt into SnapshotDiffs.

    `tcp_info` (and `set_tcp_info` at any time) makes the worker fill `Snapshot.tcp_info`. Switching does not
    restart the worker: the command goes down its stdin and takes effect from its next refresh, so nothing starts
    over (no first frame, `restarts` unchanged); the first frame after switching on carries every connection's
    TcpInfo, the first after switching off empties the dict. A worker started later starts with the setting.
    """

    def __init__(self, interval: float = 1.0, tcp_info: bool = False) -> None:
        self.interval = interval
        self.restarts = 0
        self.tcp_info = tcp_info
        self._process: asyncio.subprocess.Process | None = None

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

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        """Diffs from the worker; if it dies it is restarted after an interval, and the failure reported."""
        while True:
            try:
                async for update in self._stream_once():
                    yield update
            finally:
                await self._stop()
            self.restarts += 1
            await asyncio.sleep(self.interval)

    async def _stream_once(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        started_with = self.tcp_info
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "netscope.collectors.worker",
            "--interval", repr(self.interval), "--parent", str(os.getpid()),
            *(["--tcp-info"] if started_with else []),
            stdin=asyncio.subprocess.PIPE,  # for set_tcp_info's commands
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )
        if self.tcp_info != started_with:  # switched while the process was being started
            self._send_tcp_info()
        assert process.stdout is not None
        assembler = DiffAssembler()
        try:
            while True:
                (length,) = HEADER.unpack(await process.stdout.readexactly(HEADER.size))
                data = await process.stdout.readexactly(length)
                # Decoding and rebuilding a large frame's sockets (the first, at scale) runs in a thread so the
                # event loop keeps turning; only this loop touches the assembler, one frame at a time.
                result = (
                    await asyncio.to_thread(_decode_and_apply, assembler, data)
                    if length > LARGE_FRAME else _decode_and_apply(assembler, data)
                )
                if isinstance(result, str):
                    yield CollectionFailure(f"Reading sockets failed: {result}")
                    continue
                yield result
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
        except asyncio.TimeoutError:
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
    def worker_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


def _decode_and_apply(assembler: DiffAssembler, data: bytes) -> SnapshotDiff | str:
    """The frame's diff, or the worker's error message if the refresh failed."""
    wire = decode_frame(data)
    if wire.error:
        return wire.error
    return assembler.apply(wire)
