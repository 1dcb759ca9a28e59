"""A collector that stops answering: the screen says how old its data is, and the worker is replaced."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

import psutil
import pytest
from support import Peer, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.app.printed.watch import watched_read
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.recording import RecordingTee


async def test_a_stopped_worker_is_shown_as_late_then_restarted(spawn_peer: Callable[..., Peer]) -> None:
    collector = ProcessCollector(interval=0.5, stall_seconds=4)
    app = NetscopeApp(source=RecordingTee(collector), interval=0.5, filter_text="listen")
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.table.row_count > 0 and collector.worker_pid is not None)
        stopped = collector.worker_pid
        assert stopped is not None
        os.kill(stopped, signal.SIGSTOP)
        try:
            newcomer = spawn_peer("server", "--name", "ns-newcomer")
            # While the worker is stopped: no row for the new listener, and the status line says the data is old.
            await wait_for(pilot, lambda: app.status_bar.status.late_seconds >= 3, timeout=10)
            assert "s: the data is that old" in app.status_bar.render().plain
            assert all(row.pid != newcomer.pid for row in app.table.rows)
            # Then the stopped worker is replaced, and the new listener shows up.
            await wait_for(pilot, lambda: any(row.pid == newcomer.pid for row in app.table.rows), timeout=30)
            assert collector.restarts == 1 and collector.worker_pid != stopped
            assert any("sent nothing for" in message for message in app.notices.messages)
            await wait_for(pilot, lambda: app.status_bar.status.late_seconds == 0)
            assert "read in" in app.status_bar.render().plain
        finally:
            if psutil.pid_exists(stopped):
                os.kill(stopped, signal.SIGKILL)


def test_a_stuck_read_in_watch_is_said_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    release = threading.Event()
    stop = threading.Event()

    def stuck_read() -> str:
        release.wait(10)
        return "counts"

    threading.Timer(1.3, release.set).start()
    assert watched_read(stuck_read, stop, stall=0.5) == "counts"
    err = capsys.readouterr().err
    assert "reading sockets has not finished for 1s: the last line printed is that old" in err
    assert "reading sockets took 1s; the line below is from when it began" in err
    # Ctrl-C while it is stuck ends the wait.
    release.clear()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(StopIteration):
        watched_read(stuck_read, stop, stall=5)
    release.set()
