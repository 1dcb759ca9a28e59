"""Reading small /proc text files the same way everywhere: a missing or unreadable file, or lines a parser had
to skip, become one plain-words warning each, never an exception."""

from __future__ import annotations

MAX_EXAMPLE = 60  # characters of a malformed line quoted in a warning


def read_proc_text(path: str, missing: str | None, warnings: list[str]) -> str | None:
    """The file's text, or None with a warning saying what is lost (`missing`; None: stay quiet)."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        if missing is not None:
            warnings.append(f"{path} does not exist: {missing}.")
    except OSError as exc:
        if missing is not None:
            warnings.append(f"cannot read {path} ({exc.strerror or exc}): {missing}.")
    return None


def skipped_lines_warning(source: str, skipped: list[str]) -> list[str]:
    # One line per file however broken it is: the UI shows warnings as notices, not a log.
    if not skipped:
        return []
    example = skipped[0].strip()
    if len(example) > MAX_EXAMPLE:
        example = example[: MAX_EXAMPLE - 1] + "…"
    lines = "line" if len(skipped) == 1 else "lines"
    return [f"{source}: skipped {len(skipped)} malformed {lines}, e.g. {example!r}"]
