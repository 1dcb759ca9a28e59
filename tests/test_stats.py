"""Per-state counting and the SYN_RECV alarm."""

from __future__ import annotations

from fixed_data import snapshots

from netscope.collectors.diff import diff_snapshots
from netscope.collectors.session.stats import SynRecvWatch, count_states, update_counts


def test_counts_follow_diffs_without_recounting() -> None:
    first, second = snapshots()
    counts = update_counts(count_states([]), diff_snapshots(None, first))
    before = count_states(first.sockets.values())
    assert counts == before
    counts = update_counts(counts, diff_snapshots(first, second))
    assert +counts == +count_states(second.sockets.values())  # unary + drops zero entries
    # One connection closed, one went to TIME_WAIT, one is new.
    assert counts["ESTABLISHED"] == before["ESTABLISHED"] - 2 + 1
    assert counts["TIME_WAIT"] == before["TIME_WAIT"] + 1


def test_syn_recv_alert_latches_through_a_flood_and_clears_after() -> None:
    watch = SynRecvWatch()
    watch.reset(3)
    assert [watch.update(n) for n in (4, 5, 3)] == [False, False, False]  # a few half-open are normal
    assert watch.update(80)  # a jump
    assert watch.update(70) and watch.update(45)  # still above half the peak: the flood goes on
    assert not watch.update(30)  # it has died down
    assert not watch.update(35)
    assert watch.update(60)  # a new jump is a new alert


def test_a_high_but_steady_count_is_not_an_alert() -> None:
    watch = SynRecvWatch()
    watch.reset(200)
    assert not any(watch.update(n) for n in (205, 198, 210, 201))
