"""Sockets in a recording: a socket as a row, a change as a short row, and back, every field type- and
range-checked (a recording may come from anyone)."""

from __future__ import annotations

from typing import Any

from netscope.collectors.model import PROTOCOLS, Socket
from netscope.collectors.recording.fileformat import (
    _Bad,
    _int,
    _ip,
    _owner,
    _ranged,
    _state,
    _time,
)

# --- encoding sockets --------------------------------------------------------------------------------------------

_PROTOCOL_SET = frozenset(PROTOCOLS)
_U32_MAX, _U64_MAX = (1 << 32) - 1, (1 << 64) - 1
Row = list[Any]


def _row(sock: Socket, taken_at: float) -> Row:
    return [
        sock.proto, sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port, sock.state,
        sock.recv_q, sock.send_q, sock.inode, sock.uid, sock.user, sock.pid, sock.program,
        None if sock.first_seen == taken_at else sock.first_seen, 1 if sock.seen_since_start else 0,
    ]  # fmt: skip


def _change(ident: int, sock: Socket) -> Row:
    # Endpoints are the identity and first_seen is carried over by the diff, so only these can differ.
    return [ident, sock.state, sock.recv_q, sock.send_q, sock.inode, sock.uid, sock.user, sock.pid, sock.program]


def _socket(row: object, taken_at: float) -> Socket:
    """A recorded socket row, every field type- and range-checked: a recording may be crafted by anyone."""
    if type(row) is not list or len(row) != 15:
        raise _Bad("a socket row is not a list of 15 fields")
    proto, lip, lport, rip, rport, state, rq, sq, inode, uid, user, pid, program, first, since = row
    if proto not in _PROTOCOL_SET:
        raise _Bad(f"unknown protocol {proto!r:.20}")
    return Socket(
        proto, _ip(lip), _ranged(lport, 0, 65535, "a port"), _ip(rip), _ranged(rport, 0, 65535, "a port"),
        _state(state), _ranged(rq, 0, _U32_MAX, "a queue"), _ranged(sq, 0, _U32_MAX, "a queue"),
        _ranged(inode, 0, _U64_MAX, "an inode"), _ranged(uid, 0, _U32_MAX, "a uid"), *_owner(user, pid, program),
        taken_at if first is None else _time(first), bool(_int(since)),
    )  # fmt: skip


def _changed_socket(row: object, before: Socket) -> Socket:
    if type(row) is not list or len(row) != 9:
        raise _Bad("a changed-socket row is not a list of 9 fields")
    _, state, rq, sq, inode, uid, user, pid, program = row
    return Socket(
        before.proto, before.local_ip, before.local_port, before.remote_ip, before.remote_port, _state(state),
        _ranged(rq, 0, _U32_MAX, "a queue"), _ranged(sq, 0, _U32_MAX, "a queue"),
        _ranged(inode, 0, _U64_MAX, "an inode"), _ranged(uid, 0, _U32_MAX, "a uid"), *_owner(user, pid, program),
        before.first_seen, before.seen_since_start,
    )  # fmt: skip


def _known(by_id: dict[int, Socket], ident: object) -> Socket:
    """The socket a delta refers to by number."""
    number = _int(ident)
    sock = by_id.get(number)
    if sock is None:
        raise _Bad(f"it refers to socket number {str(number)[:24]}, which no frame since the last keyframe added")
    return sock
