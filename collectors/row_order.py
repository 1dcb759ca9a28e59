"""The order of the connection table's rows, as keys that sort the way a person reads the table: the table sorts
by them, `--once` sorts by their endpoints, and the collector worker picks a first screen by them.

Keys are one bytes string where the column allows: sorting 100,000 rows compares bytes (memcmp) in a third of the
time it takes to compare tuples of tuples (measured), and a first load sorts every socket of the machine.
"""

from __future__ import annotations

import heapq
import socket
import struct
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from operator import itemgetter

from netscope.collectors import speedups
from netscope.collectors.model import Socket

# What a busy server's operator acts on first: each program's listeners and connections, the ownerless (TIME_WAIT
# and its folds) last. Sorting by local address would open on a page of TIME_WAIT rows of the busiest port.
DEFAULT_SORT = "program"
# The columns whose whole key is one bytes string (bytes_sort_key).
BYTES_COLUMNS = frozenset({"program", "local", "remote"})


@lru_cache(maxsize=65536)
def ip_order(ip: str) -> tuple[int, bytes]:
    """Numeric order for addresses (10.0.0.9 before 10.0.0.10), IPv4 before IPv6. inet_pton, not ipaddress: a
    flood from 50,000 addresses is sorted at start, and ipaddress takes ten times as long per address."""
    try:
        if ":" in ip:
            return (6, socket.inet_pton(socket.AF_INET6, ip))
        return (4, socket.inet_pton(socket.AF_INET, ip))
    except OSError:
        return (9, ip.encode())


@lru_cache(maxsize=65536)
def address_sort_bytes(ip: str) -> bytes:
    """ip_order as one bytes string that sorts the same way: its version, then the address (a text that is no
    address, such as a unix socket's path, ends with NUL, so that no key is the start of another)."""
    version, packed = ip_order(ip)
    return bytes((version,)) + packed + (b"\0" if version == 9 else b"")


_PORT = struct.Struct(">I").pack  # a port, or a unix socket's inode where it stands in for one


def endpoints_sort_bytes(first_ip: str, first_port: int, second_ip: str, second_port: int) -> bytes:
    """(address, port, address, port) in number order, as one bytes string."""
    return address_sort_bytes(first_ip) + _PORT(first_port) + address_sort_bytes(second_ip) + _PORT(second_port)


# not listening, first seen (a non-negative double's big-endian bytes sort as the number), pid
_PROGRAM_TAIL = struct.Struct(">Bdq").pack
_PROGRAM_NAMES: dict[str, bytes] = {}  # program -> its part of the key; bounded like the address caches


def program_sort_bytes(sock: Socket) -> bytes:
    """Owned sockets first, by program (UTF-8 sorts as the text does; NUL ends it); in each program its
    listeners, then its connections oldest first, so that a new connection lands at the end of its program's rows
    instead of pushing the rows under it down the screen; then the pid."""
    return _program_part(sock, sock.is_listening)


def _program_part(sock: Socket, listening: bool) -> bytes:
    """program_sort_bytes of `sock`, or of a socket with its owner fields (Socket.shared) that is `listening`."""
    if sock.pid is None:
        return b"\1\0" + _PROGRAM_TAIL(not listening, sock.first_seen, 0)
    return program_name_bytes(sock.program) + _PROGRAM_TAIL(not listening, sock.first_seen, sock.pid)


def program_name_bytes(program: str) -> bytes:
    """A program's part of the key: its name in lower case, between NULs."""
    try:
        return _PROGRAM_NAMES[program]
    except KeyError:
        if len(_PROGRAM_NAMES) >= 65_536:
            _PROGRAM_NAMES.clear()
        name = _PROGRAM_NAMES[program] = b"\0" + program.lower().encode("utf-8", "surrogatepass") + b"\0"
        return name


def local_sort_bytes(sock: Socket) -> bytes:
    return endpoints_sort_bytes(sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port)


def remote_sort_bytes(sock: Socket) -> bytes:
    return endpoints_sort_bytes(sock.remote_ip, sock.remote_port, sock.local_ip, sock.local_port)


_TIE = struct.Struct(">q").pack  # the last part of a row's key: an inode, 0, or a fold's negative number
_PROTO_BYTES: dict[str, bytes] = {}  # protocol name -> its part of the tie (a handful of names)


def tie_bytes(sock: Socket) -> bytes:
    """What tells two rows with the same endpoints apart (the protocol, and the rest of their key), as bytes. The
    order it gives among such rows only needs to be the same every time."""
    return proto_tie_bytes(sock.proto) + _TIE(sock.key[5])


def proto_tie_bytes(proto: str) -> bytes:
    """A protocol's part of the tie: its name, then NUL."""
    part = _PROTO_BYTES.get(proto)
    if part is None:
        part = _PROTO_BYTES[proto] = proto.encode("utf-8", "surrogatepass") + b"\0"
    return part


def bytes_sort_key(column: str, sock: Socket) -> bytes:
    """A row's whole key for a column in BYTES_COLUMNS: the column, then (unless the column is one) the
    endpoints, then the tie, so that equal rows never swap places."""
    if column == "local":
        return local_sort_bytes(sock) + tie_bytes(sock)
    if column == "remote":
        return remote_sort_bytes(sock) + tie_bytes(sock)
    if column == "program":
        return program_sort_bytes(sock) + local_sort_bytes(sock) + tie_bytes(sock)
    raise ValueError(f"{column!r} has no bytes key")


@cache
def compiled_bytes_sort_key(column: str) -> Callable[[Socket], bytes] | None:
    """bytes_sort_key for `column`, compiled (collectors/_speedups.c: the same bytes in 0.44 us rather than 1.24
    by program, measured), or None for a column not in BYTES_COLUMNS or where the compiled module is not there. A
    table bisects its rows by keys made on the way with it, instead of holding every row's (SortedRows)."""
    if speedups.BytesSortKey is None or column not in BYTES_COLUMNS:
        return None
    made: Callable[[Socket], bytes] = speedups.BytesSortKey(column, address_sort_bytes, program_name_bytes,
                                                            proto_tie_bytes)
    return made


def first_rows(sockets: Iterable[Socket], count: int) -> list[Socket]:
    """The first `count` sockets with an owner in the default order, in order: what a first screen shows. The
    table starts with them whether it folds or not: ownerless sockets come after every owned one, and may fold.

    Without a whole key for every socket, nor even a program part (program, listening, first seen, pid: a quarter
    of the key's cost): sockets of one owner share one tuple of owner fields (Socket.shared), which with the
    socket's state decides its program part. So the sockets are grouped by that tuple's identity and their state,
    a part is made for each group, and only the first parts that hold `count` sockets between them get whole keys.
    At 500,000 sockets of 50 owners, in no order: 0.24 s by each socket's part, 0.10 s so (one pass that reads
    each socket's owner tuple alone is 0.04 s, most of it waiting for memory)."""
    if count <= 0:
        return []
    by_owner: dict[int, dict[str, list[Socket]]] = {}
    for sock in sockets:
        states = by_owner.get(id(sock.shared))
        if states is None:
            states = by_owner[id(sock.shared)] = {}
        group = states.get(sock.state)
        if group is None:
            states[sock.state] = [sock]
        else:
            group.append(sock)
    parts: list[tuple[bytes, list[Socket]]] = []
    for states in by_owner.values():
        for state, group in states.items():
            if group[0].pid is None:
                break  # one owner tuple: every state of it is ownerless
            for members, listening in _by_listening(state, group):
                parts.append((_program_part(members[0], listening), members))
    parts.sort(key=itemgetter(0))
    candidates: list[Socket] = []
    last = b""
    for part, members in parts:
        # Past `count`, sockets under a part equal to the last one taken may still sort before some taken
        if len(candidates) >= count and part != last:
            break
        candidates.extend(members)
        last = part
    return heapq.nsmallest(count, candidates, key=lambda sock: bytes_sort_key(DEFAULT_SORT, sock))


def _by_listening(state: str, group: list[Socket]) -> list[tuple[list[Socket], bool]]:
    """Sockets in one state, as those listening and those not (Socket.is_listening; none empty). A state says
    which, but UNCONN: a UDP socket there listens, and a TCP one (which the kernel never names so) would not."""
    if state != "UNCONN":
        return [(group, group[0].is_listening)]
    split = ([sock for sock in group if sock.is_listening], [sock for sock in group if not sock.is_listening])
    return [(members, listening) for members, listening in zip(split, (True, False), strict=True) if members]
