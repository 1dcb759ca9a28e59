"""How wide the connection table's columns sized to content must be for some rows: their longest values
(RowExtents), measured over all rows at once or a part at a time and merged, then floored and capped per column
(ContentWidths). Textual-free: widgets/connection_table.py lays out the columns from these."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter

from netscope.collectors.model import Socket, is_unix

# Optional columns of text the socket carries (chosen with `c`), sized to their content up to TEXT_COLUMN_MAX.
TEXT_VALUES: dict[str, Callable[[Socket], str]] = {
    "container": lambda s: s.container,
}
TEXT_COLUMN_MAX = 32
ADDRESS_MAX_WIDTH = 47  # a full IPv6 address in brackets with a port
USER_MAX_WIDTH = 16


def address_width(ip: str, proto: str) -> int:
    """Cells an address needs with its port, numeric, up to ADDRESS_MAX_WIDTH."""
    if is_unix(proto):  # a path and an inode of up to 10 digits
        return min(ADDRESS_MAX_WIDTH, len(ip or "*") + 5 + 6)
    return min(ADDRESS_MAX_WIDTH, len(ip) + (2 if ":" in ip else 0) + 6)  # ":" and up to 5 port digits


@dataclass(frozen=True, slots=True)
class ContentWidths:
    """The cells the shown rows' longest values need (each at least its floor): the columns sized to content."""

    local: int = 0
    remote: int = 0
    user: int = 0
    recv_q: int = 0
    send_q: int = 0
    texts: tuple[tuple[str, int], ...] = ()  # (TEXT_VALUES key, width), for the text columns shown


@dataclass(frozen=True, slots=True)
class RowExtents:
    """Some rows' longest values, before floors and caps: address cells, the user's and each text column's
    length, and the largest queues."""

    local: int = 0
    remote: int = 0
    user: int = 0
    recv_q: int = 0
    send_q: int = 0
    texts: tuple[tuple[str, int], ...] = ()  # (TEXT_VALUES key, longest value), for the keys measured

    @classmethod
    def of(cls, rows: list[Socket], text_keys: Iterable[str]) -> RowExtents:
        return cls(
            max((address_width(ip, proto) for ip, proto in {(s.local_ip, s.proto) for s in rows}), default=0),
            max((address_width(ip, proto) for ip, proto in {(s.remote_ip, s.proto) for s in rows}), default=0),
            max(map(len, {s.user for s in rows}), default=0),
            max(map(attrgetter("recv_q"), rows), default=0),
            max(map(attrgetter("send_q"), rows), default=0),
            tuple((key, max(map(len, map(TEXT_VALUES[key], rows)), default=0)) for key in text_keys),
        )

    def with_row(self, sock: Socket) -> RowExtents:
        """These extents and one row's: itself where the row fits (most rows do)."""
        local = address_width(sock.local_ip, sock.proto)
        remote = address_width(sock.remote_ip, sock.proto)
        texts = tuple((key, max(longest, len(TEXT_VALUES[key](sock)))) for key, longest in self.texts)
        if (local <= self.local and remote <= self.remote and len(sock.user) <= self.user
                and sock.recv_q <= self.recv_q and sock.send_q <= self.send_q and texts == self.texts):
            return self
        return RowExtents(max(self.local, local), max(self.remote, remote), max(self.user, len(sock.user)),
                          max(self.recv_q, sock.recv_q), max(self.send_q, sock.send_q), texts)

    def merged(self, other: RowExtents) -> RowExtents:
        """The extents of both sets of rows (measured for the same text keys)."""
        return RowExtents(
            max(self.local, other.local), max(self.remote, other.remote), max(self.user, other.user),
            max(self.recv_q, other.recv_q), max(self.send_q, other.send_q),
            tuple((key, max(mine, theirs)) for (key, mine), (_, theirs) in zip(self.texts, other.texts,
                                                                                 strict=True)),
        )

    def covers(self, floors: ContentWidths) -> bool:
        """Whether these were measured for every text column `floors` asks for."""
        measured = {key for key, _ in self.texts}
        return all(key in measured for key, _ in floors.texts)

    def widths(self, floors: ContentWidths) -> ContentWidths:
        """The columns' widths: each at least its floor; the user's and the text columns capped."""
        longest = dict(self.texts)
        return ContentWidths(
            max(floors.local, self.local),
            max(floors.remote, self.remote),
            max(floors.user, min(USER_MAX_WIDTH, self.user)),
            # A queue of megabytes must never be cut: a cropped number reads as a different number.
            max(floors.recv_q, len(str(self.recv_q))),
            max(floors.send_q, len(str(self.send_q))),
            tuple((key, max(floor, min(TEXT_COLUMN_MAX, longest[key]))) for key, floor in floors.texts),
        )
