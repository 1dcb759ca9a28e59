"""The live session on its own: fixed refreshes in, typed updates out. No screen, no peers."""

from __future__ import annotations

from collections import Counter

from fixed_data import T0, machine, snapshots, sock

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.live import FIRST_INSIGHTS_LATER, INSIGHTS_PART, LiveSession


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_refreshes_count_every_socket_and_keep_the_totals_current() -> None:
    first, second = snapshots()
    session = LiveSession()
    refresh = session.take(diff_snapshots(None, first))
    assert refresh.diff is not None and refresh.diff.first and refresh.alerts_changed
    assert session.totals == Counter(s.counter_name for s in first.sockets.values())
    session.take(diff_snapshots(first, second))
    assert session.totals == Counter(s.counter_name for s in second.sockets.values())
    assert session.refresh_count == 2 and session.snapshot is second
    owners = {s.pid for s in second.sockets.values() if s.pid}
    assert session.groups.count("process") == len(owners) + 1  # and one group for the sockets no process owns


def test_pause_holds_the_screen_and_resume_reloads_the_newest() -> None:
    first, second = snapshots()
    session = LiveSession()
    session.take(diff_snapshots(None, first))
    assert session.toggle_pause() is None and session.paused
    assert session.take(diff_snapshots(first, second)).diff is None  # nothing to draw while paused
    assert session.snapshot is first
    reload = session.toggle_pause()
    assert reload is not None and reload.first and reload.snapshot is second
    assert {s.key for s in reload.added} == set(second.sockets)


def test_the_filter_narrows_the_groups_not_the_totals() -> None:
    first, _ = snapshots()
    session = LiveSession(":443")
    session.take(diff_snapshots(None, first))
    assert [g.key for g in session.groups.groups("local_port")] == ["443"]
    session.set_filter(parse_filter(""))
    assert len(session.groups.groups("local_port")) > 1
    assert sum(session.totals.values()) == len(first.sockets)


def test_failures_and_warnings_are_told_once() -> None:
    session = LiveSession()
    failure = CollectionFailure("Reading sockets failed: boom")
    assert session.take(failure).tell == [("Reading sockets failed: boom", "error")]
    assert session.take(failure).tell == []
    warned = Snapshot(T0, {s.key: s for s in machine()}, warnings=["no IPv6 here"])
    assert session.take(diff_snapshots(None, warned)).tell == [("no IPv6 here", "information")]
    assert session.take(diff_snapshots(warned, warned)).tell == []


def test_a_big_first_load_defers_its_insights() -> None:
    sockets = [sock("tcp", "10.0.0.5", 443, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 40000, "ESTABLISHED",
                    inode=100 + n) for n in range(FIRST_INSIGHTS_LATER + 1)]
    session = LiveSession()
    refresh = session.take(diff_snapshots(None, Snapshot(T0, {s.key: s for s in sockets})))
    assert refresh.insights_later and refresh.diff is not None and session.groups.count("remote_ip") == 0
    caught_up = session.catch_up()
    while caught_up.insights_later:  # a part at a time: the app's event loop answers keys in between
        assert not caught_up.alerts_changed
        caught_up = session.catch_up()
    assert caught_up.alerts_changed and session.groups.count("remote_ip") == len(sockets)
    assert not session.catch_up().alerts_changed  # once


def test_insights_caught_up_in_parts_are_those_counted_at_once() -> None:
    """A big first load's groups and alerts, counted a part at a time over several turns of the app's event loop,
    are what one count of every socket gives: every grouping, in every state, and the alerts the counts raise (a
    SYN flood from one host, a host over its connection limit). Parts split keys across them: one host's sockets
    arrive in several parts, in one state and in several."""
    states = ("ESTABLISHED", "SYN_RECV", "TIME_WAIT", "CLOSE_WAIT")
    sockets = [
        sock("tcp", "10.0.0.5", 443 + n % 3, "10.7.7.7" if n % 100 == 0 else f"10.9.{n % 7}.{n % 251}", 1024 + n,
             states[n % 4 if n % 5 else 1],
             pid=100 + n % 9 if n % 4 != 2 else None, program=f"p{n % 9}", inode=100 + n)
        for n in range(3 * INSIGHTS_PART + 123)
    ]
    first = diff_snapshots(None, Snapshot(T0, {s.key: s for s in sockets}))
    in_parts, at_once = LiveSession(), LiveSession()
    refresh = in_parts.take(first)
    steps = 1
    while refresh.insights_later:
        refresh = in_parts.catch_up()
        steps += 1
    at_once.groups.apply_diff(first)
    expected_alerts = at_once.alerts.update(first)
    assert steps > 4  # groups, then alerts, each in several parts
    for grouping in ("remote_ip", "remote_net", "local_port", "process"):
        for sort in ("total", "key", "ESTABLISHED", "SYN_RECV"):
            parted, whole = in_parts.groups.groups(grouping, sort), at_once.groups.groups(grouping, sort)
            assert parted == whole, (grouping, sort)
    assert {alert.kind for alert in expected_alerts} >= {"syn_flood", "remote_host"}
    assert [(a.kind, a.title) for a in in_parts.alerts.active] == [(a.kind, a.title) for a in expected_alerts]
    assert {(a.kind, a.title) for a in refresh.raised} == {(a.kind, a.title) for a in expected_alerts}


def test_a_filter_typed_while_insights_catch_up_counts_each_socket_once() -> None:
    sockets = [sock("tcp", "10.0.0.5", 443, f"10.8.{n >> 8 & 255}.{n & 255}", 40000, "ESTABLISHED", inode=100 + n)
               for n in range(2 * INSIGHTS_PART + 7)]
    session = LiveSession()
    assert session.take(diff_snapshots(None, Snapshot(T0, {s.key: s for s in sockets}))).insights_later
    assert session.catch_up().insights_later  # one part counted
    session.set_filter(parse_filter(":443"))
    while session.catch_up().insights_later:
        pass
    assert session.groups.count("remote_ip") == len(sockets)
    assert sum(group.total for group in session.groups.groups("local_port")) == len(sockets)


def test_refreshes_while_insights_catch_up_are_counted_after_them_not_all_at_once() -> None:
    """A refresh arriving before a big first load's insights are counted waits for them (the next steps count
    it), rather than having the rest counted at once in its turn; and so through a filter typed meanwhile."""
    sockets = [sock("tcp", "10.0.0.5", 443, f"10.8.{n >> 8 & 255}.{n & 255}", 40000, "ESTABLISHED", inode=100 + n)
               for n in range(2 * INSIGHTS_PART + 7)]
    first = Snapshot(T0, {s.key: s for s in sockets})
    later = [sock("tcp", "10.0.0.5", 443, "10.9.9.9", 40001 + n, "SYN_RECV") for n in range(150)]
    second = Snapshot(T0 + 1, {s.key: s for s in sockets[5:] + later})
    third = Snapshot(T0 + 2, {s.key: s for s in sockets[9:] + later})
    diffs = [diff_snapshots(None, first), diff_snapshots(first, second), diff_snapshots(second, third)]
    at_once = LiveSession()
    at_once.take(diffs[0])
    at_once.catch_up(everything=True)
    for diff in diffs[1:]:
        at_once.take(diff)
    for filtered in (False, True):
        session = LiveSession()
        assert session.take(diffs[0]).insights_later
        assert session.catch_up().insights_later  # one part counted
        refresh = session.take(diffs[1])
        assert refresh.diff is diffs[1] and not refresh.alerts_changed  # not counted in this turn
        assert session.groups.count("remote_ip") < len(sockets)
        session.take(diffs[2])
        if filtered:
            session.set_filter(parse_filter(""))
        raised = []
        while (refresh := session.catch_up()).insights_later:
            pass
        raised += refresh.raised
        for grouping in ("remote_ip", "local_port"):  # a recount (the filter) shows no emptied groups
            assert [(g.key, g.total, g.states) for g in session.groups.groups(grouping) if g.total] == [
                (g.key, g.total, g.states) for g in at_once.groups.groups(grouping) if g.total]
        assert [a.kind for a in session.alerts.active] == [a.kind for a in at_once.alerts.active] == ["syn_flood"]
        assert [a.kind for a in raised] == ([] if filtered else ["syn_flood"])


def test_a_filter_over_many_sockets_is_recounted_in_parts_and_refreshes_meanwhile_after_it() -> None:
    """A filter typed over more than INSIGHTS_PART sockets recounts the groups a part per catch_up(): the counts
    from before stay until the last part, a refresh meanwhile is counted after it, and the result is the recount
    made at once. Typed while a big first load's insights are still being counted, the steps under way take it
    on (no second run of them is asked for). Clearing it takes back every socket's counts at once."""
    sockets = [sock("tcp", "10.0.0.5", 443 if n % 3 else 22, f"10.8.{n >> 8 & 255}.{n & 255}", 40000,
                    "ESTABLISHED", inode=100 + n) for n in range(2 * INSIGHTS_PART + 7)]
    first = Snapshot(T0, {s.key: s for s in sockets})
    flood = [sock("tcp", "10.0.0.5", 443, "10.9.9.9", 40001 + n, "SYN_RECV") for n in range(150)]
    second = Snapshot(T0 + 1, {s.key: s for s in sockets[5:] + flood})
    third = Snapshot(T0 + 2, {s.key: s for s in sockets[9:] + flood})
    diffs = [diff_snapshots(None, first), diff_snapshots(first, second), diff_snapshots(second, third)]
    ssh = parse_filter(":22")

    def counts(session: LiveSession) -> list[tuple[object, int, object]]:
        return [(g.key, g.total, g.states) for grouping in ("remote_ip", "local_port")
                for g in session.groups.groups(grouping) if g.total]

    at_once = LiveSession()
    at_once.take(diffs[0])
    at_once.catch_up(everything=True)
    at_once.take(diffs[1])
    at_once.set_filter(ssh)
    filtered = counts(at_once)
    at_once.take(diffs[2])
    for typed_during_first_load in (False, True):
        session = LiveSession()
        session.take(diffs[0])
        if typed_during_first_load:
            assert session.catch_up().insights_later  # one part of the first load's counted
        else:
            session.catch_up(everything=True)
        session.take(diffs[1])
        before = counts(session)
        assert session.set_filter(ssh, in_parts=True) is not typed_during_first_load
        assert counts(session) == before  # until the last part
        refresh = session.take(diffs[2])
        assert refresh.diff is diffs[2] and not refresh.alerts_changed  # counted after the recount
        steps = 0
        while (refresh := session.catch_up()).insights_later:
            steps += 1
            assert typed_during_first_load or counts(session) == before
        assert steps >= 2 and refresh.alerts_changed
        assert counts(session) == counts(at_once) != filtered
        assert [a.kind for a in session.alerts.active] == [a.kind for a in at_once.alerts.active] == ["syn_flood"]
        session.set_filter(parse_filter(""), in_parts=True)
        while session.catch_up().insights_later:
            pass
        cleared = LiveSession()
        for diff in diffs:
            cleared.take(diff)
            cleared.catch_up(everything=True)
        assert counts(session) == counts(cleared)

    # A filter typed over a recount still under way drops it (its counts were not taken yet): what is left is the
    # new recount's steps alone, a refresh that came meanwhile counted before it.
    https = parse_filter(":443")

    def recount_steps(session: LiveSession) -> int:
        steps = 0
        while session.catch_up().insights_later:
            steps += 1
        return steps

    alone = LiveSession()
    alone.take(diffs[0])
    alone.catch_up(everything=True)
    assert alone.set_filter(https, in_parts=True)
    steps_alone = recount_steps(alone)
    alone.take(diffs[1])
    session = LiveSession()
    session.take(diffs[0])
    session.catch_up(everything=True)
    before = counts(session)
    assert session.set_filter(ssh, in_parts=True)
    assert session.catch_up().insights_later
    session.take(diffs[1])
    assert not session.set_filter(https, in_parts=True)  # the catch_up steps under way go on with it
    assert counts(session) == before
    assert recount_steps(session) == steps_alone >= 2
    assert counts(session) == counts(alone) != before

    # A big first load taken over a recount (a restarted source, its SYN flood gone) replaces it: the next filter
    # counts that load's groups and alerts, not drop them for a recount.
    restarted = diff_snapshots(None, first)
    reference = LiveSession()
    reference.take(restarted)
    reference.catch_up(everything=True)
    reference.set_filter(https)
    assert session.set_filter(ssh, in_parts=True)
    assert session.catch_up().insights_later
    session.take(restarted)
    session.set_filter(https, in_parts=True)
    recount_steps(session)
    assert counts(session) == counts(reference)
    assert [a.kind for a in session.alerts.active] == [a.kind for a in reference.alerts.active] == []


def test_lateness_counts_from_the_last_refresh_that_arrived() -> None:
    clock = Clock()
    session = LiveSession(clock=clock)
    first, _ = snapshots()
    session.take(diff_snapshots(None, first))
    clock.now += 3
    assert session.late_seconds(interval=1.0) == 0  # within two intervals and two seconds
    clock.now += 12
    assert session.late_seconds(interval=1.0) == 15
    assert session.late_seconds(interval=1.0, replay=True) == 0


def test_tcp_info_is_wanted_only_while_something_shows_it() -> None:
    session = LiveSession()
    assert not session.tcp_wanted
    session.tcp_columns = True
    assert session.tcp_wanted
    session.tcp_columns, session.rate_view = False, True
    assert session.tcp_wanted
    assert session.metrics_of(next(iter(snapshots()[0].sockets))) == (None, None)
