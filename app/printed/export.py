"""The UI's `e` / `E`: the rows of the view shown, to a CSV or JSON file (regular files only; CSV never starts a
formula)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from netscope.collectors.model import Socket
from netscope.collectors.regular_files import open_regular
from netscope.widgets.formatting import (
    printable,
    spreadsheet_safe,
)

if TYPE_CHECKING:  # only for annotations: one-shot output starts without importing every collector
    pass

from netscope.app.printed.formats import LineBuffer, csv_lines, json_lines, socket_record


def write_table_export(path: Path, labels: list[str], rows: list[list[str]], fmt: str) -> int:
    """The UI's export of views 2-6: a table's rows as shown, CSV with its column labels as the header, or JSON
    objects keyed by them; returns the row count. Cells are the text on screen (rates as "1.2 MB/s")."""
    if fmt == "csv":
        out = LineBuffer()
        writer = csv.writer(out, lineterminator="")
        writer.writerow(labels)
        lines = [out.take()]
        for row in rows:
            writer.writerow([spreadsheet_safe(printable(cell)) for cell in row])
            lines.append(out.take())
    else:
        lines = list(json_lines(dict(zip(labels, row, strict=True)) for row in rows))
    with open_regular(path, write=True) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as file:
        for line in lines:
            file.write(line + "\n")
    return len(rows)


def write_export(path: Path, sockets: list[Socket], fmt: str) -> int:
    """The UI's export: `sockets` as shown (filtered, sorted) to a CSV or JSON file; returns the row count."""
    lines = csv_lines(sockets) if fmt == "csv" else json_lines(socket_record(sock) for sock in sockets)
    with open_regular(path, write=True) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as file:
        for line in lines:
            file.write(line + "\n")
    return len(sockets)
