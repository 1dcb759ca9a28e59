"""The folder's rows by key, held as a snapshot's own dict of sockets and what differs from it.

With no filter on, the rows are every socket but those folded, and the folds: a dict of their own would be a
second copy of the snapshot's dict (5 MiB at 100,000 sockets, measured). So the rows are the snapshot's dict
itself (`base`, never changed here), the keys of it that are no row (`hidden`: folded sockets) and the rows that
are no socket of it (`extra`: the folds). With a filter on, the rows are few, and are a dict of their own (`extra`
alone). When most of a snapshot is folded (a SYN flood), a set of their keys would cost more than the dict saves,
and the rows become a dict of their own too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import chain

from netscope.collectors.model import Socket, SocketKey


class RowMap:
    """Row key -> row, a socket or a fold: `get`, `in`, `[]=`, `pop`, `values` as a dict's."""

    __slots__ = ("_base", "_extra", "_hidden")

    def __init__(self) -> None:
        # Kept true: every key of _hidden is in _base, and a key of _extra that is in _base is in _hidden.
        self._base: Mapping[SocketKey, Socket] = {}
        self._extra: dict[SocketKey, Socket] = {}
        self._hidden: set[SocketKey] = set()

    def clear(self) -> None:
        """No rows, held as a dict of their own."""
        self._base = {}
        self._extra = {}
        self._hidden = set()

    def over(self, base: Mapping[SocketKey, Socket]) -> None:
        """Every socket of `base` a row: rows held as differences from it until clear(). `base` must not change
        while it is held (a snapshot's dict does not: the next refresh's is another one); see rebase()."""
        self.clear()
        self._base = base

    @property
    def is_over_base(self) -> bool:
        return bool(self._base)

    def get(self, key: SocketKey, default: Socket | None = None) -> Socket | None:
        row = self._extra.get(key)
        if row is not None:
            return row
        if key in self._hidden:
            return default
        return self._base.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._extra or (key in self._base and key not in self._hidden)

    def __len__(self) -> int:
        return len(self._base) - len(self._hidden) + len(self._extra)

    def __setitem__(self, key: SocketKey, row: Socket) -> None:
        if key in self._base:
            if self._base[key] is row:
                self._hidden.discard(key)
                self._extra.pop(key, None)
                return
            self._hidden.add(key)
        self._extra[key] = row

    def pop(self, key: SocketKey, default: Socket | None = None) -> Socket | None:
        row = self.get(key)
        if row is None:
            return default
        self._extra.pop(key, None)
        if key in self._base:
            self._hidden.add(key)
        return row

    def update(self, rows: Mapping[SocketKey, Socket]) -> None:
        for key, row in rows.items():
            self[key] = row

    def values(self) -> Iterable[Socket]:
        base, hidden = self._base, self._hidden
        if not hidden:
            return chain(base.values(), self._extra.values())
        return chain((row for key, row in base.items() if key not in hidden), self._extra.values())

    def items(self) -> Iterable[tuple[SocketKey, Socket]]:
        base, hidden = self._base, self._hidden
        return chain(((key, row) for key, row in base.items() if key not in hidden), self._extra.items())

    def __iter__(self) -> Iterator[SocketKey]:
        base, hidden = self._base, self._hidden
        return chain((key for key in base if key not in hidden), self._extra)

    def rebase(self, base: Mapping[SocketKey, Socket], touched: Iterable[SocketKey]) -> None:
        """The same rows, held as differences from `base`, the next snapshot's dict, which differs from the one
        held only under the keys in `touched` (those of the sockets that came, changed or went, and of the rows
        that did). No-op for rows held as a dict of their own."""
        if not self._base:
            return
        now = {key: self.get(key) for key in touched}
        self._base = base
        extra, hidden = self._extra, self._hidden
        for key, row in now.items():
            extra.pop(key, None)
            hidden.discard(key)
            if row is None:
                if key in base:
                    hidden.add(key)
            elif base.get(key) is not row:
                extra[key] = row
                if key in base:
                    hidden.add(key)
        self.settle()

    def settle(self) -> None:
        """Rows held as a dict of their own, if most of the base is hidden (most of the snapshot folded): a dict
        of the rows is then smaller than the set of keys that are none."""
        if self._base and len(self._hidden) > len(self._base) // 2:
            self._extra = dict(self.items())
            self._base = {}
            self._hidden = set()
