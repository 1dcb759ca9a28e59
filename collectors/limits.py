"""Bounds on numbers that come from users and files, in one place so every reader of them agrees."""

from __future__ import annotations

# The kernel's PID_MAX_LIMIT (include/linux/threads.h): no PID is larger, whatever /proc/sys/kernel/pid_max says.
PID_MAX_LIMIT = 1 << 22

# The refresh interval's bounds, wherever an interval is read (--interval, the config file, the worker's command
# line, a recording's header): faster would only burn CPU; slower is not live, and 1e308 overflowed sleep().
MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0


def interval_problem(seconds: float) -> str | None:
    """Why `seconds` cannot be a refresh interval ("should be at least 0.1 seconds, not 0.01"), or None if it can
    (NaN and infinity cannot)."""
    if seconds > MAX_INTERVAL:
        return f"should be at most {MAX_INTERVAL:g} seconds (an hour), not {seconds:g}"
    if not seconds >= MIN_INTERVAL:  # NaN too
        return f"should be at least {MIN_INTERVAL} seconds, not {seconds:g}"
    return None
