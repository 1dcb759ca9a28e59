"""Per-state history: bucket arithmetic, peaks, replay seeking back, bounded memory."""

from __future__ import annotations

import random
import sys
import time

import pytest

from netscope.collectors.session.history import HISTORY_STATES, StateHistory


def counts(
    established: int = 0, syn: int = 0, time_wait: int = 0, close_wait: int = 0, **other: int
) -> dict[str, int]:
    return {"ESTABLISHED": established, "SYN_RECV": syn, "TIME_WAIT": time_wait, "CLOSE_WAIT": close_wait, **other}


def test_empty_history() -> None:
    history = StateHistory(seconds=60)
    assert history.series("TOTAL", 6) == [None] * 6
    assert history.latest("ESTABLISHED") == 0 and history.span() == 0.0 and len(history) == 0


def test_total_is_every_count_and_latest_is_the_newest() -> None:
    history = StateHistory(seconds=60)
    history.record(100.0, counts(established=5, time_wait=2, LISTEN=3, UDP=4))
    history.record(101.0, counts(established=7, syn=1, LISTEN=3))
    assert [history.latest(name) for name in HISTORY_STATES] == [11, 7, 1, 0, 0]
    assert history.series("TOTAL", 120)[-2:] == [14, 11]  # half-second buckets: one sample each
    # A count by kernel state (NEW_SYN_RECV not folded in yet) still lands in SYN_RECV.
    history.record(102.0, {"NEW_SYN_RECV": 4, "SYN_RECV": 1})
    assert history.latest("SYN_RECV") == 5 and history.latest("TOTAL") == 5


def test_buckets_split_the_window_ending_at_the_newest_sample() -> None:
    history = StateHistory(seconds=60)
    # One sample a second for 120 s: only the last 60 s are kept (the one exactly 60 s old included).
    for second in range(121):
        history.record(1000.0 + second, counts(established=second))
    assert len(history) == 61 and history.span() == 60.0
    series = history.series("ESTABLISHED", 6)
    # Six buckets of 10 s from 1060: [1060, 1070) holds 60..69, its max 69; the last one also takes 1120.
    assert series == [69, 79, 89, 99, 109, 120]
    assert history.series("ESTABLISHED", 1) == [120]
    # More buckets than samples: every other bucket is empty (None), never 0.
    fine = history.series("ESTABLISHED", 120)
    assert fine[0] == 60 and fine[1] is None and fine[2] == 61 and fine[-2:] == [119, 120]
    assert sum(value is not None for value in fine) == 61


def test_gaps_are_none_and_the_series_is_right_aligned() -> None:
    history = StateHistory(seconds=100)
    history.record(0.0, counts(close_wait=3))
    history.record(95.0, counts(close_wait=8))
    history.record(100.0, counts(close_wait=1))
    assert history.series("CLOSE_WAIT", 10) == [3, None, None, None, None, None, None, None, None, 8]
    assert history.latest("CLOSE_WAIT") == 1
    # Five seconds of data in an hour's window: the chart fills from the right.
    short = StateHistory()
    short.record(50.0, counts(established=1))
    short.record(55.0, counts(established=2))
    series = short.series("ESTABLISHED", 60)
    assert series[:-1] == [None] * 59 and series[-1] == 2  # both in the newest minute: its max


def test_a_one_second_peak_survives_downsampling() -> None:
    history = StateHistory(seconds=3600)
    spike_at = random.randrange(10, 3590)
    for second in range(3600):
        history.record(float(second), counts(syn=900 if second == spike_at else second % 3))
    series = history.series("SYN_RECV", 40)  # 90 s per bucket
    assert max(v for v in series if v is not None) == 900
    # The window is (-1, 3599]: bucket i holds [-1 + 90 i, -1 + 90 (i + 1)).
    assert series.index(900) == (spike_at + 1) // 90
    assert sorted(v for v in series if v is not None)[:-1] == [2] * 39  # every other bucket: its own max


def test_seeking_back_starts_over_and_a_repeated_time_replaces() -> None:
    history = StateHistory(seconds=60)
    for second in range(10):
        history.record(500.0 + second, counts(established=second))
    history.record(509.0, counts(established=42))  # the same instant again: replaces, not duplicates
    assert len(history) == 10 and history.latest("ESTABLISHED") == 42
    history.record(200.0, counts(established=7))  # a replay sought back
    assert len(history) == 1 and history.span() == 0.0
    assert history.series("ESTABLISHED", 3) == [None, None, 7]
    history.record(230.0, counts(established=9))
    assert history.series("ESTABLISHED", 4) == [None, None, 7, 9] and history.span() == 30.0


def test_a_jump_forward_drops_what_fell_out_of_the_window() -> None:
    history = StateHistory(seconds=60)
    for second in range(30):
        history.record(float(second), counts(established=1))
    history.record(1000.0, counts(established=5))  # a replay sought forward, or the machine slept
    assert len(history) == 1 and history.series("ESTABLISHED", 4) == [None, None, None, 5]


def test_memory_is_bounded_by_time_and_by_count() -> None:
    history = StateHistory(seconds=3600)
    for second in range(3 * 3600):
        history.record(float(second), counts(established=second))
    assert len(history) == 3601  # only the last hour
    dense = StateHistory(seconds=3600, max_samples=1000)
    for tick in range(5000):
        dense.record(tick / 100, counts(time_wait=tick))  # 100 a second: the cap, not the window, bounds it
    assert len(dense) == 1000 and dense.latest("TIME_WAIT") == 4999 and dense.span() == pytest.approx(9.99)
    # The samples are tuples of ints in a deque: well under a kilobyte each.
    assert sys.getsizeof(history._values[0]) < 200


def test_cheap_at_an_hour_of_samples() -> None:
    history = StateHistory(seconds=3600)
    started = time.perf_counter()
    for second in range(3600):
        history.record(float(second), counts(established=second, syn=1, time_wait=2, close_wait=3, LISTEN=4))
    recorded = time.perf_counter() - started
    started = time.perf_counter()
    for name in HISTORY_STATES:
        history.series(name, 200)
    charted = time.perf_counter() - started
    # Generous bounds (a loaded 2-core machine); typically ~5 ms and ~4 ms.
    assert recorded < 0.5 and charted < 0.5


def test_bad_arguments_say_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        StateHistory(seconds=0)
    history = StateHistory()
    with pytest.raises(ValueError, match="unknown history series 'LISTEN'; expected one of TOTAL, ESTABLISHED"):
        history.series("LISTEN", 10)
    with pytest.raises(ValueError, match="buckets must be at least 1"):
        history.series("TOTAL", 0)
    with pytest.raises(ValueError, match="unknown history series"):
        history.latest("UDP")


def test_a_shorter_window_uses_only_its_own_samples() -> None:
    history = StateHistory(seconds=3600)
    for second in range(600):
        history.record(1000.0 + second, counts(established=second))
    # The last minute (from 1539) in 6 buckets of 10 s: each bucket's highest count, nothing from before it.
    assert history.series("ESTABLISHED", 6, window=60) == [548, 558, 568, 578, 588, 599]
    assert history.series("ESTABLISHED", 6, window=7200)[-1] == 599  # clamped to what is kept
    with pytest.raises(ValueError, match="window"):
        history.series("ESTABLISHED", 6, window=0)
