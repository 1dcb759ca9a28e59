"""The self-limit: when refreshing costs more than a share of one core, the interval stretches, the status line
says so, and it comes back when the cost falls; an interval typed on the command line is kept whatever it costs.

The stepping and the recovery are checked with given costs; the stretching with the real worker, whose real
refreshes cost more than a tiny share allows."""

from __future__ import annotations

import os
import pty
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from support import next_matching, wait_for

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.pace import LONGEST, Pace
from netscope.collectors.process_collector import ProcessCollector


def test_the_pace_stretches_in_steps_and_recovers_with_room_to_spare() -> None:
    pace = Pace(1.0, cpu_share=0.2)
    # One slow refresh among quick ones moves nothing: the median of the last few is what counts.
    assert [pace.after(cost).interval for cost in (0.05, 0.9, 0.05, 0.05)] == [1.0] * 4
    # Refreshes that cost 0.45 s need 2.25 s to stay under 20%: the next step up is 3 s (3x).
    states = [pace.after(0.45) for _ in range(3)]
    assert states[-1].interval == 3.0 and states[-1].stretched and states[-1].cost == pytest.approx(0.45)
    assert states[-1].cost / states[-1].interval <= 0.2
    # Cheaper, but not by enough to fit 1.5 s with room: it stays (no see-saw at a boundary).
    assert [pace.after(0.28).interval for _ in range(5)][-1] == 3.0
    # Cheap again: back to the interval asked for.
    assert [pace.after(0.05).interval for _ in range(5)][-1] == 1.0 and not pace.after(0.05).stretched


def test_a_forced_pace_never_stretches_and_no_pace_is_slower_than_a_minute() -> None:
    forced = Pace(0.5, cpu_share=0.0)
    assert {forced.after(5.0).interval for _ in range(10)} == {0.5}
    capped = Pace(1.0, cpu_share=0.01)
    assert [capped.after(30.0) for _ in range(5)][-1].interval == LONGEST
    with pytest.raises(ValueError):
        Pace(1.0, cpu_share=1.5)


async def test_the_real_worker_slows_down_to_stay_under_its_share_and_says_so() -> None:
    # A real refresh of this machine costs some milliseconds of CPU: far more than 0.5% of 0.1 s.
    collector = ProcessCollector(interval=0.1, cpu_share=0.005)
    stream = collector.stream()
    try:
        def stretched_now(update: object) -> bool:
            return isinstance(update, SnapshotDiff) and collector.pace is not None and collector.pace.stretched

        stretched = await next_matching(stream, stretched_now, timeout=30)
        assert isinstance(stretched, SnapshotDiff)
        pace = collector.pace
        assert pace is not None and pace.interval > 0.1 and pace.cpu_share == 0.005
        assert pace.cost / pace.interval <= 0.005 or pace.interval == LONGEST
        # The next refreshes come at the stretched pace, not at 0.1 s.
        following = await next_matching(stream, lambda u: isinstance(u, SnapshotDiff), timeout=pace.interval + 30)
        assert isinstance(following, SnapshotDiff)
        assert following.snapshot.taken_at - stretched.snapshot.taken_at >= 0.8 * pace.interval
    finally:
        await stream.aclose()
        await collector.aclose()


async def test_the_status_line_says_the_interval_was_stretched() -> None:
    app = NetscopeApp(ProcessCollector(interval=0.1, cpu_share=0.005), interval=0.1, save_config=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: "slowed to stay under" in str(app.status_bar.render()), timeout=30)
        pace = app.connections.source.pace
        assert pace is not None and f"every {pace.interval:g}s" in str(app.status_bar.render())


async def test_without_a_limit_the_worker_keeps_its_interval() -> None:
    collector = ProcessCollector(interval=0.1, cpu_share=0.0)
    stream = collector.stream()
    try:
        for _ in range(6):
            await next_matching(stream, lambda u: isinstance(u, SnapshotDiff), timeout=30)
        assert collector.pace is not None and collector.pace.interval == 0.1 and not collector.pace.stretched
    finally:
        await stream.aclose()
        await collector.aclose()


@pytest.fixture
def running_netscope() -> Iterator[Callable[..., list[str]]]:
    started: list[tuple[int, int]] = []

    def run(*args: str) -> list[str]:
        """Start the real UI in a pseudo-terminal; the command line of the collector worker it started."""
        pid, terminal = pty.fork()
        if pid == 0:
            os.environ["TERM"] = "xterm-256color"
            os.execv(sys.executable, [sys.executable, "-m", "netscope", "--no-config", *args])
        started.append((pid, terminal))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for child in psutil.Process(pid).children():
                cmdline = child.cmdline()
                if "netscope.collectors.worker" in cmdline:
                    return cmdline
            time.sleep(0.1)
        raise AssertionError("netscope started no collector worker within 30 s")

    yield run
    for pid, terminal in started:
        for child in psutil.Process(pid).children(recursive=True):
            child.kill()
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(terminal)


def test_an_interval_typed_on_the_command_line_is_kept_whatever_it_costs(
    running_netscope: Callable[..., list[str]],
) -> None:
    def share(cmdline: list[str]) -> float:
        return float(cmdline[cmdline.index("--cpu-share") + 1])

    assert share(running_netscope()) == 0.2
    assert share(running_netscope("--interval", "0.5")) == 0.0
    assert share(running_netscope("--interval", "0.5", "--cpu-limit", "5")) == 0.05
