"""Just enough netlink to dump kernel tables: a socket, dump requests, replies, errors and attributes.

Written by hand with `struct` rather than with pyroute2: a dump of a router's ~1M routes means millions of
messages and attributes, and a generic parser that builds an object per attribute is far too slow for that. Here
a dump yields the raw bytes and offsets of each message, and the caller unpacks only the attributes it needs.

Used by `netscope.collectors.routes` (NETLINK_ROUTE: RTM_GETROUTE, RTM_GETLINK) and meant for a sock_diag
(NETLINK_SOCK_DIAG, INET_DIAG) reader as well: `NetlinkSocket(NETLINK_SOCK_DIAG).dump(SOCK_DIAG_BY_FAMILY, req)`.

Netlink integers are in the host's byte order ("=" formats); addresses inside attributes are in network order.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4

# Python's socket module does not export these (linux/netlink.h).
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP_INTR = 0x10  # the table changed during the dump: the result may miss or repeat entries
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_CAPPED = 0x100  # in an NLMSG_ERROR: the echoed request is only its header
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR / NLMSG_DONE: extended-ACK attributes follow

NLMSGERR_ATTR_MSG = 1  # the kernel's own words for the error ("Invalid values in header for FIB dump request")
NLMSGERR_ATTR_OFFS = 2

# rtnetlink message types shared by several readers.
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWROUTE = 24
RTM_GETROUTE = 26

IFLA_IFNAME = 3
IFLA_EXT_MASK = 29
RTEXT_FILTER_SKIP_STATS = 1 << 3  # leave the (large) counters out of RTM_GETLINK replies

HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: len, type, flags, seq, pid
HEADER_LEN = HEADER.size
ATTR = struct.Struct("=HH")  # struct rtattr / nlattr: len, type
ATTR_LEN = ATTR.size
NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
_ERRNO = struct.Struct("=i")
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change

# The kernel fills at most ~32 KiB per read of a dump; a larger buffer costs nothing and leaves room to spare.
DEFAULT_RECV_SIZE = 1 << 16
DEFAULT_TIMEOUT = 10.0


class NetlinkError(OSError):
    """A netlink request failed: the kernel replied with an error, or its reply could not be read.

    `errno` is the error number (as for OSError), `kernel_message` the kernel's extended-ACK text when it gave one.
    """

    def __init__(self, err: int, text: str, kernel_message: str = "") -> None:
        super().__init__(err, text)
        self.kernel_message = kernel_message

    def __str__(self) -> str:
        return str(self.strerror)


class NetlinkTruncated(NetlinkError):
    """A reply was cut short: a message longer than the data received, or longer than the receive buffer."""

    def __init__(self, text: str) -> None:
        super().__init__(errno.EMSGSIZE, text)


class Message(NamedTuple):
    """One message of a reply. The payload is `data[start:end]`; `data` is shared by a whole read."""

    type: int
    flags: int
    seq: int
    data: bytes
    start: int
    end: int


def align(length: int) -> int:
    """Netlink pads messages and attributes to 4 bytes (NLMSG_ALIGN, RTA_ALIGN)."""
    return (length + 3) & ~3


def _framing_error(data: bytes, offset: int) -> NetlinkTruncated | None:
    """Why the message at `offset` cannot be framed, or None if its header fits and its length is sane."""
    left = len(data) - offset
    if left < HEADER_LEN:
        return NetlinkTruncated(
            f"truncated netlink reply: {left} bytes left at offset {offset}, fewer than a message header"
        )
    length, msg_type = HEADER.unpack_from(data, offset)[:2]
    if length < HEADER_LEN or length > left:
        return NetlinkTruncated(
            f"truncated netlink reply: message of type {msg_type} at offset {offset} claims {length} bytes, "
            f"{left} are there"
        )
    return None


def iter_messages(data: bytes) -> Iterator[Message]:
    """The messages in one read of a netlink socket.

    Raises NetlinkTruncated when a header claims more bytes than there are (or fewer than a header): the rest of
    the read cannot be framed, and silently dropping it would make a partial table look complete.
    """
    offset = 0
    size = len(data)
    while offset < size:
        error = _framing_error(data, offset)
        if error is not None:
            raise error
        length, msg_type, flags, seq, _pid = HEADER.unpack_from(data, offset)
        yield Message(msg_type, flags, seq, data, offset + HEADER_LEN, offset + length)
        offset += align(length)


def iter_attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each attribute in `data[start:end]`.

    Stops at the first malformed attribute (shorter than its header, or running past `end`), as the kernel's own
    nla_ok() does: what came before it is still good, and a bad length leaves nothing reliable after it.
    """
    while start + ATTR_LEN <= end:
        length, attr_type = ATTR.unpack_from(data, start)
        if length < ATTR_LEN or start + length > end:
            return
        yield attr_type & NLA_TYPE_MASK, start + ATTR_LEN, start + length
        start += (length + 3) & ~3


def parse_attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    """Attribute type -> payload bytes (the last one wins if a type repeats). See iter_attrs for malformed ones."""
    attrs: dict[int, bytes] = {}
    unpack = ATTR.unpack_from
    while start + 4 <= end:  # inlined iter_attrs: this runs once per route of a possibly huge table
        length, attr_type = unpack(data, start)
        if length < 4 or start + length > end:
            break
        attrs[attr_type & NLA_TYPE_MASK] = data[start + 4 : start + length]
        start += (length + 3) & ~3
    return attrs


def pack_attr(attr_type: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes, to append to a request."""
    length = ATTR_LEN + len(payload)
    return ATTR.pack(length, attr_type) + payload + b"\0" * (align(length) - length)


def attr_string(payload: bytes) -> str:
    """A NUL-terminated string attribute."""
    return payload.split(b"\0", 1)[0].decode("utf-8", "replace")


def error_from(message: Message, request: str) -> NetlinkError | None:
    """The error carried by an NLMSG_ERROR or NLMSG_DONE message; None for a plain ACK or a clean DONE."""
    data, start, end = message.data, message.start, message.end
    if end - start < _ERRNO.size:
        if message.type == NLMSG_DONE:
            return None  # old kernels send an empty DONE
        return NetlinkTruncated(f"{request}: truncated netlink error message ({end - start} bytes)")
    (code,) = _ERRNO.unpack_from(data, start)
    if code >= 0:
        return None
    err = -code
    kernel_message = ""
    if message.flags & NLM_F_ACK_TLVS:
        tlv_start = start + _ERRNO.size
        if message.type == NLMSG_ERROR:
            # struct nlmsgerr echoes the request: only its header when capped, else the whole of it.
            echoed = HEADER_LEN
            if not message.flags & NLM_F_CAPPED and end - tlv_start >= HEADER_LEN:
                echoed = max(HEADER_LEN, align(HEADER.unpack_from(data, tlv_start)[0]))
            tlv_start += echoed
        for attr_type, a_start, a_end in iter_attrs(data, tlv_start, end):
            if attr_type == NLMSGERR_ATTR_MSG:
                kernel_message = attr_string(data[a_start:a_end])
    text = f"{request} failed: {os.strerror(err)} (errno {err})"
    if kernel_message:
        text += f"; the kernel says: {kernel_message}"
    return NetlinkError(err, text, kernel_message)


class NetlinkSocket:
    """A netlink socket for dump requests. Use as a context manager, or call close().

    Creating it raises OSError as socket() does (EPERM under a seccomp filter, EAFNOSUPPORT/EPROTONOSUPPORT where
    netlink or the protocol is missing): callers decide whether that means "fall back".
    `strict` turns on NETLINK_GET_STRICT_CHK: the kernel then rejects malformed dump requests instead of ignoring
    the bad fields (and may filter dumps by the request's header fields).
    """

    def __init__(
        self,
        protocol: int = NETLINK_ROUTE,
        *,
        strict: bool = False,
        recv_size: int = DEFAULT_RECV_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
                # Errors in the kernel's own words, and no echo of our request (kernels 4.12+ / 4.3+).
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(SOL_NETLINK, option, 1)
            if strict:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            self._sock.bind((0, 0))  # the kernel picks our port id
            self._sock.settimeout(timeout)
        except BaseException:
            self._sock.close()
            raise
        self._timeout = timeout
        self._buffer = bytearray(recv_size)
        self._view = memoryview(self._buffer)
        self._seq = 0
        self._busy = False
        self.last_dump_interrupted = False

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def send(self, msg_type: int, flags: int, payload: bytes) -> int:
        """Send one request; returns its sequence number."""
        self._seq = (self._seq % 0x7FFFFFFF) + 1
        header = HEADER.pack(HEADER_LEN + len(payload), msg_type, flags | NLM_F_REQUEST, self._seq, 0)
        try:
            self._sock.sendto(header + payload, (0, 0))
        except OSError as exc:
            raise NetlinkError(
                exc.errno or errno.EIO, f"sending a netlink request failed: {exc.strerror}"
            ) from exc
        return self._seq

    def receive(self) -> bytes:
        """One read from the socket (one or more whole messages), copied out of the buffer."""
        return bytes(self._view[: self.receive_into()])

    @property
    def buffer(self) -> bytearray:
        """The socket's own receive buffer, which `receive_into` fills (and the next read overwrites)."""
        return self._buffer

    def receive_into(self) -> int:
        """One read into `buffer`, without copying it out: returns how many bytes came (whole messages).

        For readers that unpack straight from the buffer (sock_diag: ~100,000 messages a dump). They frame the
        messages themselves, and must close the socket if they stop before the dump's NLMSG_DONE, as `dump` does.
        """
        try:
            nbytes, _anc, msg_flags, _addr = self._sock.recvmsg_into([self._view])
        except TimeoutError as exc:
            raise NetlinkError(errno.ETIMEDOUT, f"the kernel did not answer within {self._timeout:g} s") from exc
        except OSError as exc:
            raise NetlinkError(exc.errno or errno.EIO, f"reading a netlink reply failed: {exc.strerror}") from exc
        if msg_flags & socket.MSG_TRUNC:
            raise NetlinkTruncated(
                f"a netlink reply did not fit the {len(self._buffer)} byte receive buffer and was cut off"
            )
        return nbytes

    def dump(self, msg_type: int, payload: bytes, request: str = "", flags: int = 0) -> Iterator[Message]:
        """Send a dump request and yield every message of the reply until NLMSG_DONE.

        Raises NetlinkError when the kernel replies with an error (with its extended-ACK text, if any) and
        NetlinkTruncated when a reply is cut short. `last_dump_interrupted` tells afterwards whether the kernel
        flagged the dump as inconsistent (NLM_F_DUMP_INTR: the table changed while it was read).
        A dump left unfinished (the caller stopped iterating, or an error) closes the socket: the kernel would
        keep the rest of it queued and refuse the next dump with EBUSY.
        """
        if self._busy:
            raise NetlinkError(errno.EBUSY, "another dump on this netlink socket is still being read")
        request = request or f"netlink dump of message type {msg_type}"
        self._busy = True
        self.last_dump_interrupted = False
        finished = False
        unpack_header = HEADER.unpack_from
        try:
            seq = self.send(msg_type, flags | NLM_F_DUMP, payload)
            while True:
                data = self.receive()
                # The framing of iter_messages(), inlined: one generator per message less, on dumps that can
                # run to millions of messages.
                offset, size = 0, len(data)
                while offset < size:
                    if size - offset < HEADER_LEN:
                        raise _framing_error(data, offset) or NetlinkTruncated("truncated netlink reply")
                    length, m_type, m_flags, m_seq, _pid = unpack_header(data, offset)
                    if length < HEADER_LEN or offset + length > size:
                        raise _framing_error(data, offset) or NetlinkTruncated("truncated netlink reply")
                    message = Message(m_type, m_flags, m_seq, data, offset + HEADER_LEN, offset + length)
                    offset += (length + 3) & ~3
                    if m_seq != seq:
                        continue  # a late reply to an earlier request
                    if m_flags & NLM_F_DUMP_INTR:
                        self.last_dump_interrupted = True
                    if m_type in (NLMSG_DONE, NLMSG_ERROR):
                        error = error_from(message, request)
                        if error is not None:
                            finished = True  # the kernel ended the dump itself; the socket stays usable
                            raise error
                        if m_type == NLMSG_DONE:
                            finished = True
                            return
                        continue  # an ACK (error 0)
                    if m_type in (NLMSG_NOOP, NLMSG_OVERRUN):
                        continue
                    yield message
        finally:
            self._busy = False
            if not finished:
                self.close()


def link_names(sock: NetlinkSocket) -> dict[int, str]:
    """Interface index -> name, for every interface of the socket's network namespace (RTM_GETLINK dump)."""
    payload = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + pack_attr(
        IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS)
    )
    names: dict[int, str] = {}
    for message in sock.dump(RTM_GETLINK, payload, "listing network interfaces (RTM_GETLINK)"):
        if message.type != RTM_NEWLINK or message.end - message.start < _IFINFOMSG.size:
            continue
        index = _IFINFOMSG.unpack_from(message.data, message.start)[2]
        for attr_type, start, end in iter_attrs(message.data, message.start + _IFINFOMSG.size, message.end):
            if attr_type == IFLA_IFNAME:
                names[index] = attr_string(message.data[start:end])
                break
    return names
