"""Making system-supplied text (process names, command lines, host names) safe to put on screen."""

from __future__ import annotations

import re

from rich.cells import cell_len, set_cell_size


def printable(text: str) -> str:
    """Escape every character that is not printable (control, format and bidi characters) as \\xNN or \\uNNNN.

    Process names and host names are attacker-controlled: an escape sequence or a right-to-left override must
    not reach the terminal or reorder what the user reads. Callers render the result as plain text, never markup.
    """
    if text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def fit(text: str, width: int, align_right: bool = False) -> str:
    """Pad or crop `text` to exactly `width` terminal cells (wide characters count as two)."""
    if width <= 0:
        return ""
    length = cell_len(text)
    if length == width:
        return text
    if length < width:
        padding = " " * (width - length)
        return padding + text if align_right else text + padding
    # Cropped text ends in an ellipsis so a truncated name is never mistaken for a whole one.
    return set_cell_size(text, width - 1) + "…"


def shortened(text: str, width: int) -> str:
    """`text` as it is if it fits in `width` cells, else cropped to them with an ellipsis."""
    return text if cell_len(text) <= width else fit(text, width)


def capped(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and how many more there are."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit:,} characters)"


# What a spreadsheet takes for the start of a formula (OWASP, "CSV Injection"): =, +, -, @, and tab or CR before
# them. A cell that is only a number ("-5", "+3", "1,024.5") or a lone "-" is left as it is: no formula there.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[\d.,]+%?|-")


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs: one that could start a formula gets a leading
    apostrophe, as OWASP recommends (`=HYPERLINK("x")` is written `'=HYPERLINK("x")`)."""
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
