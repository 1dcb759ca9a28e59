"""Which notifications reach the screen: one live toast per message, repeats counted, a few toasts at most.

Textual-free, so the policy is tested with a fake clock. A held key (3,000 presses of `a`, each saying "No alert
is active") once stacked a toast per press; Textual then spent its time on toast timers and the screen stopped
answering. Here a repeat of a live message only bumps its count, and its toast is redrawn at most every
`REDRAW_SECONDS`, so a burst of any size costs one toast and a few redraws.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_LIVE = 4  # toasts on screen at once; the oldest goes first
REDRAW_SECONDS = 0.5  # a repeated message's toast shows its new count at most this often
HISTORY = 200  # messages remembered (newest last), repeats once each


@dataclass(slots=True)
class Notice:
    message: str
    severity: str
    timeout: float
    count: int = 1
    shown_at: float = 0.0  # clock time its toast was (re)drawn
    until: float = 0.0  # clock time its toast goes away
    redraw_due: bool = False  # repeats came since the toast was drawn
    token: object = field(default=None, compare=False)  # the toast that shows it (the App's, opaque here)

    @property
    def text(self) -> str:
        return self.message if self.count == 1 else f"{self.message} (×{self.count:,})"


@dataclass(slots=True)
class Decision:
    """What the screen should do for one posted message."""

    show: Notice | None = None  # draw this notice's toast (new, or redrawn with its count)
    take_down: list[Notice] = field(default_factory=list)  # remove these toasts first
    redraw_at: float | None = None  # nothing to draw now: call `due()` at this clock time


class NoticeBoard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._live: dict[tuple[str, str], Notice] = {}  # insertion order: oldest first
        self._history: deque[str] = deque(maxlen=HISTORY)

    @property
    def messages(self) -> list[str]:
        """The messages posted lately, oldest first (a repeat of a live one is not listed again)."""
        return list(self._history)

    @property
    def live(self) -> list[Notice]:
        self._reap()
        return list(self._live.values())

    def post(self, message: str, severity: str, timeout: float) -> Decision:
        now = self._clock()
        self._reap()
        key = (severity, message)
        notice = self._live.get(key)
        if notice is not None:
            notice.count += 1
            notice.until = now + timeout
            if now - notice.shown_at < REDRAW_SECONDS:
                first_wait = not notice.redraw_due
                notice.redraw_due = True
                return Decision(redraw_at=notice.shown_at + REDRAW_SECONDS if first_wait else None)
            return self._redraw(notice, now)
        self._history.append(message)
        notice = Notice(message, severity, timeout, shown_at=now, until=now + timeout)
        self._live[key] = notice
        overflow = list(self._live.values())[:-MAX_LIVE] if len(self._live) > MAX_LIVE else []
        for old in overflow:
            del self._live[(old.severity, old.message)]
        return Decision(show=notice, take_down=overflow)

    def due(self) -> list[Decision]:
        """Redraws whose time has come (for `Decision.redraw_at`)."""
        now = self._clock()
        self._reap()
        return [self._redraw(notice, now) for notice in list(self._live.values())
                if notice.redraw_due and now - notice.shown_at >= REDRAW_SECONDS]

    def _redraw(self, notice: Notice, now: float) -> Decision:
        notice.redraw_due = False
        notice.shown_at = now
        old = Notice(notice.message, notice.severity, notice.timeout, token=notice.token)
        notice.token = None
        return Decision(show=notice, take_down=[old])

    def _reap(self) -> None:
        now = self._clock()
        for key in [key for key, notice in self._live.items() if notice.until <= now]:
            del self._live[key]
