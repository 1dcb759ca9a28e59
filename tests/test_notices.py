"""Notifications under a burst: one toast per message with its count, never a toast per key press."""

from __future__ import annotations

from fixed_data import FixedSource
from support import wait_for
from textual import events
from textual.widgets._toast import Toast

from netscope.app.netscope_app import NetscopeApp
from netscope.collectors.session.notices import MAX_LIVE, REDRAW_SECONDS, NoticeBoard


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_repeat_of_a_live_message_counts_instead_of_stacking() -> None:
    clock = FakeClock()
    board = NoticeBoard(clock)
    first = board.post("No alert is active.", "information", 3)
    assert first.show is not None and first.show.text == "No alert is active." and not first.take_down
    held = board.post("No alert is active.", "information", 3)  # at once: counted, redrawn later
    assert held.show is None and held.redraw_at == 100.0 + REDRAW_SECONDS
    assert board.post("No alert is active.", "information", 3).redraw_at is None  # one redraw is pending already
    clock.now += REDRAW_SECONDS
    (redraw,) = board.due()
    assert redraw.show is first.show and redraw.show.text == "No alert is active. (×3)"
    assert len(redraw.take_down) == 1  # the toast that showed the old count
    assert board.messages == ["No alert is active."]
    clock.now += 10  # expired: the next one starts a new toast with no count
    again = board.post("No alert is active.", "information", 3)
    assert again.show is not None and again.show.text == "No alert is active."


def test_at_most_a_few_toasts_live_and_the_oldest_go_first() -> None:
    board = NoticeBoard(FakeClock())
    decisions = [board.post(f"message {n}", "warning", 10) for n in range(MAX_LIVE + 2)]
    assert [notice.message for notice in board.live] == [f"message {n}" for n in range(2, MAX_LIVE + 2)]
    assert [old.message for old in decisions[MAX_LIVE].take_down] == ["message 0"]


async def test_five_thousand_key_presses_leave_one_toast_and_a_screen_that_answers() -> None:
    app = NetscopeApp(source=FixedSource())
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.table.row_count > 0)
        # A held key: the terminal repeats it faster than anything is drawn, so the presses queue up at once
        # (Pilot's press() waits for the screen after each key, which a held key never does).
        for _ in range(5000):
            app.post_message(events.Key("a", "a"))  # "No alert is active." each time
        await wait_for(pilot, lambda: "(×5,000)" in "".join(n.text for n in app.notices.live), timeout=20)
        await pilot.pause(REDRAW_SECONDS + 0.2)
        toasts = list(app.screen.query(Toast))
        # Toast is Textual's; the App takes one down through App._unnotify: this fails if that stops working.
        assert len(toasts) == 1, [str(toast.render()) for toast in toasts]
        assert "No alert is active. (×5,000)" in str(toasts[0].render())
        await pilot.press("2")  # still answering (before, 5,000 toasts held the screen for 15 s, 3,000 for good)
        await wait_for(pilot, lambda: app.active_view == "interfaces")
