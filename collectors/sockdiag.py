"""Reading the kernel's TCP and UDP sockets over netlink (NETLINK_SOCK_DIAG, the interface `ss` uses).

Four dump requests (SOCK_DIAG_BY_FAMILY with a struct inet_diag_req_v2): AF_INET and AF_INET6, each for
IPPROTO_TCP and IPPROTO_UDP, every state; or, where probe() found the kernel takes it, one TCPDIAG_GETSOCK dump for
TCP of both families (see TCPDIAG_GETSOCK) and the two UDP ones. A query (sockdiag_query.py) may ask for fewer
dumps, states and sockets. Each reply message is a struct inet_diag_msg, unpacked with one
precompiled Struct straight from the netlink socket's receive buffer (header and body in one call, the fields we
do not show skipped as padding), addresses and ports converted through caches, the cyclic GC paused meanwhile: a
dump of 100,000 sockets takes about as long as `ss -tan` (benchmarks/README.md), where /proc/net takes twice that.

The result is the same `Socket` objects `netscope.collectors.procnet` makes from /proc/net/{tcp,tcp6,udp,udp6},
field for field; tests/test_sockdiag.py holds the two readers to that. Where the kernel's two interfaces differ,
this reader follows /proc:

* Send-Q of a LISTEN socket: sock_diag reports the listen backlog limit (what `ss` prints), /proc/net/tcp prints
  write_seq - snd_una, which is 0 for a socket that only listens (what `netstat` prints). Both readers give 0:
  /proc has no backlog limit to offer. Recv-Q of a LISTEN socket is the accept queue's length in both.
* A half-open connection (a request socket, kernel state NEW_SYN_RECV) is reported by both as SYN_RECV with inode
  0, but sock_diag gives uid 0 where /proc gives the uid of its listener; this reader looks the listener up.
* An AF_INET6 socket is "tcp6"/"udp6" even when its addresses are v4-mapped (::ffff:127.0.0.1), as in
  /proc/net/tcp6: the family of the socket decides, not the form of its address.
* Sockets that are bound but neither listening nor connected (TCP_BOUND_INACTIVE, kernel 6.6+) are not asked
  for: /proc/net/tcp does not list them either.

By default no extensions are requested (idiag_ext = 0), and the parse loop never looks past the struct.
`read(tcp_info=True)` asks the TCP dumps for INET_DIAG_INFO (struct tcp_info) and INET_DIAG_SKMEMINFO as well,
walks each reply's attributes (from `INET_DIAG_MSG_OFFSET + INET_DIAG_MSG.size`) and leaves a `TcpInfo` per
connection in `last_tcp_info`. The kernel sends no tcp_info for TIME_WAIT and request (NEW_SYN_RECV) sockets,
and for a LISTEN socket only zeros and aliased fields (the accept queue, which Recv-Q shows already): none of
the three get one. A connection whose fields are all unchanged since the last read keeps the same TcpInfo
object, which spares making one per idle connection and lets a consumer tell "unchanged" by identity.
"""

from __future__ import annotations

import errno
import functools
import operator
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from netscope.collectors import netlink, speedups
from netscope.collectors.gc_pause import gc_paused
from netscope.collectors.model import BACKLOG, TCP_STATES, UID, SharedFields, Socket, SocketKey
from netscope.collectors.tcpinfo import (
    MEMINFO_MIN_LEN,
    MIN_RTT_INDEX,
    MIN_RTT_UNKNOWN,
    TCP_INFO_FIELDS,
    TCP_INFO_FULL_LEN,
    TCP_INFO_MIN_LEN,
    TcpInfo,
    meminfo_values,
    tcp_info_values,
)

SOCK_DIAG_BY_FAMILY = 20  # linux/sock_diag.h: the request type, and the type of each reply message
# linux/inet_diag.h: the older request for TCP sockets, with a struct inet_diag_req. The kernel serves it with the
# address family unset, so one dump walks its TCP hash tables once for IPv4 and IPv6 sockets alike. Two dumps by
# family walk them twice: the tables are shared, each dump skipping the other family's sockets (15 ms of kernel
# time a refresh at 100,000 IPv4 sockets, for an IPv6 dump that returns nothing). Replies have this type too.
TCPDIAG_GETSOCK = 18

# Every state bit from TCP_ESTABLISHED (1) to TCP_NEW_SYN_RECV (12). Bit 13, TCP_BOUND_INACTIVE, is left out
# on purpose (see the module docstring); the kernel adds NEW_SYN_RECV itself whenever SYN_RECV is asked for.
ALL_STATES = ((1 << 13) - 1) & ~1

TCP_LISTEN = 10
TCP_SYN_RECV = 3

# Reply attributes (enum in linux/inet_diag.h) and the idiag_ext bits that ask for them (bit type - 1).
INET_DIAG_INFO = 2
INET_DIAG_SKMEMINFO = 7
INET_DIAG_REQ_BYTECODE = 1  # the request attribute that carries a filter program
TCP_INFO_EXT = 1 << (INET_DIAG_INFO - 1) | 1 << (INET_DIAG_SKMEMINFO - 1)

# struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed struct inet_diag_sockid (48 bytes)
# since a dump matches every socket.
INET_DIAG_REQ_V2 = struct.Struct("=BBBxI48x")
# struct inet_diag_req (TCPDIAG_GETSOCK): family (the kernel ignores it), src_len, dst_len, ext, a zeroed struct
# inet_diag_sockid, states, dbs.
INET_DIAG_REQ_V1 = struct.Struct("=BxxB48xII")

# struct inet_diag_msg, every field: family, state, timer, retrans; id: sport, dport (big-endian), src, dst
# (16 bytes each, an IPv4 address in the first 4), if, cookie (2 x u32, low word first); then expires, rqueue,
# wqueue, uid, inode.
INET_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sIIIIIIII")
INET_DIAG_MSG_OFFSET = netlink.HEADER_LEN  # where the struct starts inside a netlink message


class InetDiagMsg(NamedTuple):
    """All of one struct inet_diag_msg, for callers that want more than a `Socket` (the reader does not use it)."""

    family: int
    state: int
    timer: int
    retrans: int
    sport: int
    dport: int
    src: bytes  # 16 bytes, network order; an IPv4 address is the first 4
    dst: bytes
    interface: int
    cookie: int
    expires: int  # milliseconds
    rqueue: int
    wqueue: int
    uid: int
    inode: int


def parse_inet_diag_msg(data: bytes | bytearray, offset: int = INET_DIAG_MSG_OFFSET) -> InetDiagMsg:
    """Every field of the struct inet_diag_msg at `offset` (by default: just after a netlink header at 0)."""
    family, state, timer, retrans, sport, dport, src, dst, ifindex, cookie_low, cookie_high, *rest = (
        INET_DIAG_MSG.unpack_from(data, offset)
    )
    expires, rqueue, wqueue, uid, inode = rest
    return InetDiagMsg(
        family, state, timer, retrans, int.from_bytes(sport, "big"), int.from_bytes(dport, "big"), src, dst,
        ifindex, cookie_low | cookie_high << 32, expires, rqueue, wqueue, uid, inode,
    )


def build_request(family: int, protocol: int, states: int = ALL_STATES, ext: int = 0) -> bytes:
    """A struct inet_diag_req_v2 for a dump. `ext` is the INET_DIAG_* bitmask of extra attributes wanted, e.g.
    `1 << (INET_DIAG_INFO - 1)` for tcp_info (INET_DIAG_INFO = 2)."""
    return INET_DIAG_REQ_V2.pack(family, protocol, ext, states)


# The fast path: the netlink header and the struct in one unpack, with only what a Socket needs, and the socket's
# cookie (the kernel's unique id for it). The header's flags and port id, and timer, retrans, if and expires are
# padding here. Ports are unpacked in host order and looked up in _port_table(): one Struct cannot mix byte orders.
#   length, type, seq | family, state, sport, dport, src, dst, cookie, rqueue, wqueue, uid, inode
_FAST: dict[int, struct.Struct] = {
    socket.AF_INET: struct.Struct("=IH2xI4x" "BB2xHH4s12x4s12x4xQ4xIIII"),
    socket.AF_INET6: struct.Struct("=IH2xI4x" "BB2xHH16s16s4xQ4xIIII"),
}
_MESSAGE_LEN = netlink.HEADER_LEN + INET_DIAG_MSG.size
# The fields the fast path skips, for the Timer column (read only with tcp_info): timer, retrans ... expires.
_TIMER_FIELDS = struct.Struct("=18xBB48xI")
assert all(fast.size == _MESSAGE_LEN for fast in _FAST.values())


@functools.cache
def _port_table() -> tuple[int, ...]:
    """Port as unpacked in host order -> the port: a tuple indexed by all 65,536 values (~2 MB, built once in
    ~5 ms). Indexing a tuple is the cheapest lookup Python has, and it runs twice per socket."""
    order = sys.byteorder
    return tuple(int.from_bytes(raw.to_bytes(2, order), "big") for raw in range(1 << 16))


# Raw address bytes (4 for IPv4, 16 for IPv6, so the two never collide) -> printable text. Bounded like procnet's
# cache: cleared when full, rebuilt at one inet_ntop per distinct address.
_ADDRESSES: dict[bytes, str] = {}
_ADDRESSES_MAX = 65_536

# State number (a u8) -> netstat's name, as procnet maps the hex text: UDP reuses TCP's numbers, 7 meaning
# unconnected. A state newer than this code shows with its number, as procnet does. Tuples: indexed per socket.
_UDP_NAMES: dict[int, str] = {**TCP_STATES, 7: "UNCONN", 1: "ESTABLISHED"}
TCP_STATE_NAMES: tuple[str, ...] = tuple(TCP_STATES.get(n, f"UNKNOWN({n})") for n in range(256))
UDP_STATE_NAMES: tuple[str, ...] = tuple(_UDP_NAMES.get(n, f"UNKNOWN({n})") for n in range(256))

DUMP_PROTOS: dict[tuple[int, int], str] = {
    (socket.AF_INET, socket.IPPROTO_TCP): "tcp",
    (socket.AF_INET6, socket.IPPROTO_TCP): "tcp6",
    (socket.AF_INET, socket.IPPROTO_UDP): "udp",
    (socket.AF_INET6, socket.IPPROTO_UDP): "udp6",
}
# The order procnet.read_all_sockets reads its files in.
_DUMPS: tuple[tuple[int, int], ...] = tuple(DUMP_PROTOS)


@dataclass(frozen=True, slots=True)
class DumpRequest:
    """One dump to ask for: which sockets (family, protocol), in which states (bit n: kernel state n), and a
    filter program for the kernel to run on each (b"": none; see sockdiag_query.py)."""

    family: int
    protocol: int
    states: int
    bytecode: bytes = b""

    def attributes(self) -> bytes:
        """The request's attributes after its struct inet_diag_req_v2: the program, if any."""
        if not self.bytecode:
            return b""
        return struct.pack("=HH", 4 + len(self.bytecode), INET_DIAG_REQ_BYTECODE) + self.bytecode


EVERY_DUMP: tuple[DumpRequest, ...] = tuple(DumpRequest(family, proto, ALL_STATES) for family, proto in _DUMPS)


def _one_walk_for_tcp(dumps: tuple[DumpRequest, ...]) -> tuple[DumpRequest, ...]:
    """The same dumps, with the two TCP ones made one of both families (AF_UNSPEC) when they ask alike."""
    tcp = [dump for dump in dumps if dump.protocol == socket.IPPROTO_TCP]
    if len(tcp) != 2 or (tcp[0].states, tcp[0].bytecode) != (tcp[1].states, tcp[1].bytecode):
        return dumps
    both = DumpRequest(socket.AF_UNSPEC, socket.IPPROTO_TCP, tcp[0].states, tcp[0].bytecode)
    return (both, *(dump for dump in dumps if dump.protocol != socket.IPPROTO_TCP))


class SockDiagUnavailable(OSError):
    """sock_diag cannot be used here at all: no netlink socket (EPERM under seccomp, EAFNOSUPPORT), or the kernel
    has no inet_diag/tcp_diag/udp_diag handler and cannot load one (ENOENT). Read /proc/net instead."""

    def __str__(self) -> str:
        return str(self.strerror)  # words for the user, without OSError's "[Errno 1]"


# A read's sockets by their kernel cookie (see _Parser): speedups.Identities, a compiled table of (cookie, socket)
# pairs (16 bytes a slot), or its twin, a dict.
class Identities(Protocol):
    def get(self, cookie: int, /) -> Socket | None: ...
    def __setitem__(self, cookie: int, sock: Socket, /) -> None: ...
    def __len__(self) -> int: ...


def _reads_the_same(
    sock: Socket, state: str, recv_q: int, send_q: int, uid: int, inode: int, listening: bool
) -> bool:
    """Whether a socket of the last read with this message's cookie is what the message says, in everything the
    reader fills in (its owner is the collector's, set after): then it is reused."""
    if type(sock) is not Socket:
        return False  # a subclass (a test's) is made anew each read, as the compiled parser does
    shared = sock.shared
    return (sock.state == state and sock.recv_q == recv_q and sock.inode == inode and shared[UID] == uid
            and (sock.send_q == 0 and shared[BACKLOG] == send_q if listening else sock.send_q == send_q
                 and shared[BACKLOG] == 0))


def _endpoints_are(key: SocketKey, local_port: int, remote_port: int, src: bytes, dst: bytes, family: int) -> bool:
    """Whether a socket of the last read (its key) has the message's endpoints. The cookie does not say: connect()
    again moves a UDP socket to another peer under the same cookie and state. The addresses are compared by parsing
    the socket's text rather than looking the raw ones up in _ADDRESSES: with more distinct addresses than it holds
    (a public server's clients), every reused socket's look-up would empty it over and over."""
    if key[2] != local_port or key[4] != remote_port:
        return False
    try:
        return socket.inet_pton(family, key[1]) == src and socket.inet_pton(family, key[3]) == dst
    except (OSError, ValueError):
        return False


class SockDiagReader:
    """Dumps every TCP and UDP socket over one netlink socket, kept open between reads (use one per thread).

    Raises SockDiagUnavailable when sock_diag is missing or forbidden, netlink.NetlinkError when one dump fails
    (the socket is then reopened by the next read).

    The kernel fills each ~32 KiB batch of a dump inside the recvmsg() that fetches the previous one, so a read
    alternates between the kernel (about 40% of it at 100,000 sockets) and parsing. Receiving in a helper thread
    while this one parses was tried and measured: no faster, as the helper waits for the GIL after every batch.
    """

    def __init__(self) -> None:
        self._sock: netlink.NetlinkSocket | None = None
        # Whether the kernel takes one TCP dump of both families (TCPDIAG_GETSOCK); probe() finds out.
        self.both_families = False
        # The last read's TcpInfo per connection (empty unless it asked for them), and the raw values each was
        # made from: an unchanged connection's next TcpInfo is the same object.
        self.last_tcp_info: dict[SocketKey, TcpInfo] = {}
        # With tcp_info: each TCP socket's running timer as (kind, retransmits, milliseconds until it fires).
        self.last_timers: dict[SocketKey, tuple[int, int, int]] = {}
        self._tcp_info_seen: dict[SocketKey, tuple[tuple[int | None, ...], TcpInfo]] = {}
        # The last read's sockets by identity, for reuse (see _Parser), and which of its sockets were made new.
        self._previous_sockets: Identities = speedups.Identities(0)
        # With reuse: the sockets this read made anew (in order), and the last read's that it did not report again
        # (closed, or changed: a changed socket is a new object). Together they are everything that changed.
        self.fresh: list[Socket] = []
        self.gone: list[Socket] = []
        self._open()

    def _open(self) -> netlink.NetlinkSocket:
        try:
            # A 64 KiB buffer is twice what the kernel puts in one read of a dump (it sizes its batches from
            # our buffer, up to 32 KiB), so a read is never truncated.
            self._sock = netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG)
        except OSError as exc:
            raise SockDiagUnavailable(
                exc.errno or errno.EPERM,
                f"cannot open a NETLINK_SOCK_DIAG socket ({exc.strerror or exc}): netlink is forbidden here "
                "(a container's seccomp profile?) or missing from the kernel",
            ) from exc
        return self._sock

    def _socket(self) -> netlink.NetlinkSocket:
        return self._sock if self._sock is not None and not self._sock.closed else self._open()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SockDiagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def probe(self) -> None:
        """Check that the kernel answers TCP and UDP dumps, cheaply (no states asked, so no sockets come back).

        Raises SockDiagUnavailable if it does not.
        """
        parser = _Parser([], _NO_USERS, 0.0)
        for family, protocol in _DUMPS:
            self._dump(family, protocol, parser, states=0)
        try:
            self._dump(socket.AF_UNSPEC, socket.IPPROTO_TCP, parser, states=0)
        except (netlink.NetlinkError, SockDiagUnavailable):
            self.both_families = False  # dumps by family it is
        else:
            self.both_families = True

    def read(
        self, first_seen: float = 0.0, user_name: Callable[[int], str] | None = None, tcp_info: bool = False,
        reuse: bool = False, dumps: tuple[DumpRequest, ...] = EVERY_DUMP,
    ) -> list[Socket]:
        """Every TCP and UDP socket of this network namespace: tcp, tcp6 (mixed, from one dump of both families
        where `both_families`), udp, udp6; given `dumps` (a sockdiag_query.KernelQuery's), only the dumps, states
        and sockets they ask for (none: none).

        Like procnet's, the sockets have no owner. For the collector's sake, `first_seen` and (given `user_name`)
        the user of each socket that has an inode are filled in as they are made: it spares a second pass over
        100,000 objects. With `tcp_info`, `last_tcp_info` is then a new dict of socket key -> TcpInfo for every
        TCP connection that has one (see the module docstring); without, it is empty.

        With `reuse`, a socket reported exactly as in the last read is the same object as then (see _Parser):
        the caller must not change such a socket in place (`fresh` lists the new ones, `fresh_ids` their id()).
        """
        out: list[Socket] = []
        users = _Users(user_name) if user_name is not None else _NO_USERS
        parser = _Parser(out, users, first_seen, self._previous_sockets if reuse else None)
        if tcp_info:
            parser.info = _TcpInfoCollector(self._tcp_info_seen)
            parser.timers = {}
        else:
            self._tcp_info_seen = {}
            self.last_tcp_info = {}
        with gc_paused():
            for dump in _one_walk_for_tcp(dumps) if self.both_families else dumps:
                self._dump(dump.family, dump.protocol, parser, dump.states, dump.attributes())
        if parser.half_open:
            listeners = out if dumps is EVERY_DUMP else self._listeners()
            _give_listener_uids(listeners, parser.half_open)
        if parser.info is not None:
            self.last_tcp_info = parser.info.found
            self._tcp_info_seen = parser.info.seen
        self.last_timers = parser.timers if parser.timers is not None else {}
        previous, self._previous_sockets = self._previous_sockets, parser.seen if reuse else speedups.Identities(0)
        self.fresh = parser.fresh
        # A cookie comes once a read (a socket the dump met twice as it changed gives two sockets on one key, which
        # the collector's slow path sorts out), so the count tells whether any went, and only then which; a socket
        # whose cookie came again with other fields (a new state, queues) was replaced, and is gone too.
        reused = len(parser.seen) - len(parser.fresh)
        went = _gone(previous, parser.seen) if reuse and reused != len(previous) else []
        self.gone = went + parser.replaced if parser.replaced else went
        return out

    @property
    def fresh_ids(self) -> set[int]:
        """id() of each socket the last read made anew (see read)."""
        return {id(sock) for sock in self.fresh}

    def _listeners(self) -> list[Socket]:
        """Every TCP listener, for the uids of half-open connections when a query left the listeners out."""
        listeners: list[Socket] = []
        parser = _Parser(listeners, _NO_USERS, 0.0)
        for family in (socket.AF_INET, socket.AF_INET6):
            self._dump(family, socket.IPPROTO_TCP, parser, states=1 << TCP_LISTEN)
        return listeners

    def _dump(
        self, family: int, protocol: int, parser: _Parser, states: int = ALL_STATES, attributes: bytes = b""
    ) -> None:
        sock = self._socket()
        finished = False
        ext = TCP_INFO_EXT if parser.info is not None and protocol == socket.IPPROTO_TCP else 0
        if family == socket.AF_UNSPEC:
            request_type, request = TCPDIAG_GETSOCK, INET_DIAG_REQ_V1.pack(socket.AF_INET, ext, states, 0)
        else:
            request_type, request = SOCK_DIAG_BY_FAMILY, build_request(family, protocol, states, ext)
        try:
            seq = sock.send(request_type, netlink.NLM_F_DUMP, request + attributes)
            while not finished:
                size = sock.receive_into()
                finished = parser.parse(sock.buffer, size, family, protocol, seq)
        finally:
            if not finished and not parser.ended_by_error:
                # Stopped halfway: the rest of the dump is still queued and would answer the next request.
                sock.close()
                self._sock = None


def _gone(previous: Identities, seen: Identities) -> list[Socket]:
    """The sockets of `previous` whose cookie is not in `seen`."""
    if speedups.identities_gone is not None:
        gone: list[Socket] = speedups.identities_gone(previous, seen)
        return gone
    assert isinstance(previous, dict) and isinstance(seen, dict)
    return [sock for identity, sock in previous.items() if identity not in seen]


class _Parser:
    """Turns the reads of a dump into Sockets: the hot loop."""

    def __init__(
        self, out: list[Socket], users: dict[int, str], first_seen: float,
        previous: Identities | None = None,
    ) -> None:
        self.out = out
        # Reuse: the previous read's Sockets by cookie (_reads_the_same and _endpoints_are compare the rest). A
        # socket the kernel reports exactly as before is the same object again, not a new one: on a server where
        # most of 100,000 connections are idle, that spares building them (1.4 us each) and lets the diff see
        # "unchanged" with `is`. Owners are set after the read; a reused socket whose owner changed is copied,
        # never mutated (the previous snapshot holds it too): `fresh` tells the new objects apart.
        self.reusing = previous is not None
        self.previous: Identities = previous if previous is not None else speedups.Identities(0)
        # sized for as many sockets as the last read had: no growing on the way
        self.seen: Identities = speedups.Identities(len(self.previous))
        self.replaced: list[Socket] = []  # sockets of `previous` whose cookie came again with other fields
        self.fresh: list[Socket] = []
        self.half_open: list[Socket] = []
        self.ended_by_error = False  # the kernel answered with an error, which ends a dump cleanly
        self.users = users
        self.first_seen = first_seen
        # The shared fields (model.SharedFields) of the sockets read, one tuple per uid (-1 - uid: with no
        # inode, so no user): the sockets of a read share them until their owners are attached.
        self.shared_by_uid: dict[int, SharedFields] = {}
        self.info: _TcpInfoCollector | None = None  # set to collect tcp_info from TCP dumps that asked for it
        self.timers: dict[SocketKey, tuple[int, int, int]] | None = None  # set with `info`: running timers

    def parse(self, buf: bytes | bytearray, size: int, family: int, protocol: int, seq: int) -> bool:
        """Parse one read (`buf[:size]`); True when it ended the dump. Raises NetlinkError (or SockDiagUnavailable)
        on an error reply, setting `ended_by_error`, and NetlinkTruncated on a read that cannot be framed.
        `family` AF_UNSPEC: a TCPDIAG_GETSOCK dump of both families, each message saying its own."""
        both = family == socket.AF_UNSPEC
        reply_type = TCPDIAG_GETSOCK if both else SOCK_DIAG_BY_FAMILY
        proto4, proto6 = DUMP_PROTOS[socket.AF_INET, protocol], DUMP_PROTOS[socket.AF_INET6, protocol]
        proto = f"{proto4} and {proto6}" if both else DUMP_PROTOS[family, protocol]  # for messages
        is_tcp = protocol == socket.IPPROTO_TCP
        names = TCP_STATE_NAMES if is_tcp else UDP_STATE_NAMES
        unpack = _FAST[socket.AF_INET if both else family].unpack_from
        unpack6 = _FAST[socket.AF_INET6].unpack_from
        header = netlink.HEADER.unpack_from
        addresses, ports, users, first_seen = _ADDRESSES, _port_table(), self.users, self.first_seen
        shared_by_uid = self.shared_by_uid
        shared_of = shared_by_uid.get
        append = self.out.append
        reusing, reuse, seen, fresh = self.reusing, self.previous.get, self.seen, self.fresh
        info = self.info if is_tcp else None
        timers = self.timers if is_tcp else None
        timer_fields = _TIMER_FIELDS.unpack_from
        offset = 0
        if speedups.parse_inet_diag is not None and info is None and timers is None:
            # The same loop compiled, for as far as it goes: every whole message of this dump, whose Sockets it
            # makes, reuses and files exactly as below; what is left (DONE, an error) is for this loop.
            offset = speedups.parse_inet_diag(
                buf, size, 0, seq, reply_type, family, proto4, proto6, is_tcp, names, ports, addresses, _address,
                users, first_seen, Socket, self.previous if reusing else None, seen, fresh, self.out,
                self.half_open, shared_by_uid, self.replaced,
            )
        while offset < size:
            if offset + _MESSAGE_LEN <= size:
                (length, m_type, m_seq, m_family, state, sport, dport, src, dst, cookie, recv_q, send_q, uid,
                 inode) = (unpack6 if both and buf[offset + 16] == socket.AF_INET6 else unpack)(buf, offset)
            elif size - offset >= netlink.HEADER_LEN:  # a short message at the end: DONE or an error
                length, m_type, _flags, m_seq, _pid = header(buf, offset)
            else:
                raise netlink.NetlinkTruncated(f"dumping {proto} sockets: a reply ends inside a message header")
            if length < netlink.HEADER_LEN or offset + length > size:
                raise netlink.NetlinkTruncated(
                    f"dumping {proto} sockets: a message at offset {offset} claims {length} bytes; "
                    f"{size - offset} came"
                )
            start = offset
            offset += (length + 3) & ~3
            if m_seq != seq:
                continue  # a late reply to an earlier request
            if m_type == reply_type:
                if length < _MESSAGE_LEN or (m_family not in _FAST if both else m_family != family):
                    continue  # too short to be an inet_diag_msg, or not of this dump (the kernel never sends one)
                if reusing:
                    found = reuse(cookie)
                    if found is not None and not (
                        _reads_the_same(found, names[state], recv_q, send_q, uid, inode,
                                        state == TCP_LISTEN and is_tcp)
                        and _endpoints_are(found.key, ports[sport], ports[dport], src, dst, m_family)
                    ):
                        self.replaced.append(found)
                        found = None
                else:
                    found = None  # no bookkeeping either: a one-shot read pays nothing for reuse
                if found is None:
                    # try/except rather than .get(): a plain subscript is the fastest dict lookup, and a miss
                    # happens once per distinct address.
                    try:
                        local_ip = addresses[src]
                    except KeyError:
                        local_ip = _address(m_family, src)
                    try:
                        remote_ip = addresses[dst]
                    except KeyError:
                        remote_ip = _address(m_family, dst)
                    name = proto6 if m_family == socket.AF_INET6 else proto4
                    if state == TCP_LISTEN and is_tcp:
                        # Send-Q is the backlog limit here; /proc (and netstat) say 0 (see the module docstring),
                        # so the limit is kept apart, for the metrics endpoint's netscope_listen_backlog.
                        found = Socket(
                            name, local_ip, ports[sport], remote_ip, ports[dport], names[state], recv_q, 0,
                            inode, uid, users[uid] if inode else "", None, "", first_seen, backlog=send_q,
                        )
                    else:
                        shared = shared_of(uid if inode else -1 - uid)
                        if shared is None:
                            shared = shared_by_uid[uid if inode else -1 - uid] = (
                                uid, users[uid] if inode else "", None, "", first_seen, False, "", 0.0, 0
                            )
                        found = Socket(
                            name, local_ip, ports[sport], remote_ip, ports[dport], names[state], recv_q, send_q,
                            inode, shared=shared,
                        )
                    if reusing:
                        fresh.append(found)
                if reusing:
                    seen[cookie] = found
                append(found)
                if state == TCP_SYN_RECV and not inode and is_tcp:
                    self.half_open.append(found)
                if info is not None and length > _MESSAGE_LEN and state != TCP_LISTEN:
                    info.add(buf, start + _MESSAGE_LEN, start + length, found.key)
                if timers is not None:
                    timer = timer_fields(buf, start)
                    if timer[0]:
                        timers[found.key] = timer
                continue
            if m_type in (netlink.NLMSG_DONE, netlink.NLMSG_ERROR):
                flags = header(buf, start)[2]  # error_from needs them to find extended-ACK text
                message = netlink.Message(m_type, flags, m_seq, bytes(buf[start : start + length]), 16, length)
                error = netlink.error_from(message, f"dumping {proto} sockets over sock_diag")
                if error is None:
                    if m_type == netlink.NLMSG_DONE:
                        return True
                    continue  # an ACK
                if error.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.EPROTONOSUPPORT):
                    self.ended_by_error = True
                    raise SockDiagUnavailable(
                        error.errno,
                        f"the kernel cannot dump {proto} sockets over sock_diag ({error}): the inet_diag/"
                        f"{'tcp' if is_tcp else 'udp'}_diag module is missing",
                    ) from error
                self.ended_by_error = True
                raise error
        return False


class _TcpInfoCollector:
    """Picks INET_DIAG_INFO and INET_DIAG_SKMEMINFO out of the attributes after each inet_diag_msg.

    Walking ~6 attributes in Python costs more than everything else per connection, and every connection's
    reply carries the same attributes in the same order. So the first walk of each arrangement makes an
    `_AttrLayout`: one Struct that unpacks every attribute header and the wanted fields in one call. A message is
    read with it only when all its headers equal the layout's (each header's length puts the next one where the
    layout expects it, so that equality proves the whole chain), else it is walked and its own layout made.
    """

    def __init__(self, previous: dict[SocketKey, tuple[tuple[int | None, ...], TcpInfo]]) -> None:
        self.previous = previous
        self.seen: dict[SocketKey, tuple[tuple[int | None, ...], TcpInfo]] = {}
        self.found: dict[SocketKey, TcpInfo] = {}

    def add(self, buf: bytes | bytearray, start: int, end: int, key: SocketKey) -> None:
        values: tuple[int | None, ...] | None = None
        for layout in _LAYOUTS.get(end - start, ()):
            fields = layout.unpack(buf, start)
            if layout.headers(fields) == layout.expected:
                values = layout.values(fields)
                if values[MIN_RTT_INDEX] == MIN_RTT_UNKNOWN:
                    values = (*values[:MIN_RTT_INDEX], None, *values[MIN_RTT_INDEX + 1 :])
                break
        else:
            values = _walk(buf, start, end)
            if values is None:
                return  # none (TIME_WAIT, a request socket), or a kernel older than 4.1: never a guess
        before = self.previous.get(key)
        made = before[1] if before is not None and before[0] == values else TcpInfo(*values)  # type: ignore[arg-type]
        self.seen[key] = values, made
        self.found[key] = made


class _AttrLayout(NamedTuple):
    unpack: Callable[[bytes | bytearray, int], tuple[int, ...]]  # Struct.unpack_from over the attributes
    headers: Callable[[tuple[int, ...]], tuple[int, ...]]  # picks every attribute's (length, type) out of it
    expected: tuple[int, ...]
    values: Callable[[tuple[int, ...]], tuple[int, ...]]  # picks TcpInfo's arguments, in order


# Attributes' total length -> the layouts seen with it (newest first; a few per length at most).
_LAYOUTS: dict[int, list[_AttrLayout]] = {}
_LAYOUTS_PER_LENGTH = 4
_LAYOUTS_MAX = 256


def _walk(buf: bytes | bytearray, start: int, end: int) -> tuple[int | None, ...] | None:
    """TcpInfo's arguments from the attributes in buf[start:end], the slow way (None if there is no tcp_info or
    it is too short); remembers their arrangement as a layout when it holds every field."""
    info_at = info_len = mem_at = mem_len = 0
    headers: list[tuple[int, int, int]] = []  # offset, length, raw type
    at = start
    while at + 4 <= end:
        length, attr_type = netlink.ATTR.unpack_from(buf, at)
        if length < 4 or at + length > end:
            return None  # malformed: trust nothing in it (the kernel never sends this)
        headers.append((at - start, length, attr_type))
        if attr_type & netlink.NLA_TYPE_MASK == INET_DIAG_INFO:
            info_at, info_len = at + 4, length - 4
        elif attr_type & netlink.NLA_TYPE_MASK == INET_DIAG_SKMEMINFO:
            mem_at, mem_len = at + 4, length - 4
        at += (length + 3) & ~3
    if info_len < TCP_INFO_MIN_LEN:
        return None
    if at == end and info_len >= TCP_INFO_FULL_LEN and mem_len >= MEMINFO_MIN_LEN:
        _remember_layout(end - start, headers, info_at - start, mem_at - start)
    return tcp_info_values(buf, info_at, info_len) + meminfo_values(buf, mem_at, mem_len)


def _remember_layout(total: int, headers: list[tuple[int, int, int]], info_at: int, mem_at: int) -> None:
    items: list[tuple[int, str, str]] = []  # offset, struct code, name
    for index, (offset, _length, _type) in enumerate(headers):
        items += [(offset, "H", f"len{index}"), (offset + 2, "H", f"type{index}")]
    items += [(info_at + offset, code, name) for name, offset, code in TCP_INFO_FIELDS]
    mem_fields = ("rmem", "rcvbuf", "wmem_alloc", "sndbuf", "fwd_alloc", "wmem_queued")
    items += [(mem_at + 4 * index, "I", name) for index, name in enumerate(mem_fields)]
    items.sort()
    fmt, at = "=", 0
    for offset, code, _name in items:
        fmt += f"{offset - at}x{code}" if offset > at else code
        at = offset + struct.calcsize("=" + code)
    position = {name: index for index, (_offset, _code, name) in enumerate(items)}
    wanted = [name for name, _offset, _code in TCP_INFO_FIELDS] + ["wmem_queued", "sndbuf", "rmem", "rcvbuf"]
    header_names = [name for index in range(len(headers)) for name in (f"len{index}", f"type{index}")]
    layout = _AttrLayout(
        struct.Struct(fmt).unpack_from,
        operator.itemgetter(*(position[name] for name in header_names)),
        tuple(value for _offset, length, attr_type in headers for value in (length, attr_type)),
        operator.itemgetter(*(position[name] for name in wanted)),
    )
    if len(_LAYOUTS) >= _LAYOUTS_MAX:
        _LAYOUTS.clear()
    _LAYOUTS[total] = [layout, *_LAYOUTS.get(total, [])][:_LAYOUTS_PER_LENGTH]


class _Users(dict[int, str]):
    """uid -> user name, asked of `name_of` once per uid."""

    def __init__(self, name_of: Callable[[int], str]) -> None:
        super().__init__()
        self._name_of = name_of

    def __missing__(self, uid: int) -> str:
        name = self[uid] = self._name_of(uid)
        return name


_NO_USERS = _Users(lambda uid: "")


def _address(family: int, raw: bytes) -> str:
    text = socket.inet_ntop(family, raw)
    if len(_ADDRESSES) >= _ADDRESSES_MAX:
        _ADDRESSES.clear()
    _ADDRESSES[raw] = text
    return text


def _give_listener_uids(sockets: list[Socket], half_open: list[Socket]) -> None:
    """Set each half-open connection's uid to its listener's, as /proc does (sock_diag reports 0).

    The listener is the LISTEN socket on the same port, on the same address if one is bound there, else on the
    wildcard. Families are mixed on purpose: an IPv4 connection to a dual-stack [::] listener is an AF_INET
    request socket whose listener is AF_INET6.
    """
    by_address: dict[tuple[str, int], int] = {}
    by_port: dict[int, int] = {}
    for sock in sockets:
        if sock.state == "LISTEN" and sock.is_tcp:
            by_address[sock.local_ip, sock.local_port] = sock.uid
            if sock.local_ip in ("0.0.0.0", "::") or sock.local_port not in by_port:
                by_port[sock.local_port] = sock.uid
    for sock in half_open:
        uid = by_address.get((sock.local_ip, sock.local_port))
        if uid is None:
            uid = by_address.get(("::ffff:" + sock.local_ip, sock.local_port), by_port.get(sock.local_port))
        if uid is not None:
            sock.uid = uid


def read_all_sockets_netlink() -> tuple[list[Socket], list[str]]:
    """Every TCP and UDP socket over sock_diag, like `procnet.read_all_sockets` (a one-shot reader).

    Raises SockDiagUnavailable when sock_diag cannot be used (read /proc/net instead), netlink.NetlinkError when a
    dump fails. The warnings list is for parity with procnet: a complete dump has nothing to warn about.
    """
    with SockDiagReader() as reader:
        return reader.read(), []
