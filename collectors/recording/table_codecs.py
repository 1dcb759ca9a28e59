"""The NAT view's conntrack table and the unix sockets of view 1 in a recording: parts of the views chain,
recorded while they are shown (their reads are paced and on demand), whole or "the same as before". Every field
type- and range-checked on the way back: a recording may come from anyone."""

from __future__ import annotations

from typing import Any

from netscope.collectors.conntrack import Flow, Tuple
from netscope.collectors.model import Socket
from netscope.collectors.recording.fileformat import (
    _Bad,
    _int,
    _ip,
    _list,
    _object,
    _owner,
    _ranged,
    _str,
    _text,
    _time,
)
from netscope.collectors.unix_sockets import UNIX_PROTOS, UNIX_STATE_NAMES
from netscope.collectors.view_data import ConntrackSnapshot, UnixRows

_U8, _U16, _U32, _U64 = (1 << 8) - 1, (1 << 16) - 1, (1 << 32) - 1, (1 << 64) - 1
_UNIX_PROTOS = frozenset(UNIX_PROTOS.values())
_UNIX_STATES = frozenset(UNIX_STATE_NAMES.values())
_CT_STATES = frozenset(("", "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
                        "TIME_WAIT", "CLOSE", "SYN_SENT2"))  # fmt: skip
_PATH_LIMIT = 4 * 108  # sun_path's 108 bytes, each at most 4 characters as `\xNN`


# --- conntrack ---------------------------------------------------------------------------------------------------


def _tuple_row(t: Tuple) -> list[Any]:
    return [t.src, t.dst, t.sport, t.dport, list(t.icmp) if t.icmp is not None else None, t.packets, t.bytes]


def conntrack_entry(before: ConntrackSnapshot | None, now: ConntrackSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if now.error:
        body["e"] = now.error
    if before is not None and before.flows == now.flows and before.error == now.error:
        body["d"] = 1
        return body
    body["f"] = [[f.family, f.protocol, _tuple_row(f.original), _tuple_row(f.reply), f.state, f.timeout, f.status,
                  f.mark, f.zone, f.use, f.id] for f in now.flows]  # fmt: skip
    return body


def _optional(value: object, high: int, what: str) -> int | None:
    return None if value is None else _ranged(value, 0, high, what)


def _decode_tuple(row: object) -> Tuple:
    src, dst, sport, dport, icmp, packets, count = _list(row, 7)
    icmp_fields = None
    if icmp is not None:
        kind, code, ident = (_ranged(value, 0, _U16, "an ICMP field") for value in _list(icmp, 3))
        icmp_fields = (kind, code, ident)
    return Tuple(_ip(src), _ip(dst), _optional(sport, _U16, "a port"), _optional(dport, _U16, "a port"),
                 icmp_fields, _optional(packets, _U64, "a packet count"), _optional(count, _U64, "a byte count"))


def decode_conntrack(body: object, before: ConntrackSnapshot | None) -> ConntrackSnapshot:
    body = _object(body)
    error = _text(body.get("e", ""), 1000, "an error")
    if "d" in body:
        if before is None:
            raise _Bad("a conntrack table is given as unchanged with nothing before it")
        flows = before.flows
    else:
        flows = []
        for row in _list(body["f"]):
            family, protocol, original, reply, state, timeout, status, mark, zone, use, ident = _list(row, 11)
            if family not in (4, 6):
                raise _Bad(f"address family {str(family)[:10]} is neither 4 nor 6")
            if state not in _CT_STATES:
                raise _Bad(f"unknown conntrack state {str(state)[:20]!r}")
            flows.append(Flow(family, _ranged(protocol, 0, _U8, "a protocol"), _decode_tuple(original),
                              _decode_tuple(reply), _str(state), _ranged(timeout, 0, _U32, "a timeout"),
                              _ranged(status, 0, _U32, "a status"), _ranged(mark, 0, _U32, "a mark"),
                              _ranged(zone, 0, _U16, "a zone"), _ranged(use, 0, _U32, "a use count"),
                              _ranged(ident, 0, _U32, "an id")))  # fmt: skip
    return ConntrackSnapshot(flows, _time(body["t"]), error=error)


# --- unix sockets ------------------------------------------------------------------------------------------------


def unix_entry(before: UnixRows | None, now: UnixRows) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if before is not None and before.sockets == now.sockets:
        body["d"] = 1
        return body
    body["u"] = [[s.proto, s.local_ip, s.local_port, s.remote_ip, s.remote_port, s.state, s.recv_q, s.send_q,
                  s.backlog, s.uid, s.user, s.pid, s.program, s.first_seen, 1 if s.seen_since_start else 0,
                  s.container] for s in now.sockets]  # fmt: skip
    return body


def decode_unix(body: object, before: UnixRows | None) -> UnixRows:
    body = _object(body)
    taken_at = _time(body["t"])
    if "d" in body:
        if before is None:
            raise _Bad("unix sockets are given as unchanged with nothing before them")
        return UnixRows(taken_at, before.sockets)
    sockets = []
    for row in _list(body["u"]):
        proto, path, inode, peer_path, peer, state, rq, sq, backlog, uid, *owner, first, since, container = _list(
            row, 16)
        if proto not in _UNIX_PROTOS:
            raise _Bad(f"unknown unix socket type {str(proto)[:20]!r}")
        if state not in _UNIX_STATES:
            raise _Bad(f"unknown unix socket state {str(state)[:20]!r}")
        number = _ranged(inode, 1, _U64, "an inode")
        sock = Socket(proto, _text(path, _PATH_LIMIT, "a path"), number, _text(peer_path, _PATH_LIMIT, "a path"),
                      _ranged(peer, 0, _U64, "an inode"), _str(state), _ranged(rq, 0, _U32, "a queue"),
                      _ranged(sq, 0, _U32, "a queue"), number, _ranged(uid, -1, _U32, "a uid"),
                      *_owner(*owner), _time(first), bool(_int(since)),
                      _text(container, 256, "a container"))  # fmt: skip
        sock.backlog = _ranged(backlog, 0, _U32, "a backlog")
        sockets.append(sock)
    return UnixRows(taken_at, sockets)


