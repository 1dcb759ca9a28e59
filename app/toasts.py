"""Toasts through the notice board (collectors/session/notices.py): one live toast per message, its repeats
counted, system text escaped. A mixin for the App, so that every notify() in netscope, Textual's own included,
goes through it."""

from __future__ import annotations

import time
from typing import Any

from textual.app import App
from textual.notifications import Notification, Notify, SeverityLevel

from netscope.collectors.session.notices import Decision, NoticeBoard
from netscope.widgets.formatting import printable


class CoalescedToasts(App[Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices = NoticeBoard()
        # Toasts taken down before Textual had them: their Notify was still queued (behind a burst of key presses
        # that outlasted a redraw), and would have put them up for good after their replacement.
        self._withdrawn: set[str] = set()

    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information",
        timeout: float | None = None, markup: bool = True,
    ) -> None:
        """A repeat of a live message bumps its count instead of stacking another toast, and system text in it is
        escaped line by line."""
        text = "\n".join(printable(line) for line in message.split("\n"))
        decision = self.notices.post(text, severity, self.NOTIFICATION_TIMEOUT if timeout is None else timeout)
        self._show_notice(decision, title, markup)

    def tell(self, messages: list[tuple[str, str]]) -> None:
        """(message, severity) pairs from the session, never read as markup. A toast covers the table's right half
        at 80x24: information goes after 4 s (the status line keeps what still holds: "some owners unknown"),
        warnings and errors after 10."""
        for message, severity in messages:
            timeout = 4 if severity == "information" else 10
            self.notify(message, severity=severity, timeout=timeout, markup=False)  # type: ignore[arg-type]

    def _show_notice(self, decision: Decision, title: str = "", markup: bool = False) -> None:
        for old in decision.take_down:
            if isinstance(old.token, Notification):
                if old.token not in self._notifications:
                    self._withdrawn.add(old.token.identity)
                # Textual has no public call to take down one toast; tests/test_notices.py fails if this changes.
                self._unnotify(old.token)
        notice = decision.show
        if notice is not None:
            toast = Notification(notice.text, title, notice.severity,  # type: ignore[arg-type]
                                 max(0.5, notice.until - time.monotonic()), markup=markup)
            notice.token = toast
            self.post_message(Notify(toast))
        if decision.redraw_at is not None:
            self.set_timer(max(0.0, decision.redraw_at - time.monotonic()), self._redraw_notices)

    def _on_notify(self, event: Notify) -> None:
        # Textual calls each class's handler in turn: App's after this one, unless told not to.
        event.prevent_default()
        if event.notification.identity in self._withdrawn:
            self._withdrawn.discard(event.notification.identity)
            return
        super()._on_notify(event)

    def _redraw_notices(self) -> None:
        for decision in self.notices.due():
            self._show_notice(decision)
