"""Recording snapshots to a file and replaying them (`netscope --record FILE`, `netscope --replay FILE`).

No Textual here: the one-shot CLI, the headless recorder and the UI all use this module.

File format, version 2 (integers big-endian):

    file header   magic b"\\x89NETSCOPE\\r\\n\\x1a\\n" (12 bytes), version u16, length u32, that many bytes of
                  UTF-8 JSON (format, version, created, hostname, netscope, interval), CRC-32 u32 of all of it
    frame ...     sync b"\\x89NSF", length u32, taken_at f64 (time.time()), kind u8, seq u32, CRC-32 u32 of
                  length..seq and the payload, then `length` bytes of payload: raw deflate of compact JSON
    end frame     kind 2, no payload: written by close(), so a reader can tell a finished recording from a
                  process that was killed

A recording holds three independent chains of frames, interleaved in the order they were written:

    sockets       kinds 1 keyframe (every socket) and 0 delta (what changed since the frame before)
    views         kinds 3 keyframe and 4 delta: interfaces, protocol statistics, multicast groups
    routes        kinds 5 keyframe (the whole routing table) and 6 delta (what changed; empty: nothing did)

`seq` numbers each chain's frames 0, 1, 2 ... (0 for the end frame). A delta applies to the frame of its chain
with the seq just before; after damaged bytes the reader checks that, so a damaged frame costs only its own chain
(a lost view frame never costs a socket frame) and a chain resumes at its next keyframe.

Sockets. A keyframe's payload is `{"s": [row ...], "f": reload, "o": owners_incomplete, "w": [warning ...],
"c": collect_seconds}`; a delta's is `{"a": [row ...], "x": [[id, state, recv_q, send_q, inode, uid, user, pid,
program] ...], "r": [id ...], "o", "c"}` plus `"w"` only when the warnings changed. A row is `[proto, local_ip,
local_port, remote_ip, remote_port, state, recv_q, send_q, inode, uid, user, pid, program, first_seen,
seen_since_start]`, first_seen null meaning the frame's own time. Sockets are referred to by id: a keyframe numbers
its rows 0, 1, 2 ... and each later added socket takes the next number, so a closed or changed socket costs a few
bytes instead of its whole address. Deltas are compressed with the last keyframe's JSON as deflate's preset
dictionary: addresses, program and user names already seen compress to back-references.

Views (RecordingWriter.write_views, one frame per call, at the time given to it). Payload `{"i": interfaces,
"s": statistics, "m": multicast, "w": [warning ...]}`, each key only when there is something: "w" holds this
read's own warnings (a collector that failed), not those of the parts. A keyframe holds every part recorded so
far (a part not read this time as last recorded); a delta only the parts read this time, each either whole or as a
change against that part's previous value. Every part entry has "t" (the snapshot's taken_at) and "w" (its
warnings, left out when none); a change has "d": 1.
  interfaces   whole: `"x": [[name, index, up, running, mtu, flags, speed_mbps, mac, [ipv4], [ipv6], [rx_bytes,
               rx_packets, rx_errors, rx_dropped, rx_fifo, rx_frame, rx_multicast, tx_bytes, tx_packets,
               tx_errors, tx_dropped, tx_fifo, tx_collisions, tx_carrier], rx_bytes_per_s, tx_bytes_per_s,
               rx_packets_per_s, tx_packets_per_s, [rx_history], [tx_history], operstate] ...]`, plus "a" and
               "g" (appeared, disappeared) when not empty. A change lists, for each interface, a whole row or
               `[j, static, counter_changes, rates, rx_history, tx_history]` against interface j before: static
               is null or [index ... operstate] as above; counter_changes the 14 counters minus the old ones; rates
               null when they are the counter changes over "e" (one elapsed time for the whole sample: the
               collector divides by one), else the four rates; a history is -1 (unchanged), n (the old one
               without its first n values, then this sample's rate) or the whole list.
  statistics   whole: `"c": [[group, name, value, delta, rate, label, is_gauge] ...]`. A change (same counters
               in the same order): "v" [skip, value_change, skip, value_change ...] for the counters that moved
               (skip: counters passed over since the last one); a delta is the value's change (0 for a running
               count that went down), a rate delta / "e" (0.0 for a delta of 0 or without "e"), except those
               listed in "x" [index, delta ...] and "q" [index, rate ...].
  multicast    whole: `"g": [[interface, family, group, users] ...]`; a change means "the same groups".
Routes (written by write_views when the ViewData has routes). Keyframe `{"t", "s": source, "r": [[family,
destination, gateway, interface, flags, metric, protocol, scope, table, preferred_source, type, nexthop] ...],
"w"}`; delta `{"t", "s" (when it changed), "w", "x": [skip, ...] (rows removed, counted in the old table), "a":
[skip, row, ...] (rows inserted, counted in the new table)}`. An unchanged table costs an empty delta (about 50
bytes with its frame), however many routes it has.

Version 1 files (sockets only; frames without seq, 21-byte headers) are still read.

Why this shape: a frame is written with one write() and flushed, and carries its own length and checksum, so a
process killed mid-write leaves every earlier frame readable and the reader says exactly where the file ends. A
keyframe is written at the start of each chain, whenever the source starts over, and whenever the chain's deltas
since its last one add up to `keyframe_ratio` times its size or `keyframe_seconds` have passed (routes: after
`route_keyframe_seconds`, and only if the table changed meanwhile): keyframes stay a bounded share of the file (its
size follows the churn, not the number of sockets or routes), seeking decodes one keyframe and a bounded run of
deltas per chain, and a damaged frame loses only its chain's frames up to its next keyframe, where reading resumes.
Views stay small: an hour of a busy server's views, one write a second (450 counters with 60 to 120 moving by
random amounts, six interfaces with random traffic and five minutes of history, 40 routes read every 10 s) took
2.5 MB, 530 bytes a second plus 15 keyframes of 34 KB (tests/test_recording_views.py bounds it at 2.8 MB); a quiet
machine's second takes under 200 bytes. Seeking there decodes at most one keyframe and 600 deltas (0.1 s on the
project's 2-core machine); a changed table of a million routes takes 2-4 s to write and 7 s to decode once.
Payloads are JSON, never pickle: a recording may come from someone else, and loading it must not run code; every
decoded value is type-checked before it becomes a Socket, an Interface, a Route or a counter.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import mmap
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netscope import __version__
from netscope.collectors.connections import CollectionFailure
from netscope.collectors.gc_pause import gc_paused
from netscope.collectors.interfaces import Interface, InterfaceCounters, InterfaceSnapshot
from netscope.collectors.limits import PID_MAX_LIMIT, interval_problem
from netscope.collectors.model import ALL_STATE_NAMES, PROTOCOLS, Snapshot, SnapshotDiff, Socket, SocketKey
from netscope.collectors.multicast import Membership, MulticastSnapshot
from netscope.collectors.protostats import ProtocolCounter, StatsSnapshot
from netscope.collectors.regular_files import open_regular
from netscope.collectors.routes import Route, RouteSnapshot
from netscope.collectors.sources import Recorder, ReplayControls, SnapshotSource, SourceDefaults
from netscope.collectors.view_data import ViewData, ViewSource, ViewSourceDefaults

MAGIC = b"\x89NETSCOPE\r\n\x1a\n"
VERSION = 2
_FILE_HEAD = struct.Struct("!HI")  # version, header JSON length
_U32 = struct.Struct("!I")
SYNC = b"\x89NSF"
_FRAME = struct.Struct("!4sIdBII")  # sync, payload length, taken_at, kind, seq, crc
_FRAME_V1 = struct.Struct("!4sIdBI")  # sync, payload length, taken_at, kind, crc
FRAME_HEADER_SIZE = _FRAME.size  # 25
FRAME_HEADER_SIZE_V1 = _FRAME_V1.size  # 21
_CRC_FROM = 4  # the CRC covers the header from the length on (not the sync marker), then the payload

DELTA, KEYFRAME, END = 0, 1, 2
VIEWS_KEYFRAME, VIEWS_DELTA, ROUTES_KEYFRAME, ROUTES_DELTA = 3, 4, 5, 6
SOCKETS, VIEWS, ROUTES = 0, 1, 2  # the chains
# kind -> (chain, is a keyframe)
_CHAINS = {
    DELTA: (SOCKETS, False), KEYFRAME: (SOCKETS, True), VIEWS_KEYFRAME: (VIEWS, True), VIEWS_DELTA: (VIEWS, False),
    ROUTES_KEYFRAME: (ROUTES, True), ROUTES_DELTA: (ROUTES, False),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Layout:
    """How one version of the format lays out a frame header."""

    header: struct.Struct
    kinds: frozenset[int]
    crc_at: int  # the CRC's offset in the header: it covers [_CRC_FROM, crc_at) then the payload
    seq: bool  # whether frames carry their chain's sequence number


_LAYOUTS = {
    1: _Layout(_FRAME_V1, frozenset({DELTA, KEYFRAME, END}), 17, False),
    2: _Layout(_FRAME, frozenset({END, *_CHAINS}), 21, True),
}

# A payload larger than this (compressed or not) is treated as damage: 100,000 sockets take about 10 MB of JSON,
# a million routes about 80 MB, and a damaged length field or a crafted deflate stream must not make the reader
# allocate without bound.
MAX_PAYLOAD = 512 << 20
INFLATE_RATIO = 128  # see inflate_bound()
MIN_INFLATE_BOUND = 4 << 20
_ZDICT_LIMIT = 32 << 10  # deflate's window: only the last 32 KiB of a preset dictionary are ever used
_HEADER_LIMIT = 1 << 20

_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


# --- errors ------------------------------------------------------------------------------------------------------


class RecordingError(Exception):
    """Anything wrong with a recording file, said in plain words."""


class NotARecording(RecordingError):
    """The file is not a netscope recording, or its header is damaged: nothing in it can be read."""


class RecordingDamaged(RecordingError):
    """Part of a recording is truncated or corrupt. Everything before the damage (and after the next keyframe,
    when reading could resume there) stays readable; `readable_frames` says how many frames are."""

    def __init__(
        self, message: str, *, readable_frames: int, bad_frame: int, truncated: bool, at_time: float | None,
        frames_lost: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.readable_frames = readable_frames
        self.bad_frame = bad_frame  # 1-based number the first unreadable frame would have had
        self.truncated = truncated  # the file ends inside a frame (a killed writer), rather than bad bytes
        self.at_time = at_time  # taken_at of the last good frame before the damage, if any
        self.frames_lost = frames_lost  # False: it cost view data only, every socket frame is readable


# Times a frame or a socket may carry: from the epoch to the year 9999 (beyond, the clock and date functions raise
# OverflowError; a crafted frame said 1e300).
MAX_TIME = 253_402_214_400.0


def _is_time(value: float) -> bool:
    return 0.0 <= value <= MAX_TIME  # NaN is not


def _clock(seconds: float | None, first: float | None = None) -> str:
    """12:03:04, with the date when it is not the recording's first day (the reader then knows which 12:03)."""
    if seconds is None:
        return "the start"
    local = time.localtime(seconds)
    if first is not None and time.localtime(first)[:3] != local[:3]:
        return time.strftime("%Y-%m-%d %H:%M:%S", local)
    return time.strftime("%H:%M:%S", local)


# --- encoding sockets --------------------------------------------------------------------------------------------

_PROTOCOL_SET = frozenset(PROTOCOLS)
_STATE_SET = frozenset(ALL_STATE_NAMES)
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


class _Bad(ValueError):
    """A decoded payload that does not have the shape this format promises."""


def _int(value: object) -> int:
    if type(value) is not int:  # bool is an int subclass: refuse it too
        raise _Bad(f"expected an integer, found {type(value).__name__}")
    return value


def _str(value: object) -> str:
    if type(value) is not str:
        raise _Bad(f"expected a string, found {type(value).__name__}")
    return value


def _pid(value: object) -> int | None:
    return None if value is None else _int(value)


def _float(value: object) -> float:
    if type(value) is float or type(value) is int:
        with contextlib.suppress(OverflowError):  # an integer too big for a float
            number = float(value)
            if math.isfinite(number):
                return number
    raise _Bad(f"expected a finite number, found {str(value)[:40]}")


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise _Bad(f"expected true or false, found {type(value).__name__}")
    return value


def _list(value: object, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        raise _Bad("expected a list" if length is None else f"expected a list of {length}")
    return value


def _strs(value: object) -> list[str]:
    return [_str(item) for item in _list(value)]


def _floats(value: object) -> list[float]:
    return [_float(item) for item in _list(value)]


def _object(value: object) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Bad("expected an object")
    return value


def _ranged(value: object, low: int, high: int, what: str) -> int:
    number = _int(value)
    if not low <= number <= high:
        raise _Bad(f"{what} {str(number)[:24]} is out of range ({low} to {high})")
    return number


def _text(value: object, limit: int, what: str) -> str:
    text = _str(value)
    if len(text) > limit:
        raise _Bad(f"{what} is {len(text):,} characters long; at most {limit:,} are possible")
    return text


def _ip(value: object) -> str:
    text = _text(value, 45, "an address")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except OSError:
        raise _Bad(f"{text!r} is not an IP address") from None
    return text


def _state(value: object) -> str:
    if value not in _STATE_SET:
        raise _Bad(f"unknown state {str(value)[:20]!r}")
    return _str(value)


def _owner(user: object, pid: object, program: object) -> tuple[str, int | None, str]:
    return (_text(user, 256, "a user name"),
            None if pid is None else _ranged(pid, 1, PID_MAX_LIMIT, "a PID"),
            _text(program, 4096, "a program name"))


def _time(value: object) -> float:
    number = _float(value)
    if not _is_time(number):
        raise _Bad(f"the time {number:.6g} is outside the years 1970 to 9999")
    return number


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


def _describe(error: BaseException) -> str:
    """A decoding error in words (a bare KeyError would print as just the key)."""
    if isinstance(error, KeyError):
        return f"the field {str(error.args[0])[:40]!r} is missing"
    if isinstance(error, (TypeError, IndexError)):
        return f"a value has the wrong shape ({error})"
    return str(error)


def _compress(data: bytes, zdict: bytes = b"", level: int | None = None) -> bytes:
    # Raw deflate (no zlib header or Adler-32): the frame's CRC already guards it, and small deltas save 6 bytes.
    # Level 9 for deltas (small: it costs nothing); 6 for keyframes, where 9 is 5x slower for 10% less size
    # (measured at 100,000 sockets: 0.12 s against 0.6 s).
    if level is None:
        level = 9 if zdict else 6
    if zdict:
        packer = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=zdict)
    else:
        packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def inflate_bound(compressed: int) -> int:
    """The most a frame of `compressed` bytes may inflate to. Real frames inflate 15-30 times (measured at 100,000
    sockets: 17x for connections with owners, 28x for a SYN flood's near-identical rows); a crafted one can reach
    deflate's 1032x, and 510 KB once became 500 MiB and 1 GB of memory. Beyond this, decoding stops."""
    return min(MAX_PAYLOAD, max(MIN_INFLATE_BOUND, INFLATE_RATIO * compressed))


def _decompress(data: bytes, zdict: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, zdict=zdict) if zdict else zlib.decompressobj(-15)
    bound = inflate_bound(len(data))
    out = unpacker.decompress(data, bound)  # zlib stops at `bound`: never more is allocated
    if unpacker.unconsumed_tail:
        raise _Bad(
            f"its {len(data):,} bytes expand to more than {bound >> 20} MiB, over {INFLATE_RATIO} times their "
            "size: netscope never writes such a frame"
        )
    if not unpacker.eof:
        raise _Bad("its compressed data ends early")
    return out


# --- encoding views 2-5 ------------------------------------------------------------------------------------------
# Each part has an entry function, (previous or None, new) -> JSON object, and a decoding function, (JSON object,
# previous or None) -> snapshot. Decoding builds new objects and never changes the previous snapshot: it may have
# been handed out already.

_COUNTERS = (
    "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo", "rx_frame", "rx_multicast",
    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_fifo", "tx_collisions", "tx_carrier",
)  # fmt: skip
_RATE_COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")  # what the four rates divide


def _divisor(pairs: list[tuple[int, float]]) -> float | None:
    """The elapsed time e with change / e == rate for the most (change, rate) pairs, or None if there are none.

    The collectors divide every change of one sample by the same elapsed time, so recording e once reproduces
    all their rates exactly. e is found from a rate by dividing back, which may be an ulp off; the neighbours are
    tried too, and the writer records any rate e does not give as it is."""
    best, best_count, tried = None, 0, set()
    for change, rate in pairs[:3]:
        guess = change / rate
        candidates = [guess]
        for direction in (math.inf, -math.inf):
            step = guess
            for _ in range(2):
                step = math.nextafter(step, direction)
                candidates.append(step)
        for candidate in candidates:
            if candidate in tried or not (candidate > 0 and math.isfinite(candidate)):
                continue
            tried.add(candidate)
            count = sum(1 for n, r in pairs if n / candidate == r)
            if count > best_count:
                best, best_count = candidate, count
                if count == len(pairs):
                    return best
    return best


def _counter_values(counters: InterfaceCounters) -> list[int]:
    return [getattr(counters, name) for name in _COUNTERS]


def _interface_rates(before: InterfaceCounters, now: InterfaceCounters, elapsed: float) -> tuple[float, ...]:
    # As InterfaceCollector computes them: a counter that went backwards gives 0.0.
    return tuple(
        (getattr(now, name) - getattr(before, name)) / elapsed if getattr(now, name) >= getattr(before, name)
        else 0.0
        for name in _RATE_COUNTERS
    )  # fmt: skip


def _rates(interface: Interface) -> tuple[float, ...]:
    return (interface.rx_bytes_per_s, interface.tx_bytes_per_s, interface.rx_packets_per_s,
            interface.tx_packets_per_s)  # fmt: skip


def _static(interface: Interface) -> list[Any]:
    i = interface
    return [i.index, i.up, i.running, i.mtu, i.flags, i.speed_mbps, i.mac, i.ipv4, i.ipv6, i.operstate]


def _interface_row(interface: Interface) -> list[Any]:
    *static, operstate = _static(interface)
    i = interface
    return [i.name, *static, _counter_values(i.counters), *_rates(i), i.rx_history, i.tx_history, operstate]


def _history_code(before: list[float], now: list[float], rate: float) -> int | list[float]:
    """-1: unchanged; n: `before` without its first n values, then `rate` (the usual: one sample more); else the
    whole list."""
    if now == before:
        return -1
    if now and now[-1] == rate:
        kept = len(now) - 1
        dropped = len(before) - kept
        if dropped >= 0 and now[:kept] == before[dropped:]:
            return dropped
    return now


def _interfaces_entry(before: InterfaceSnapshot | None, now: InterfaceSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if before is None:
        body["x"] = [_interface_row(interface) for interface in now.interfaces]
    else:
        body["d"] = 1
        where: dict[str, int] = {}
        for position, interface in enumerate(before.interfaces):
            where.setdefault(interface.name, position)
        pairs: list[tuple[int, float]] = []
        for interface in now.interfaces:
            if (found := where.get(interface.name)) is not None:
                old = before.interfaces[found].counters
                for name, rate in zip(_RATE_COUNTERS, _rates(interface), strict=True):
                    change = getattr(interface.counters, name) - getattr(old, name)
                    if change > 0 and rate:
                        pairs.append((change, rate))
        elapsed = _divisor(pairs)
        items: list[Any] = []
        for interface in now.interfaces:
            index = where.get(interface.name)
            if index is None:
                items.append(_interface_row(interface))
                continue
            old_interface = before.interfaces[index]
            static = _static(interface)
            rates = _rates(interface)
            derived = _interface_rates(old_interface.counters, interface.counters, elapsed or 1.0)
            items.append([
                index,
                None if static == _static(old_interface) else static,
                [a - b for a, b in zip(_counter_values(interface.counters),
                                       _counter_values(old_interface.counters), strict=True)],
                None if derived == rates else list(rates),
                _history_code(old_interface.rx_history, interface.rx_history, interface.rx_bytes_per_s),
                _history_code(old_interface.tx_history, interface.tx_history, interface.tx_bytes_per_s),
            ])  # fmt: skip
        if elapsed is not None:
            body["e"] = elapsed
        body["x"] = items
    if now.appeared:
        body["a"] = now.appeared
    if now.disappeared:
        body["g"] = now.disappeared
    if now.warnings:
        body["w"] = now.warnings
    return body


def _decode_static(value: object) -> dict[str, Any]:
    index, up, running, mtu, flags, speed, mac, ipv4, ipv6, operstate = _list(value, 10)
    return {
        "index": _int(index), "up": _bool(up), "running": _bool(running), "mtu": _int(mtu), "flags": _str(flags),
        "speed_mbps": None if speed is None else _int(speed), "mac": _str(mac), "ipv4": _strs(ipv4),
        "ipv6": _strs(ipv6), "operstate": _str(operstate),
    }  # fmt: skip


def _decode_counters(value: object) -> InterfaceCounters:
    return InterfaceCounters(*(_int(v) for v in _list(value, len(_COUNTERS))))


def _decode_interface_row(row: list[Any]) -> Interface:
    name, *static, counters, rx, tx, rxp, txp, rx_history, tx_history, operstate = _list(row, 18)
    fields = _decode_static([*static, operstate])
    return Interface(
        name=_str(name), counters=_decode_counters(counters), rx_bytes_per_s=_float(rx), tx_bytes_per_s=_float(tx),
        rx_packets_per_s=_float(rxp), tx_packets_per_s=_float(txp), rx_history=_floats(rx_history),
        tx_history=_floats(tx_history), **fields,
    )  # fmt: skip


def _decode_history(code: object, before: list[float], rate: float) -> list[float]:
    if type(code) is int:
        if code == -1:
            return list(before)
        if not 0 <= code <= len(before):
            raise _Bad("a history drops more samples than it had")
        return [*before[code:], rate]
    return _floats(code)


def _decode_interfaces(body: object, before: InterfaceSnapshot | None) -> InterfaceSnapshot:
    body = _object(body)
    change = "d" in body
    if change and before is None:
        raise _Bad("interfaces are given as a change with nothing before them")
    elapsed = _float(body.get("e", 1.0))
    if elapsed <= 0:
        raise _Bad("a sample's elapsed time is not positive")
    interfaces: list[Interface] = []
    for item in _list(body["x"]):
        if type(item) is list and item and type(item[0]) is str:
            interfaces.append(_decode_interface_row(item))
            continue
        if not change or before is None:
            raise _Bad("an interface is given as a change with nothing before it")
        index, static, changes, rates, rx_history, tx_history = _list(item, 6)
        index = _int(index)
        if not 0 <= index < len(before.interfaces):
            raise _Bad("an interface change refers to no interface")
        old = before.interfaces[index]
        fields = _decode_static(_static(old) if static is None else static)
        counters = InterfaceCounters(*(
            a + _int(b) for a, b in zip(_counter_values(old.counters), _list(changes, len(_COUNTERS)), strict=True)
        ))  # fmt: skip
        if rates is None:
            rx, tx, rxp, txp = _interface_rates(old.counters, counters, elapsed)
        else:
            rx, tx, rxp, txp = (_float(rate) for rate in _list(rates, 4))
        interfaces.append(Interface(
            name=old.name, counters=counters, rx_bytes_per_s=rx, tx_bytes_per_s=tx, rx_packets_per_s=rxp,
            tx_packets_per_s=txp, rx_history=_decode_history(rx_history, old.rx_history, rx),
            tx_history=_decode_history(tx_history, old.tx_history, tx), **fields,
        ))  # fmt: skip
    return InterfaceSnapshot(
        taken_at=_float(body["t"]), interfaces=interfaces, appeared=_strs(body.get("a", [])),
        disappeared=_strs(body.get("g", [])), warnings=_strs(body.get("w", [])),
    )  # fmt: skip


def _same_counters(before: StatsSnapshot, now: StatsSnapshot) -> bool:
    return len(before.counters) == len(now.counters) and all(
        a.group == b.group and a.name == b.name and a.label == b.label and a.is_gauge == b.is_gauge
        for a, b in zip(before.counters, now.counters, strict=True)
    )


def _expected_delta(change: int, gauge: bool) -> int:
    # As ProtocolStatsCollector computes it: a running count that went down (a reset) moved by 0.
    return change if gauge or change >= 0 else 0


def _statistics_entry(before: StatsSnapshot | None, now: StatsSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if before is None or not _same_counters(before, now):
        body["c"] = [[c.group, c.name, c.value, c.delta, c.rate, c.label, c.is_gauge] for c in now.counters]
    else:
        body["d"] = 1
        elapsed = _divisor([(c.delta, c.rate) for c in now.counters if c.delta and c.rate])
        moved: list[int] = []
        deltas: list[Any] = []
        rates: list[Any] = []
        last = -1
        for index, (old, new) in enumerate(zip(before.counters, now.counters, strict=True)):
            change = new.value - old.value
            if change:
                moved += [index - last - 1, change]
                last = index
            if new.delta != _expected_delta(change, new.is_gauge):
                deltas += [index, new.delta]
            if new.rate != (new.delta / elapsed if new.delta and elapsed else 0.0):
                rates += [index, new.rate]
        if elapsed is not None:
            body["e"] = elapsed
        if moved:
            body["v"] = moved
        if deltas:
            body["x"] = deltas
        if rates:
            body["q"] = rates
    if now.warnings:
        body["w"] = now.warnings
    return body


def _pairs(value: object) -> Iterator[tuple[object, object]]:
    flat = _list(value)
    if len(flat) % 2:
        raise _Bad("a list of pairs has an odd length")
    return zip(flat[::2], flat[1::2], strict=True)


def _decode_statistics(body: object, before: StatsSnapshot | None) -> StatsSnapshot:
    body = _object(body)
    taken_at = _float(body["t"])
    warnings = _strs(body.get("w", []))
    if "d" not in body:
        counters = []
        for row in _list(body["c"]):
            group, name, value, delta, rate, label, gauge = _list(row, 7)
            counters.append(ProtocolCounter(
                _str(group), _str(name), _int(value), _int(delta), _float(rate), _str(label), _bool(gauge)
            ))  # fmt: skip
        return StatsSnapshot(taken_at=taken_at, counters=counters, warnings=warnings)
    if before is None:
        raise _Bad("statistics are given as a change with nothing before them")
    old = before.counters
    changes: dict[int, int] = {}
    index = -1
    for skip, change in _pairs(body.get("v", [])):
        index += _int(skip) + 1
        if _int(skip) < 0 or index >= len(old):
            raise _Bad("a counter change refers to no counter")
        changes[index] = _int(change)
    deltas = {_int(i): _int(d) for i, d in _pairs(body.get("x", []))}
    rates = {_int(i): _float(r) for i, r in _pairs(body.get("q", []))}
    elapsed = _float(body["e"]) if "e" in body else None
    if elapsed is not None and elapsed <= 0:
        raise _Bad("a sample's elapsed time is not positive")
    counters = []
    for index, counter in enumerate(old):
        change = changes.get(index, 0)
        value = counter.value + change
        delta = deltas.get(index)
        if delta is None:
            delta = _expected_delta(change, counter.is_gauge)
        rate = rates.get(index)
        if rate is None:
            rate = delta / elapsed if delta and elapsed else 0.0
        if (value, delta, rate) == (counter.value, counter.delta, counter.rate):
            counters.append(counter)  # frozen: safe to share
        else:
            counters.append(ProtocolCounter(counter.group, counter.name, value, delta, rate, counter.label,
                                            counter.is_gauge))  # fmt: skip
    return StatsSnapshot(taken_at=taken_at, counters=counters, warnings=warnings)


def _multicast_entry(before: MulticastSnapshot | None, now: MulticastSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if before is not None and before.memberships == now.memberships:
        body["d"] = 1
    else:
        body["g"] = [[m.interface, m.family, m.group, m.users] for m in now.memberships]
    if now.warnings:
        body["w"] = now.warnings
    return body


def _decode_multicast(body: object, before: MulticastSnapshot | None) -> MulticastSnapshot:
    body = _object(body)
    if "d" in body:
        if before is None:
            raise _Bad("multicast groups are given as unchanged with nothing before them")
        memberships = list(before.memberships)  # frozen: safe to share
    else:
        memberships = []
        for row in _list(body["g"]):
            interface, family, group, users = _list(row, 4)
            memberships.append(Membership(_str(interface), _int(family), _str(group), _int(users)))
    warnings = _strs(body.get("w", []))
    return MulticastSnapshot(taken_at=_float(body["t"]), memberships=memberships, warnings=warnings)


def _route_row(r: Route) -> list[Any]:
    return [r.family, r.destination, r.gateway, r.interface, r.flags, r.metric, r.protocol, r.scope, r.table,
            r.preferred_source, r.type, r.nexthop]  # fmt: skip


_ROUTE_TYPES = (int, str, str, str, str, int, str, str, str, str, str, int)


def _decode_route(row: object) -> Route:
    # The common case checked in one go: a million routes decode in seconds, not tens of them.
    if type(row) is list and tuple(map(type, row)) == _ROUTE_TYPES:
        return Route(*row)
    family, destination, gateway, interface, flags, metric, protocol, scope, table, source, kind, hop = _list(
        row, 12
    )
    return Route(
        _int(family), _str(destination), _str(gateway), _str(interface), _str(flags), _int(metric),
        _str(protocol), _str(scope), _str(table), _str(source), _str(kind), _int(hop),
    )  # fmt: skip


def _routes_keyframe(now: RouteSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at, "s": now.source, "r": [_route_row(r) for r in now.routes]}
    if now.warnings:
        body["w"] = now.warnings
    return body


def _routes_delta(before: RouteSnapshot, now: RouteSnapshot) -> tuple[dict[str, Any], bool] | None:
    """The change from `before` to `now` and whether any route changed; None when a whole table is smaller."""
    body: dict[str, Any] = {"t": now.taken_at}
    if now.source != before.source:
        body["s"] = now.source
    if now.warnings:
        body["w"] = now.warnings
    if now.routes == before.routes:
        return body, False
    where: dict[Route, int] = {}
    for old_position, old_route in enumerate(before.routes):
        where.setdefault(old_route, old_position)
    kept = bytearray(len(before.routes))
    inserted: list[Any] = []
    last_kept = last_inserted = -1
    for position, route in enumerate(now.routes):
        index = where.get(route)
        if index is not None and index > last_kept:
            kept[index] = 1
            last_kept = index
        else:  # new, changed, or out of its old order: inserted here (an old copy is then removed)
            inserted += [position - last_inserted - 1, _route_row(route)]
            last_inserted = position
    removed: list[int] = []
    last = -1
    for index, flag in enumerate(kept):
        if not flag:
            removed.append(index - last - 1)
            last = index
    if len(removed) + len(inserted) // 2 > len(now.routes) // 2 + 16:
        return None
    body["x"], body["a"] = removed, inserted
    return body, True


def _decode_routes(body: object, before: RouteSnapshot | None) -> RouteSnapshot:
    body = _object(body)
    taken_at, warnings = _float(body["t"]), _strs(body.get("w", []))
    if before is None:
        return RouteSnapshot(taken_at, [_decode_route(row) for row in _list(body["r"])], _str(body["s"]), warnings)
    old = before.routes
    # Slices, not a loop over every route: applying a change to a million routes takes milliseconds.
    kept: list[Route] = []
    start = index = 0
    for skip in _list(body.get("x", [])):
        index = start + _int(skip)
        if _int(skip) < 0 or index >= len(old):
            raise _Bad("a removed route refers to no route")
        kept.extend(old[start:index])
        start = index + 1
    kept.extend(old[start:])
    routes: list[Route] = []
    taken = 0
    position = -1
    for skip, row in _pairs(body.get("a", [])):
        position += _int(skip) + 1
        count = position - len(routes)
        if _int(skip) < 0 or taken + count > len(kept):
            raise _Bad("an inserted route lies past the end of the table")
        routes.extend(kept[taken : taken + count])
        taken += count
        routes.append(_decode_route(row))
    routes.extend(kept[taken:])
    source = _str(body["s"]) if "s" in body else before.source
    return RouteSnapshot(taken_at, routes, source, warnings)


def _own_warnings(data: ViewData) -> list[str]:
    """The ViewData's warnings that are not its parts' (SystemViews appends those after its own)."""
    parts: list[str] = []
    for part in (data.interfaces, data.routes, data.statistics, data.multicast):
        if part is not None:
            parts.extend(part.warnings)
    if parts and data.warnings[len(data.warnings) - len(parts) :] == parts:
        return data.warnings[: len(data.warnings) - len(parts)]
    seen = set(parts)
    return [warning for warning in data.warnings if warning not in seen]


@dataclass(slots=True)
class _ViewState:
    """Views 2-5 as of one frame: what the writer last recorded, or what a reader decoded."""

    interfaces: InterfaceSnapshot | None = None
    statistics: StatsSnapshot | None = None
    multicast: MulticastSnapshot | None = None
    warnings: list[str] = field(default_factory=list)  # the ViewData's own (see _own_warnings)


def _decode_views(body: dict[str, Any], before: _ViewState | None) -> _ViewState:
    """A views frame applied to `before` (None: a keyframe, which stands alone)."""
    old = before or _ViewState()
    return _ViewState(
        _decode_interfaces(body["i"], old.interfaces) if "i" in body else old.interfaces,
        _decode_statistics(body["s"], old.statistics) if "s" in body else old.statistics,
        _decode_multicast(body["m"], old.multicast) if "m" in body else old.multicast,
        _strs(body.get("w", [])),
    )


# --- writing -----------------------------------------------------------------------------------------------------

_Encoded = tuple[int, bytes, Callable[[], None]]  # kind, payload, what to remember once it is written


class _ViewsChain:
    """The writer's views chain: what was last recorded (deltas are taken against it) and when to keyframe."""

    def __init__(self, ratio: float, seconds: float) -> None:
        self.ratio, self.seconds = ratio, seconds
        self.state = _ViewState()
        self.started = False
        self.keyframe_at = 0.0
        self.keyframe_bytes = 0
        self.delta_bytes = 0

    def encode(self, taken_at: float, data: ViewData) -> _Encoded | None:
        """The frame for `data`, or None if it holds nothing to record."""
        old = self.state
        own = _own_warnings(data)
        if data.interfaces is None and data.statistics is None and data.multicast is None and own == old.warnings:
            return None
        keyframe = (
            not self.started
            or taken_at - self.keyframe_at >= self.seconds
            or self.delta_bytes >= self.ratio * self.keyframe_bytes
        )
        new = _ViewState(
            old.interfaces if data.interfaces is None else data.interfaces,
            old.statistics if data.statistics is None else data.statistics,
            old.multicast if data.multicast is None else data.multicast,
            list(own),
        )
        body: dict[str, Any] = {}
        parts: tuple[tuple[str, Any, Any, Any, Any], ...] = (
            ("i", _interfaces_entry, old.interfaces, new.interfaces, data.interfaces),
            ("s", _statistics_entry, old.statistics, new.statistics, data.statistics),
            ("m", _multicast_entry, old.multicast, new.multicast, data.multicast),
        )
        for tag, entry, before, now, read in parts:
            if keyframe:  # stands alone: every part recorded so far, whole
                if now is not None:
                    body[tag] = entry(None, now)
            elif read is not None:
                body[tag] = entry(before, read)
        if own:
            body["w"] = own
        payload = _compress(_JSON.encode(body).encode("ascii"), level=6 if keyframe else 9)

        def commit() -> None:
            self.state, self.started = new, True
            if keyframe:
                self.keyframe_at, self.keyframe_bytes, self.delta_bytes = taken_at, len(payload), 0
            else:
                self.delta_bytes += len(payload)

        return (VIEWS_KEYFRAME if keyframe else VIEWS_DELTA), payload, commit


class _RoutesChain:
    """The writer's routes chain: the table last recorded, and when a whole table is due."""

    def __init__(self, ratio: float, seconds: float) -> None:
        self.ratio, self.seconds = ratio, seconds
        self.state: RouteSnapshot | None = None
        self.keyframe_at = 0.0
        self.keyframe_bytes = 0
        self.delta_bytes = 0
        self.changed = False  # a route changed since the last keyframe

    def encode(self, taken_at: float, routes: RouteSnapshot) -> tuple[_Encoded, bool]:
        """The frame for `routes`, and whether it changes any route."""
        delta = None
        old = self.state
        # An unchanged table costs an empty delta a read; it is written whole again only once those add up to
        # `ratio` times its size (a small table every few minutes, a million routes practically never). A
        # changing one is, now and then, so that seeking does not apply an hour of changes to a million routes.
        if not (
            old is None
            or self.delta_bytes >= self.ratio * self.keyframe_bytes
            or (self.changed and taken_at - self.keyframe_at >= self.seconds)
        ):
            delta = _routes_delta(old, routes)
        if delta is None:
            payload = _compress(_JSON.encode(_routes_keyframe(routes)).encode("ascii"), level=6)
            changed = True
        else:
            body, changed = delta
            payload = _compress(_JSON.encode(body).encode("ascii"), level=9)

        def commit() -> None:
            self.state = routes
            if delta is None:
                self.keyframe_at, self.keyframe_bytes, self.delta_bytes, self.changed = (
                    taken_at, len(payload), 0, False)  # fmt: skip
            else:
                self.delta_bytes += len(payload)
                self.changed = self.changed or changed

        return ((ROUTES_KEYFRAME if delta is None else ROUTES_DELTA), payload, commit), changed


class RecordingWriter:
    """Writes SnapshotDiffs and view data to a recording file, one flushed frame each.

    `write()` (sockets) and `write_views()` (views 2-5) may be called from two different threads, each from one
    thread at a time; frames never interleave in the file. Both block for the encoding and the write: about
    0.4 ms for a delta of a few dozen sockets, 0.3 to 0.5 s for a keyframe of 100,000 sockets, 1 to 2 ms for the
    views of a second, seconds for a changed table of a million routes (run them in a thread from an event loop:
    RecordingTee's callers do). The file is created (or truncated) at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        keyframe_ratio: float = 4.0,
        keyframe_seconds: float = 600.0,
        route_keyframe_seconds: float = 1800.0,
        fsync: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.keyframe_ratio = keyframe_ratio
        self.keyframe_seconds = keyframe_seconds
        self.fsync = fsync  # survive a power cut too, at one disk sync per frame
        self.frames = 0  # socket frames
        self.keyframes = 0
        self.view_frames = 0
        self.route_frames = 0  # every routes frame, an unchanged table's empty delta included
        self.route_keyframes = 0
        self.route_changes = 0  # routes deltas that change a route
        self.closed = False
        self._lock = threading.Lock()  # the file, the sequence numbers and the counts
        self._views_lock = threading.Lock()  # write_views()'s chains
        self._seq = [0, 0, 0]  # the next frame's seq, by chain
        self._views = _ViewsChain(keyframe_ratio, keyframe_seconds)
        self._routes = _RoutesChain(keyframe_ratio, route_keyframe_seconds)
        self._views_at = -math.inf
        self._file = open_regular(self.path, write=True)  # held open across writes, closed by close()
        self._ids: dict[SocketKey, int] = {}
        self._next_id = 0
        self._zdict = b""
        self._keyframe_at = 0.0
        self._keyframe_bytes = 0
        self._delta_bytes = 0
        self._warnings: list[str] | None = None
        header = _JSON.encode({
            "format": "netscope recording",
            "version": VERSION,
            "created": time.time(),
            "hostname": socket.gethostname(),
            "netscope": __version__,
            "interval": interval,
        }).encode("ascii")
        head = MAGIC + _FILE_HEAD.pack(VERSION, len(header)) + header
        self._file.write(head + _U32.pack(zlib.crc32(head)))
        self._file.flush()
        self.bytes_written = len(head) + _U32.size

    def write(self, diff: SnapshotDiff) -> None:
        if self.closed:
            raise ValueError("write to a closed RecordingWriter")
        snapshot = diff.snapshot
        taken_at = snapshot.taken_at
        if not (
            diff.first
            or self.frames == 0
            or self._delta_bytes >= self.keyframe_ratio * self._keyframe_bytes
            or taken_at - self._keyframe_at >= self.keyframe_seconds
        ):
            payload = self._delta(diff)
            if payload is not None:
                data = _compress(payload, self._zdict)
                self._delta_bytes += len(data)
                self._frame(DELTA, taken_at, data)
                return
        self._keyframe(diff)

    def write_views(self, taken_at: float, data: ViewData) -> None:
        """Record views 2-5 as read at `taken_at` (time.time()): whichever of the four parts `data` holds.

        Call it after each read of the views (SystemViews.collect), roughly once per interval. Routes are
        recorded whenever `data` has them, as an empty delta when the table did not change. Raises OSError when
        the file cannot be written, ValueError when closed or when `data` holds what JSON cannot (NaN): then
        nothing of this call is recorded and the next call records against what was."""
        if not math.isfinite(taken_at):
            raise ValueError(f"write_views() needs a finite time, got {taken_at}")
        with self._views_lock:
            if self.closed:
                raise ValueError("write to a closed RecordingWriter")
            # A chain's times must not go back (a clock step), or seeking it by time would miss frames.
            taken_at = max(taken_at, self._views_at)
            encoded = self._views.encode(taken_at, data)
            if encoded is not None:
                kind, payload, commit = encoded
                self._frame(kind, taken_at, payload)
                commit()
            if data.routes is not None:
                with gc_paused():
                    (kind, payload, commit), changed = self._routes.encode(taken_at, data.routes)
                self._frame(kind, taken_at, payload)
                commit()
                with self._lock:
                    self.route_keyframes += int(kind == ROUTES_KEYFRAME)
                    self.route_changes += int(kind == ROUTES_DELTA and changed)
            self._views_at = taken_at

    def _keyframe(self, diff: SnapshotDiff) -> None:
        snapshot = diff.snapshot
        taken_at = snapshot.taken_at
        rows = [_row(sock, taken_at) for sock in snapshot.sockets.values()]
        payload = _JSON.encode({
            "s": rows,
            "f": diff.first,
            "o": snapshot.owners_incomplete,
            "w": snapshot.warnings,
            "c": round(snapshot.collect_seconds, 6),
        }).encode("ascii")
        self._ids = {key: ident for ident, key in enumerate(snapshot.sockets)}
        self._next_id = len(self._ids)
        self._zdict = payload[-_ZDICT_LIMIT:]
        self._warnings = list(snapshot.warnings)
        data = _compress(payload)
        self._keyframe_at, self._keyframe_bytes, self._delta_bytes = taken_at, len(data), 0
        self.keyframes += 1
        self._frame(KEYFRAME, taken_at, data)

    def _delta(self, diff: SnapshotDiff) -> bytes | None:
        """The delta's JSON, or None when the diff does not fit what was written (then a keyframe is safer)."""
        snapshot = diff.snapshot
        ids = self._ids
        if any(sock.key not in ids for sock in diff.removed) or any(sock.key not in ids for sock in diff.changed):
            return None
        if any(sock.key in ids for sock in diff.added):
            return None
        if len(ids) - len(diff.removed) + len(diff.added) != len(snapshot.sockets):
            return None  # the diff's lists and its snapshot disagree: record the snapshot itself
        removed = [ids.pop(sock.key) for sock in diff.removed]
        changes = [_change(ids[sock.key], sock) for sock in diff.changed]
        rows = [_row(sock, snapshot.taken_at) for sock in diff.added]
        for sock in diff.added:
            ids[sock.key] = self._next_id
            self._next_id += 1
        body: dict[str, object] = {
            "a": rows,
            "x": changes,
            "r": removed,
            "o": snapshot.owners_incomplete,
            "c": round(snapshot.collect_seconds, 6),
        }
        if snapshot.warnings != self._warnings:
            body["w"] = snapshot.warnings
            self._warnings = list(snapshot.warnings)
        return _JSON.encode(body).encode("ascii")

    def _frame(self, kind: int, taken_at: float, data: bytes) -> None:
        chain = _CHAINS[kind][0]
        with self._lock:
            if self.closed:
                raise ValueError("write to a closed RecordingWriter")
            self._write_frame(kind, taken_at, data, self._seq[chain])
            self._seq[chain] += 1  # only once written: a failed write leaves no gap in the numbers
            if chain == SOCKETS:
                self.frames += 1
            elif chain == VIEWS:
                self.view_frames += 1
            else:
                self.route_frames += 1

    def _write_frame(self, kind: int, taken_at: float, data: bytes, seq: int) -> None:
        head = _FRAME.pack(SYNC, len(data), taken_at, kind, seq, 0)
        crc = zlib.crc32(data, zlib.crc32(head[_CRC_FROM : _LAYOUTS[VERSION].crc_at]))
        # One write of the whole frame, then a flush: a kill can cut only the frame being written.
        self._file.write(head[: _LAYOUTS[VERSION].crc_at] + _U32.pack(crc) + data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.bytes_written += FRAME_HEADER_SIZE + len(data)

    def close(self) -> None:
        """Write the end marker and close. Safe to call twice, and while another thread writes (it then waits
        for that frame; later writes raise ValueError)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self._write_frame(END, time.time(), b"", 0)
                os.fsync(self._file.fileno())
            finally:
                self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reading -----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Index:
    """Where each readable frame of one chain is, and which keyframe it builds on."""

    offsets: list[int] = field(default_factory=list)  # of the payload
    lengths: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    base: list[int] = field(default_factory=list)  # index of the keyframe at or before each frame
    after_gap: list[bool] = field(default_factory=list)  # the first frame after lost frames of its chain

    def add(self, offset: int, length: int, taken_at: float, kind: int, after_gap: bool) -> None:
        self.offsets.append(offset)
        self.lengths.append(length)
        self.times.append(taken_at)
        self.kinds.append(kind)
        self.base.append(len(self.kinds) - 1 if _CHAINS[kind][1] else self.base[-1])
        self.after_gap.append(after_gap)


@dataclass(slots=True)
class _Gap:
    """Damaged bytes found by the scan of a version 2 file, and what they turned out to cost."""

    reason: str
    readable: int  # socket frames readable before it
    last: float | None  # taken_at of the last of those
    truncated: bool = False  # the file ends inside a frame
    sockets_lost: bool | None = None  # None: no socket frame came after it to tell
    resumes_at: float | None = None  # if socket frames were lost: the keyframe where they resume


_Undecodable = Callable[[int, BaseException], RecordingDamaged]


class RecordingReader:
    """Opens a recording, checks every frame's checksum once, and decodes snapshots on demand.

    Damage does not stop the opening: `damage` holds a RecordingDamaged describing it (or None), every readable
    frame can be read, and iterating raises that error after the last readable frame so a plain loop notices
    (unless it cost view data only: `damage.frames_lost` is then False).
    A file that is not a recording at all raises NotARecording; an unreadable one, OSError.

    Frames (len(), indexes, timestamps) are the socket frames; the views are read with `views_at()`, which is
    thread-safe (it has its own decoding state and lock), so a thread may read views while another plays sockets.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.damage: RecordingDamaged | None = None
        self.complete = False  # the writer closed the file properly (an end marker follows the last frame)
        self.version = VERSION
        self._layout = _LAYOUTS[VERSION]
        self._index = _Index()
        self._views = _Index()
        self._routes = _Index()
        self._decoder: _Cursor | None = None
        self._views_lock = threading.Lock()
        self._views_cursor: _ViewsCursor | None = None
        self._routes_cursor: _RoutesCursor | None = None
        self._problems: list[RecordingDamaged] = []
        with open_regular(self.path) as handle:  # a FIFO or a device is refused, never waited on
            size = os.fstat(handle.fileno()).st_size
            self._map: mmap.mmap | bytes = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            self.header, start = self._read_header()
            if self._layout.seq:
                self._scan(start)
            else:
                self._scan_v1(start)
        except BaseException:
            self.close()
            raise
        if self._problems:
            first = self._problems[0]
            more = len(self._problems) - 1
            if more:
                first.message += f" (and {more} more damaged place{'s' if more > 1 else ''} after it)"
                first.args = (first.message,)
            self.damage = first

    # --- scanning

    def _read_header(self) -> tuple[dict[str, Any], int]:
        data = self._map
        name = os.path.basename(self.path)
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise NotARecording(f"{name} is not a netscope recording (it does not start like one)")
        fixed_end = len(MAGIC) + _FILE_HEAD.size
        if len(data) < fixed_end + _U32.size:
            raise NotARecording(f"{name} ends inside its header: the recording was cut off before any frame")
        version, length = _FILE_HEAD.unpack_from(data, len(MAGIC))
        if version > VERSION:
            raise NotARecording(
                f"{name} is a version {version} recording, made by a newer netscope; "
                f"this one reads versions up to {VERSION}"
            )
        end = fixed_end + length
        if length > _HEADER_LIMIT or len(data) < end + _U32.size:
            raise NotARecording(f"{name}: the recording's header is damaged or cut off; nothing can be read")
        (crc,) = _U32.unpack_from(data, end)
        if zlib.crc32(data[:end]) != crc:
            raise NotARecording(
                f"{name}: the recording's header is damaged (checksum mismatch); nothing can be read"
            )
        if version not in _LAYOUTS:
            raise NotARecording(f"{name}: the recording's header is damaged (version {version}); nothing is read")
        try:
            header = json.loads(bytes(data[fixed_end:end]))
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise NotARecording(f"{name}: the recording's header is damaged; nothing can be read")
        self.version, self._layout = version, _LAYOUTS[version]
        return header, end + _U32.size

    def _frame_at(self, pos: int) -> tuple[int, float, int, int] | str:
        """(length, taken_at, kind, seq) of a sound frame at `pos`, else why not: "truncated", or a reason."""
        data = self._map
        layout = self._layout
        size = layout.header.size
        if len(data) - pos < size:
            return "truncated"
        if layout.seq:
            sync, length, taken_at, kind, seq, crc = layout.header.unpack_from(data, pos)
        else:
            (sync, length, taken_at, kind, crc), seq = layout.header.unpack_from(data, pos), 0
        if sync != SYNC:
            return "the bytes there are not a frame"
        if kind not in layout.kinds or length > MAX_PAYLOAD or not _is_time(taken_at):
            return "its header is damaged"
        start = pos + size
        if start + length > len(data):
            # A damaged length can also point past the end; only a checksum could tell, and it is out of reach.
            return "truncated"
        view = memoryview(data)
        try:
            head_crc = zlib.crc32(view[pos + _CRC_FROM : pos + layout.crc_at])
            actual = zlib.crc32(view[start : start + length], head_crc)
        finally:
            view.release()
        if actual != crc:
            return "it fails its checksum"
        return length, taken_at, kind, seq

    def _scan(self, pos: int) -> None:
        """Index a version 2 file: every sound frame whose chain is whole up to it (checked by seq)."""
        size = len(self._map)
        header_size = self._layout.header.size
        indexes = (self._index, self._views, self._routes)
        expected: list[int | None] = [0, 0, 0]  # each chain's next seq; None after lost frames, until a keyframe
        seen = [0, 0, 0]  # how many gaps had been found at each chain's last readable frame
        gaps: list[_Gap] = []
        undecided: list[_Gap] = []  # not yet known whether they cost socket frames
        waiting: list[_Gap] = []  # cost socket frames: resolved at the next socket keyframe

        def gap(reason: str, truncated: bool = False) -> None:
            times = self._index.times
            gaps.append(_Gap(reason, len(times), times[-1] if times else None, truncated))
            undecided.append(gaps[-1])

        while pos < size:
            found = self._frame_at(pos)
            if isinstance(found, str):
                resume = self._resync(pos + 1, keyframes_only=False)
                gap(found, truncated=found == "truncated" and resume is None)
                if resume is None:
                    break
                pos = resume[0]
                continue
            length, taken_at, kind, seq = found
            if kind == END:
                self.complete = pos + header_size == size
                break
            chain, key = _CHAINS[kind]
            follows = expected[chain] == seq and (key or seq > 0)
            if not follows and expected[chain] is not None and len(gaps) == seen[chain]:
                # A break that no damaged bytes explain (a crafted file) is damage all the same.
                gap("frames before it are missing" if key else "it builds on a frame that is missing")
            if chain == SOCKETS:
                for earlier in undecided:
                    earlier.sockets_lost = not follows
                if not follows:
                    waiting.extend(undecided)
                undecided.clear()
                if key:
                    for earlier in waiting:
                        earlier.resumes_at = taken_at
                    waiting.clear()
            usable = key or follows
            if usable:
                indexes[chain].add(pos + header_size, length, taken_at, kind, not follows)
                seen[chain] = len(gaps)
            expected[chain] = seq + 1 if usable else None
            pos += header_size + length
        for each in gaps:
            self._problems.append(self._gap_damage(each))

    def _gap_damage(self, gap: _Gap) -> RecordingDamaged:
        readable, reason = gap.readable, gap.reason
        first_time = self._index.times[0] if self._index.times else None
        if reason == "truncated":
            reason = "its length runs past the end of the file"
        where = (
            f"after frame {readable} at {_clock(gap.last, first_time)}" if readable else "before its first frame"
        )
        if gap.truncated:
            message = (
                f"recording truncated {where}; the first {readable} frames are readable"
                if readable
                else "recording truncated before its first frame was complete; no frame is readable"
            )
        elif gap.sockets_lost is False:
            message = (
                f"recording damaged {where} ({reason}); every frame of the connection table is readable, only "
                "some view data recorded there (interfaces, routes, statistics or multicast groups) is lost"
            )
        elif gap.resumes_at is not None:
            message = (
                f"recording damaged {where} (frame {readable + 1}: {reason}); the frames up to the next keyframe "
                f"at {_clock(gap.resumes_at, first_time or gap.resumes_at)} are lost, the rest is readable"
            )
        else:
            message = f"recording damaged {where} (frame {readable + 1}: {reason}); " + (
                f"the first {readable} frames are readable" if readable else "no frame is readable"
            )
        return RecordingDamaged(message, readable_frames=readable, bad_frame=readable + 1,
                                truncated=gap.truncated, at_time=gap.last,
                                frames_lost=gap.truncated or gap.sockets_lost is not False)  # fmt: skip

    def _scan_v1(self, pos: int) -> None:
        """Index a version 1 file (sockets only, no seq): after damage, deltas wait for the next keyframe."""
        index = self._index
        size = len(self._map)
        header_size = self._layout.header.size
        after_gap = False
        while pos < size:
            found = self._frame_at(pos)
            if isinstance(found, tuple):
                length, taken_at, kind, _ = found
                if kind == END:
                    self.complete = pos + header_size == size
                    return
                if kind == DELTA and (not index.offsets or after_gap):
                    found = "it is a delta with no keyframe before it"
                else:
                    index.add(pos + header_size, length, taken_at, kind, after_gap)
                    after_gap = False
                    pos += header_size + length
                    continue
            resume = self._resync(pos + 1, keyframes_only=True)
            self._note_damage(found, resume)
            if resume is None:
                return
            pos, after_gap = resume[0], True

    def _resync(self, pos: int, *, keyframes_only: bool) -> tuple[int, float] | None:
        """The next sound frame after damaged bytes (version 1: keyframe or end marker): (offset, its time)."""
        data = self._map
        while True:
            pos = data.find(SYNC, pos)
            if pos < 0:
                return None
            found = self._frame_at(pos)
            if isinstance(found, tuple) and (not keyframes_only or found[2] in (KEYFRAME, END)):
                return pos, found[1]
            # A sound delta here still depends on the lost frames: skip it whole; anything else, byte by byte.
            pos += self._layout.header.size + found[0] if isinstance(found, tuple) else 1

    def _note_damage(self, reason: str, resume: tuple[int, float] | None) -> None:
        index = self._index
        readable = len(index.times)
        first_time = index.times[0] if index.times else None
        last = index.times[-1] if index.times else None
        truncated = reason == "truncated" and resume is None
        if reason == "truncated":
            reason = "its length runs past the end of the file"
        where = f"after frame {readable} at {_clock(last, first_time)}" if readable else "before its first frame"
        if truncated:
            message = (
                f"recording truncated {where}; the first {readable} frames are readable"
                if readable
                else "recording truncated before its first frame was complete; no frame is readable"
            )
        elif resume is None:
            message = f"recording damaged {where} (frame {readable + 1}: {reason}); " + (
                f"the first {readable} frames are readable" if readable else "no frame is readable"
            )
        else:
            message = (
                f"recording damaged {where} (frame {readable + 1}: {reason}); the frames up to the next keyframe "
                f"at {_clock(resume[1], first_time or resume[1])} are lost, the rest is readable"
            )
        self._problems.append(
            RecordingDamaged(message, readable_frames=readable, bad_frame=readable + 1, truncated=truncated,
                             at_time=last)
        )  # fmt: skip

    # --- what is in it

    def __len__(self) -> int:
        return len(self._index.times)

    @property
    def timestamps(self) -> list[float]:
        """taken_at of every readable frame, in file order."""
        return self._index.times

    @property
    def keyframes(self) -> list[int]:
        return [i for i, kind in enumerate(self._index.kinds) if kind == KEYFRAME]

    @property
    def interval(self) -> float:
        value = self.header.get("interval")
        if isinstance(value, int | float) and not isinstance(value, bool) and interval_problem(value) is None:
            return float(value)
        return 1.0  # a header's interval out of range (a crafted file): replay at the usual pace

    @property
    def start_time(self) -> float | None:
        return self._index.times[0] if self._index.times else None

    @property
    def end_time(self) -> float | None:
        return self._index.times[-1] if self._index.times else None

    @property
    def has_views(self) -> bool:
        """Whether the recording holds views 2-5 (interfaces, routes, statistics, multicast): version 1 files and
        recordings made without them hold sockets only."""
        return bool(self._views.times or self._routes.times)

    @property
    def views_timestamps(self) -> list[float]:
        """When the readable view frames (interfaces, statistics, multicast) were recorded."""
        return self._views.times

    @property
    def routes_timestamps(self) -> list[float]:
        """When the readable routing tables were recorded (each read, changed or not)."""
        return self._routes.times

    def index_at(self, when: float) -> int:
        """The frame on screen at time `when`: the last one taken at or before it (the first, if `when` is
        earlier). Raises IndexError on an empty recording."""
        if not self._index.times:
            raise IndexError("the recording holds no frames")
        return max(0, bisect.bisect_right(self._index.times, when) - 1)

    def check(self) -> None:
        """Raise `damage` if it cost frames (damage that cost view data only is in `damage`, not raised)."""
        for problem in self._problems:
            if problem.frames_lost:
                raise problem

    def snapshot_at(self, index: int) -> Snapshot:
        """The full snapshot at frame `index` (negative: from the end). Raises IndexError, RecordingDamaged."""
        if self._decoder is None:
            self._decoder = self.cursor()
        return self._decoder.seek(self._normal(index)).snapshot

    def snapshot_at_time(self, when: float) -> Snapshot:
        return self.snapshot_at(self.index_at(when))

    def views_at(self, when: float) -> ViewData:
        """Views 2-5 as recorded at time `when`: each of interfaces, routes, statistics and multicast the latest
        recorded at or before `when` (None if none was). Thread-safe; never raises for damage: what cannot be
        decoded is said in the ViewData's warnings, and the latest decodable data before it is given instead.

        Cheap when `when` moves forward a little (it applies the frames in between); a jump back decodes from
        the chain's keyframe before `when`."""
        with self._views_lock:
            if self._views_cursor is None or self._routes_cursor is None:
                self._views_cursor, self._routes_cursor = _ViewsCursor(self), _RoutesCursor(self)
            problems: list[str] = []
            for cursor in (self._views_cursor, self._routes_cursor):
                position = bisect.bisect_right(cursor.chain.times, when) - 1
                try:
                    cursor.seek(position)
                except RecordingDamaged as error:
                    problems.append(error.message)
            views, routes = self._views_cursor.state, self._routes_cursor.routes
            data = ViewData(views.interfaces, routes, views.statistics, views.multicast, list(views.warnings))
            for part in (data.interfaces, data.routes, data.statistics, data.multicast):
                if part is not None:
                    data.warnings.extend(part.warnings)
            data.warnings.extend(problems)
            return data

    def cursor(self) -> _Cursor:
        """An independent position in the recording: `seek(i)` and `step()` give SnapshotDiffs."""
        return _Cursor(self)

    def diffs(self, start: int = 0) -> Iterator[SnapshotDiff]:
        """Every frame's SnapshotDiff from `start` on: the first is a full reload (first=True), then each diff is
        against the frame before (first=True again after damaged bytes or where the source started over).
        Raises `damage` after the last readable frame, if it cost frames (see check())."""
        cursor = self.cursor()
        if len(self):
            yield cursor.seek(self._normal(start))
            while (diff := cursor.step()) is not None:
                yield diff
        self.check()

    def __iter__(self) -> Iterator[SnapshotDiff]:
        return self.diffs()

    def _normal(self, index: int) -> int:
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"frame {index} is outside the recording's {count} frames")
        return index % count

    def _payload(self, index: int, zdict: bytes) -> tuple[dict[str, Any], bytes]:
        """Decode socket frame `index`: its JSON object and its raw bytes. Raises RecordingDamaged."""
        return self._decode(self._index, index, zdict, self._undecodable)

    def _decode(
        self, chain: _Index, index: int, zdict: bytes, undecodable: _Undecodable
    ) -> tuple[dict[str, Any], bytes]:
        start, length = chain.offsets[index], chain.lengths[index]
        try:
            raw = _decompress(bytes(self._map[start : start + length]), zdict)
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise _Bad("it is not a JSON object")
        except (ValueError, zlib.error, RecursionError) as error:  # _Bad and JSONDecodeError are ValueErrors
            raise undecodable(index, error) from None
        return body, raw

    def _undecodable(self, index: int, error: BaseException) -> RecordingDamaged:
        at = self._index.times[index - 1] if index else None
        return RecordingDamaged(
            f"frame {index + 1} of the recording passes its checksum but cannot be decoded ({_describe(error)}); "
            f"frames before it are readable",
            readable_frames=index, bad_frame=index + 1, truncated=False, at_time=at,
        )  # fmt: skip

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._map = b""

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Cursor:
    """Decoding state at one frame of a recording: the sockets, by key and by the ids deltas refer to."""

    def __init__(self, reader: RecordingReader) -> None:
        self.reader = reader
        self.position = -1
        self.snapshot = Snapshot(0.0, {})
        self._sockets: dict[SocketKey, Socket] = {}
        self._by_id: dict[int, Socket] = {}
        self._next_id = 0
        self._warnings: list[str] = []
        self._zdict = b""

    def seek(self, index: int) -> SnapshotDiff:
        """Move to frame `index` and return its snapshot as a full reload (first=True)."""
        reader = self.reader
        base = reader._index.base[index]
        if not base <= self.position <= index:  # cannot walk forward from here: start at the keyframe
            self._load(base)
        while self.position < index:
            self._apply(self.position + 1)
        return SnapshotDiff(self.snapshot, added=list(self.snapshot.sockets.values()), changed=[], removed=[],
                            first=True)  # fmt: skip

    def step(self) -> SnapshotDiff | None:
        """Move to the next frame and return the diff from this one to it; None at the end."""
        index = self.position + 1
        if self.position < 0 or index >= len(self.reader):
            return None
        reader = self.reader
        if reader._index.kinds[index] == DELTA:
            return self._apply(index)
        before = self._sockets
        first = self._load(index) or reader._index.after_gap[index]
        if first:
            return SnapshotDiff(self.snapshot, added=list(self.snapshot.sockets.values()), changed=[], removed=[],
                                first=True)  # fmt: skip
        # A keyframe written only to bound seeking: give the same diff the live collector gave.
        now = self._sockets
        added = [sock for key, sock in now.items() if key not in before]
        changed: list[Socket] = []
        changed_before: list[Socket] = []
        for key, sock in now.items():
            old = before.get(key)
            if old is not None and not sock.same_content(old):
                changed.append(sock)
                changed_before.append(old)
        removed = [sock for key, sock in before.items() if key not in now]
        return SnapshotDiff(self.snapshot, added=added, changed=changed, removed=removed,
                            changed_before=changed_before)  # fmt: skip

    def _load(self, index: int) -> bool:
        """Load keyframe `index`; returns whether it marks a restart of the source (a reload)."""
        reader = self.reader
        taken_at = reader._index.times[index]
        body, raw = reader._payload(index, b"")
        try:
            rows = body["s"]
            if type(rows) is not list:
                raise _Bad("its socket list is not a list")
            by_id = {ident: _socket(row, taken_at) for ident, row in enumerate(rows)}
            sockets = {sock.key: sock for sock in by_id.values()}
            if len(sockets) != len(by_id):
                raise _Bad("it lists a socket twice")
            warnings = [_str(w) for w in body.get("w", [])]
            owners_incomplete = bool(body.get("o", False))
            collect = _float(body.get("c", 0.0))
            restart = bool(body.get("f", False))
        except (_Bad, KeyError, TypeError) as error:
            raise reader._undecodable(index, error) from None
        self._by_id, self._sockets, self._next_id = by_id, sockets, len(by_id)
        self._warnings, self._zdict, self.position = warnings, raw[-_ZDICT_LIMIT:], index
        self.snapshot = Snapshot(taken_at, dict(sockets), owners_incomplete, list(warnings), collect)
        return restart or index == 0

    def _apply(self, index: int) -> SnapshotDiff:
        """Apply delta `index` to the state at `index - 1`."""
        reader = self.reader
        taken_at = reader._index.times[index]
        body, _ = reader._payload(index, self._zdict)
        by_id = self._by_id
        # A new dict per frame, as DiffAssembler does: a Snapshot handed out earlier must not change under anyone.
        sockets = dict(self._sockets)
        try:
            removed = []
            for ident in body["r"]:
                removed.append(_known(by_id, ident))
                del by_id[ident]
            for sock in removed:
                del sockets[sock.key]
            changed_before: list[Socket] = []
            changed: list[Socket] = []
            for row in body["x"]:
                old = _known(by_id, _list(row)[0] if row else None)
                new = _changed_socket(row, old)
                changed_before.append(old)
                changed.append(new)
                by_id[row[0]] = sockets[new.key] = new
            added = [_socket(row, taken_at) for row in body["a"]]
            for sock in added:
                if sock.key in sockets:
                    raise _Bad("it adds a socket that is already there")
                by_id[self._next_id] = sockets[sock.key] = sock
                self._next_id += 1
            if "w" in body:
                self._warnings = [_str(w) for w in body["w"]]
            owners_incomplete = bool(body.get("o", False))
            collect = _float(body.get("c", 0.0))
        except (_Bad, KeyError, TypeError, IndexError) as error:
            # The state is now half-applied: forget it, so the next seek starts again from a keyframe.
            self.position = -1
            raise reader._undecodable(index, error) from None
        self._sockets, self.position = sockets, index
        self.snapshot = Snapshot(taken_at, dict(sockets), owners_incomplete, list(self._warnings), collect)
        return SnapshotDiff(self.snapshot, added=added, changed=changed, removed=removed,
                            changed_before=changed_before)  # fmt: skip


class _ChainCursor:
    """Decoding state at one frame of the views or the routes chain, for RecordingReader.views_at()."""

    def __init__(self, reader: RecordingReader, chain: _Index) -> None:
        self.reader, self.chain = reader, chain
        self.position = -1
        self._broken: dict[int, RecordingDamaged] = {}  # frames known not to decode: not tried again
        self._keyframe: tuple[int, Any] | None = None  # the last keyframe decoded, and its state

    def seek(self, index: int) -> None:
        """Move to frame `index` of the chain (-1: before its first). Raises RecordingDamaged; the state is then
        that of the last frame before `index` that could be decoded (empty if none)."""
        if index < 0:
            self.position = -1
            self._reset()
            return
        base = self.chain.base[index]
        if not base <= self.position <= index:  # cannot walk forward from here: start at the keyframe
            self.position = -1
            if self._keyframe is not None and self._keyframe[0] == base:
                # Decoded states are never changed, only replaced: the keyframe's can be taken up again as it is
                # (a jump back over a million routes then costs their changes, not seconds of decoding).
                self._restore(self._keyframe[1])
                self.position = base
            else:
                self._reset()
                self._apply(base)
                self._keyframe = (base, self._saved())
        while self.position < index:
            self._apply(self.position + 1)

    def _apply(self, index: int) -> None:
        error = self._broken.get(index)
        if error is None:
            try:
                with gc_paused():
                    body, _ = self.reader._decode(self.chain, index, b"", self._undecodable)
                    self._take(body, _CHAINS[self.chain.kinds[index]][1])
                self.position = index
                return
            except RecordingDamaged as damaged:
                error = damaged
            except (_Bad, KeyError, TypeError, IndexError, ValueError) as bad:
                error = self._undecodable(index, bad)
            self._broken[index] = error
        raise error

    def _undecodable(self, index: int, error: BaseException) -> RecordingDamaged:
        reader = self.reader
        at = self.chain.times[index]
        return RecordingDamaged(
            f"the {self.what} recorded at {_clock(at, reader.start_time)} pass their checksum but cannot be "
            f"decoded ({_describe(error)}); the {self.what} recorded before are shown",
            readable_frames=len(reader), bad_frame=0, truncated=False, at_time=at, frames_lost=False,
        )  # fmt: skip

    what = ""

    def _reset(self) -> None:
        raise NotImplementedError

    def _saved(self) -> Any:
        raise NotImplementedError

    def _restore(self, state: Any) -> None:
        raise NotImplementedError

    def _take(self, body: dict[str, Any], keyframe: bool) -> None:
        """Apply a decoded frame (a keyframe stands alone); raises _Bad and the like, changing nothing then."""
        raise NotImplementedError


class _ViewsCursor(_ChainCursor):
    what = "interfaces, statistics and multicast groups"

    def __init__(self, reader: RecordingReader) -> None:
        super().__init__(reader, reader._views)
        self.state = _ViewState()

    def _reset(self) -> None:
        self.state = _ViewState()

    def _saved(self) -> _ViewState:
        return self.state

    def _restore(self, state: _ViewState) -> None:
        self.state = state

    def _take(self, body: dict[str, Any], keyframe: bool) -> None:
        self.state = _decode_views(body, None if keyframe else self.state)


class _RoutesCursor(_ChainCursor):
    what = "routes"

    def __init__(self, reader: RecordingReader) -> None:
        super().__init__(reader, reader._routes)
        self.routes: RouteSnapshot | None = None

    def _reset(self) -> None:
        self.routes = None

    def _saved(self) -> RouteSnapshot | None:
        return self.routes

    def _restore(self, state: RouteSnapshot | None) -> None:
        self.routes = state

    def _take(self, body: dict[str, Any], keyframe: bool) -> None:
        if not keyframe and self.routes is None:
            raise _Bad("a change of the routes with no table before it")
        self.routes = _decode_routes(body, None if keyframe else self.routes)


# --- sources for the UI ------------------------------------------------------------------------------------------


class RecordingTee(SourceDefaults):
    """A SnapshotSource that passes another source's refreshes through unchanged and records each diff.

    Writing happens in a thread after the diff has been handed on, so the screen never waits for the disk. A
    failed write (disk full) is reported once as a CollectionFailure and recording stops; the live view goes on.
    """

    def __init__(self, source: SnapshotSource, writer: RecordingWriter | None = None) -> None:
        self.source = source
        self.writer = writer  # None: passing through, not recording (the UI starts and stops it with a key)
        self.error = ""

    @property
    def interval(self) -> float:
        return self.source.interval

    @interval.setter
    def interval(self, value: float) -> None:
        self.source.interval = value

    @property
    def recording(self) -> bool:
        return self.writer is not None and not self.writer.closed and not self.error

    @property
    def recorder(self) -> Recorder | None:
        return self

    @property
    def replay(self) -> ReplayControls | None:
        return self.source.replay

    def set_tcp_info(self, enabled: bool) -> None:
        self.source.set_tcp_info(enabled)

    def start(self, writer: RecordingWriter) -> None:
        """Record from the next refresh on (its first frame is a full keyframe)."""
        self.stop()
        self.writer, self.error = writer, ""

    def stop(self) -> RecordingWriter | None:
        """Stop recording; returns the writer that was recording, closed, if any."""
        writer, self.writer = self.writer, None
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        return writer

    def write_views(self, data: ViewData) -> str | None:
        """Record views 2-5 as just read (SystemViews.collect), if recording; else nothing. Blocking: call it in a
        thread (asyncio.to_thread) after each read of the views.

        Returns a message for the user when something went wrong, else None: a failed write (disk full) stops the
        recording, as a failed socket write does; data JSON cannot hold skips this one read only."""
        writer = self.writer
        if writer is None or not self.recording:
            return None
        try:
            writer.write_views(time.time(), data)
        except OSError as error:
            if writer.closed:
                return None  # stopped meanwhile
            self.error = f"Recording to {writer.path} stopped: {error}"
            with contextlib.suppress(OSError):
                writer.close()
            return self.error
        except ValueError as error:
            if writer.closed:
                return None
            return f"Views not recorded this time: {error}"
        return None

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        async for update in self.source.stream():
            yield update
            writer = self.writer
            if isinstance(update, SnapshotDiff) and writer is not None and self.recording:
                try:
                    await asyncio.to_thread(writer.write, update)
                except (OSError, ValueError) as error:
                    self.error = f"Recording to {writer.path} stopped: {error}"
                    with contextlib.suppress(OSError):
                        writer.close()
                    yield CollectionFailure(self.error)

    async def aclose(self) -> None:
        try:
            await self.source.aclose()
        finally:
            self.stop()


class ReplaySource(SourceDefaults):
    """A SnapshotSource that plays a recording back, with controls for the UI.

    `stream()` first yields the starting frame as a full reload (first=True), then one diff per recorded frame,
    spaced as they were recorded divided by `speed` (a gap longer than three intervals, e.g. while recording was
    stopped, is played as one interval). At the last frame it pauses and keeps waiting for controls; it never ends
    by itself. Jumps (seek_frame, seek_time, step back) yield a full reload; step forward yields the real diff.
    Damage in the file is reported once as a CollectionFailure; the readable frames play.

    Controls are plain methods meant to be called from the event loop's thread (as Textual handlers are); from
    another thread they are handed to the loop. Nothing may be killed while replaying: `replay` is itself.
    """

    MIN_SPEED, MAX_SPEED = 0.01, 1000.0

    def __init__(
        self,
        recording: str | os.PathLike[str] | RecordingReader,
        *,
        speed: float = 1.0,
        start_frame: int = 0,
        playing: bool = True,
    ) -> None:
        self._owns_reader = not isinstance(recording, RecordingReader)
        self.reader = RecordingReader(recording) if not isinstance(recording, RecordingReader) else recording
        self.interval = self.reader.interval
        self._cursor = self.reader.cursor()
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._speed = 1.0
        self.set_speed(speed)
        self._playing = playing
        self._target: int | None = self.reader._normal(start_frame) if len(self.reader) else None
        self._natural = False  # the pending target is the next frame: give its real diff, not a reload

    # --- state the UI shows

    @property
    def position(self) -> int:
        """Index of the frame last yielded (-1 before the first)."""
        return self._cursor.position

    @property
    def frame_count(self) -> int:
        return len(self.reader)

    @property
    def replay(self) -> ReplayControls | None:
        return self

    def recorded_views(self) -> ViewSource:
        return RecordedViews(self)

    @property
    def current_time(self) -> float | None:
        position = self._cursor.position
        return self.reader.timestamps[position] if position >= 0 else None

    @property
    def start_time(self) -> float | None:
        return self.reader.start_time

    @property
    def end_time(self) -> float | None:
        return self.reader.end_time

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def at_end(self) -> bool:
        return self._cursor.position == len(self.reader) - 1

    @property
    def damage(self) -> str:
        return self.reader.damage.message if self.reader.damage else ""

    def describe(self) -> str:
        """One line for a status bar: "▶ 2× 12:03:04  frame 120/3600"."""
        sign = "▶" if self._playing else "⏸"
        speed = f"{self._speed:g}×"
        now = _clock(self.current_time, self.start_time) if self.current_time is not None else "--:--:--"
        return f"{sign} {speed} {now}  frame {self._cursor.position + 1}/{len(self.reader)}"

    # --- controls

    def play(self) -> None:
        if self.at_end and self._target is None:
            self._set_target(0)  # play again from the start, as media players do
        self._playing = True
        self._wake()

    def pause(self) -> None:
        self._playing = False
        self._wake()

    def toggle(self) -> None:
        """Play/pause."""
        if self._playing:
            self.pause()
        else:
            self.play()

    def step(self, frames: int = 1) -> None:
        """Pause and move `frames` forward (negative: back), clamped to the recording."""
        self._playing = False
        here = self._target if self._target is not None else max(self._cursor.position, 0)
        self._set_target(here + frames)

    def seek_frame(self, index: int) -> None:
        """Jump to frame `index` (0-based, clamped; negative counts from the end). Keeps playing if playing."""
        count = len(self.reader)
        self._set_target(index + count if index < 0 else index)

    def seek_time(self, when: float) -> None:
        """Jump to the frame on screen at wall-clock time `when` (time.time() seconds)."""
        if len(self.reader):
            self._set_target(self.reader.index_at(when))

    def set_speed(self, speed: float) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"replay speed must be a positive number, got {speed}")
        self._speed = min(self.MAX_SPEED, max(self.MIN_SPEED, speed))
        self._wake()

    def _set_target(self, index: int) -> None:
        count = len(self.reader)
        if not count:
            return
        index = min(count - 1, max(0, index))
        with self._lock:
            self._target = index
            self._natural = index == self._cursor.position + 1 and self._cursor.position >= 0
        self._wake()

    def _wake(self) -> None:
        loop, event = self._loop, self._wakeup
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    # --- SnapshotSource

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        self._loop = asyncio.get_running_loop()
        self._wakeup = wakeup = asyncio.Event()
        if self.reader.damage is not None:
            yield CollectionFailure(f"{os.path.basename(self.reader.path)}: {self.reader.damage.message}")
        if not len(self.reader):
            yield CollectionFailure(f"{os.path.basename(self.reader.path)} holds no frames to replay")
        shown_at = self._loop.time()
        while not self._closed:
            with self._lock:
                target, natural = self._target, self._natural
                self._target = None
            update: SnapshotDiff | CollectionFailure | None = None
            if target is not None:
                update = self._move(target, natural)
            elif self._playing and not self.at_end and self._cursor.position >= 0:
                delay = self._delay() - (self._loop.time() - shown_at)
                if delay > 0:
                    wakeup.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(wakeup.wait(), delay)
                    continue  # woken by a control, or the time has come: decide again
                update = self._move(self._cursor.position + 1, True)
            else:
                if self.at_end:
                    self._playing = False
                wakeup.clear()
                if self._target is None:
                    await wakeup.wait()
                continue
            shown_at = self._loop.time()
            if update is not None:
                yield update

    def _move(self, index: int, natural: bool) -> SnapshotDiff | CollectionFailure:
        try:
            if natural and index == self._cursor.position + 1:
                diff = self._cursor.step()
                if diff is not None:
                    return diff
            return self._cursor.seek(index)
        except RecordingDamaged as error:
            self._playing = False
            return CollectionFailure(f"{os.path.basename(self.reader.path)}: {error.message}")

    def _delay(self) -> float:
        times = self.reader.timestamps
        position = self._cursor.position
        gap = max(0.0, times[position + 1] - times[position])
        if gap > 3 * self.interval:
            gap = self.interval
        return gap / self._speed

    async def aclose(self) -> None:
        self._closed = True
        self._wake()
        if self._owns_reader:
            self.reader.close()


class RecordedViews(ViewSourceDefaults):
    """A ViewSource for views 2-5 in a replay: the interfaces, routes, statistics and multicast groups recorded at
    the replay's current time (each the latest recorded at or before it), with the rates, changes and history
    they had live.

    `collect()` may be called from any thread, as SystemViews.collect is: it decodes with the reader's own views
    state, under its lock, never touching the replay's socket cursor."""

    def __init__(self, replay: ReplaySource) -> None:
        self.replay = replay

    @property
    def available(self) -> bool:
        """Whether the recording holds views at all (False for version 1 files: hide views 2-5 then)."""
        return self.replay.reader.has_views

    def collect(self, active_view: str) -> ViewData:
        when = self.replay.current_time
        if when is None:  # nothing played yet
            return ViewData()
        return self.replay.reader.views_at(when)
