"""The recording file format: its constants, errors, and the checks every decoded value passes.

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
  conntrack    "n", recorded while the NAT view is shown (collectors/recording/table_codecs.py): whole `"f":
               [[family, protocol, original, reply, state, timeout, status, mark, zone, use, id] ...]`, a tuple
               being `[src, dst, sport, dport, [icmp type, code, id] or null, packets, bytes]`; "e" the error
               when there was no table; a change means "the same flows".
  unix         "u", view 1's unix sockets while `u` shows them: whole `"u": [[proto, path, inode, peer path,
               peer inode, state, recv_q, send_q, backlog, uid, user, pid, program, first_seen,
               seen_since_start, container] ...]`; a change means "the same sockets".
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

import contextlib
import json
import math
import socket
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any

from netscope.collectors.limits import PID_MAX_LIMIT
from netscope.collectors.model import ALL_STATE_NAMES

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
_STATE_SET = frozenset(ALL_STATE_NAMES)
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
