"""Which readers run: the compiled ones (collectors/_speedups.c) or their pure-Python twins here.

The compiled module is optional (setup.py builds it where a C compiler is present), and the twins give the same
answers for the same input: tests/test_speedups.py runs both on the same real /proc. Set NETSCOPE_PURE_PYTHON=1 to
run the twins even where the compiled module is installed; `netscope --version` says which path runs, and why.

Why compiled at all (benchmarks/README.md, "The compiled readers"): reading the owner of 100,000 sockets is
100,000 readlink() calls, and in Python each one's handling cost as much again as the call; in C the calls run
without the GIL, so fd_links.py can spread them over threads, which Python's own loop cannot use (measured, not
kept). And the sock_diag dump is one 88-byte message per socket, whose unpacking, lookups and bookkeeping in
Python cost more than the kernel's dump itself.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

# What read_fd_links finds in one fd directory: fd name -> inode of each socket in the table given, fd name ->
# inode of each other socket, the names of other links (files, pipes ...), and the names we may not read.
LinkFinds = tuple[dict[str, int], dict[str, int], list[str], list[str]]

_SOCKET_PREFIX = "socket:["  # what readlink(/proc/<pid>/fd/<n>) says for a socket: "socket:[12345]"
_SOCKET_PREFIX_LEN = len(_SOCKET_PREFIX)


def read_fd_links_python(dir_fd: int, names: Iterable[str], table: set[int] | None) -> LinkFinds:
    """readlink each of `names` relative to `dir_fd` (an open /proc/<pid>/fd): see LinkFinds. A name that
    vanished meanwhile (the fd was closed) is in none of the four."""
    in_table: dict[str, int] = {}
    other: dict[str, int] = {}
    files: list[str] = []
    denied: list[str] = []
    prefix, prefix_len = _SOCKET_PREFIX, _SOCKET_PREFIX_LEN
    readlink = os.readlink
    no_table: set[int] = set()
    table = table if table is not None else no_table
    for name in names:
        try:
            link = readlink(name, dir_fd=dir_fd)
        except PermissionError:
            denied.append(name)
            continue
        except OSError:
            continue  # closed since it was listed
        number = link[prefix_len:-1]
        if link.startswith(prefix) and link.endswith("]") and number.isascii() and number.isdigit():
            inode = int(number)
            if inode in table:
                in_table[name] = inode
            else:
                other[name] = inode
        else:
            files.append(name)
    return in_table, other, files, denied


def _compiled() -> tuple[ModuleType | None, str]:
    """The compiled module, or None and why not."""
    if os.environ.get("NETSCOPE_PURE_PYTHON", "") not in ("", "0"):
        return None, "NETSCOPE_PURE_PYTHON is set"
    try:
        from netscope.collectors import _speedups
    except ImportError as exc:
        if importlib.util.find_spec("netscope.collectors._speedups") is None:
            return None, "not built (there was no C compiler when netscope was installed)"
        return None, f"the compiled module failed to load ({exc})"
    return _speedups, ""


_MODULE, WHY_PURE = _compiled()
COMPILED = _MODULE is not None
read_fd_links: Callable[[int, Iterable[str], set[int] | None], LinkFinds] = (
    _MODULE.read_fd_links if _MODULE is not None else read_fd_links_python
)
# The sock_diag dump's per-socket loop, or None: its twin is the loop in sockdiag._Parser.parse, which takes over
# wherever this one stops (at the end of a dump, and always without the compiled module).
parse_inet_diag = _MODULE.parse_inet_diag if _MODULE is not None else None
# Per refresh, over every socket: giving each its owner (twin: connections._attach_owners_python), and the first
# pass of the diff (twin: diff.diff_keys_python). None without the compiled module.
attach_owners = _MODULE.attach_owners if _MODULE is not None else None
diff_keys = _MODULE.diff_keys if _MODULE is not None else None


def _identities_python(expected: int = 0) -> dict[int, Any]:
    return {}


# A read's sockets by kernel cookie, for the next read's reuse (twin: a dict of int -> Socket), and the sockets of
# one such table whose cookie another lacks (twin: sockdiag._gone's loop).
Identities: Callable[[int], Any] = _MODULE.Identities if _MODULE is not None else _identities_python
identities_gone = _MODULE.identities_gone if _MODULE is not None else None
# A row's sort key in one bytes column, or None: its twin is row_order.bytes_sort_key.
BytesSortKey: Callable[..., Any] | None = _MODULE.BytesSortKey if _MODULE is not None else None
# An attribute read from (and set as) one item of a tuple slot, or None: its twin is a property (model.py).
TupleField: Callable[..., object] | None = _MODULE.TupleField if _MODULE is not None else None
# Socket.counter_name worked out on each read, or None: its twin is model.counter_name_of as a property.
CounterName: Callable[[type], object] | None = _MODULE.CounterName if _MODULE is not None else None


def describe() -> str:
    """One line for `--version`: which readers run."""
    return "readers: compiled C" if COMPILED else f"readers: pure Python, {WHY_PURE}"
