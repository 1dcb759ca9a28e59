"""One warning per file for lines a parser had to skip."""

from __future__ import annotations

MAX_EXAMPLE = 60  # characters of a malformed line quoted in a warning


def skipped_lines_warning(source: str, skipped: list[str]) -> list[str]:
    # One line per file however broken it is: the UI shows warnings as notices, not a log.
    if not skipped:
        return []
    example = skipped[0].strip()
    if len(example) > MAX_EXAMPLE:
        example = example[: MAX_EXAMPLE - 1] + "…"
    lines = "line" if len(skipped) == 1 else "lines"
    return [f"{source}: skipped {len(skipped)} malformed {lines}, e.g. {example!r}"]
