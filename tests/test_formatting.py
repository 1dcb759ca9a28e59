"""How ages, byte counts and rtts read on screen."""

from __future__ import annotations

from netscope.widgets.formatting import format_age
from netscope.widgets.tcp_columns import format_bytes, format_micros


def test_ages_of_new_sockets_count_seconds_and_old_ones_minutes() -> None:
    assert [format_age(s) for s in (0, 42, 59.9, 60, 754, 18_720, 273_600)] == [
        "0s", "42s", "59s", "1m", "12m", "5h12m", "3d4h"
    ]
    # Open before netscope started: a lower bound, which says nothing to the second; it changes once a minute.
    assert [format_age(s, lower_bound=True) for s in (0, 12, 59, 60, 754)] == [">0m", ">0m", ">0m", ">1m", ">12m"]


def test_bytes_and_rtts() -> None:
    assert [format_bytes(v) for v in (0, 812, 1_234, 99_949, 6_291_456, 5.1e9)] == [
        "0", "812", "1.2K", "99.9K", "6.3M", "5.1G"
    ]
    assert [format_micros(v) for v in (45, 1_234, 230_000, 1_500_000)] == ["45us", "1.2ms", "230ms", "1.5s"]
