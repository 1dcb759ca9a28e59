"""How ages, byte counts and rtts read on screen."""

from __future__ import annotations

from netscope.widgets.formatting import format_age
from netscope.widgets.tcp_columns import format_bytes, format_micros


def test_ages_of_new_sockets_count_seconds_and_old_ones_minutes() -> None:
    assert [format_age(s) for s in (0, 9.9, 10, 42, 59.9, 60, 754, 18_720, 273_600)] == [
        "0s", "9s", "10s", "40s", "50s", "1m", "12m", "5h12m", "3d4h"
    ]
    # Open before netscope started: a lower bound, which says nothing to the second; it changes once a minute.
    assert [format_age(s, lower_bound=True) for s in (0, 12, 59, 60, 754)] == [">0m", ">0m", ">0m", ">1m", ">12m"]


def test_bytes_and_rtts() -> None:
    assert [format_bytes(v) for v in (0, 812, 1_234, 99_949, 6_291_456, 5.1e9)] == [
        "0", "812", "1.2K", "99.9K", "6.3M", "5.1G"
    ]
    assert [format_micros(v) for v in (45, 1_234, 230_000, 1_500_000)] == ["45us", "1.2ms", "230ms", "1.5s"]


async def test_endpoints_and_owners_read_the_same_on_screen_and_in_print() -> None:
    """One formatting module: the table and `--once` write an endpoint and an owner alike, `1234/?` included."""
    from fixed_data import T0, FixedSource, sock

    from netscope.app.netscope_app import NetscopeApp
    from netscope.app.printed.formats import connection_lines
    from netscope.collectors.model import Snapshot
    from netscope.widgets.formatting import format_endpoint, owner_text

    sockets = [
        sock("tcp6", "2001:db8::5", 443, "2001:db8:ffff::42", 50110, "ESTABLISHED", pid=1221, program="nginx",
             inode=1),
        sock("tcp", "10.0.0.5", 22, "0.0.0.0", 0, "LISTEN", pid=812, program="", inode=2),  # name unreadable
        sock("tcp", "10.0.0.5", 80, "192.0.2.1", 61000, "TIME_WAIT"),  # no owner
    ]
    app = NetscopeApp(FixedSource([Snapshot(T0, {s.key: s for s in sockets})]))
    async with app.run_test(size=(200, 20)) as pilot:
        await pilot.pause(0.3)
        shown = [app.table.row_text(i) for i in range(app.table.row_count)]
    printed = connection_lines(sockets)
    for s in sockets:
        texts = [format_endpoint(s.local_ip, s.local_port), format_endpoint(s.remote_ip, s.remote_port),
                 owner_text(s)]
        assert any(all(t in row for t in texts) for row in shown), (texts, shown)
        assert any(all(t in line for t in texts) for line in printed), (texts, printed)
    assert owner_text(sockets[1]) == "812/?" and owner_text(sockets[2]) == "-"
