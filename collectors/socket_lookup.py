"""One TCP socket looked up by its 4-tuple with sock_diag (no dump): for closing it (sock_destroy.py) and for the
details of one connection (timers.py's probe_socket).

The kernel's lookup by 4-tuple falls back to the *listening* socket on the local address and port when the
connection itself is gone (inet_lookup); find_connection() checks the answer is that very socket, so a caller
never acts on, or shows, the listener in the connection's place.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterable

from netscope.collectors import netlink
from netscope.collectors.model import Socket
from netscope.collectors.sockdiag import SOCK_DIAG_BY_FAMILY

INET_DIAG_NOCOOKIE = 0xFFFFFFFF  # both cookie words: "any socket at this 4-tuple"
ALL_TCP_STATES = ((1 << 13) - 1) & ~1  # TCP_ESTABLISHED .. TCP_NEW_SYN_RECV
TCP_LISTEN = 10

# struct inet_diag_req_v2 with its struct inet_diag_sockid: family, protocol, ext, pad, states; sport, dport
# (big-endian), src, dst (16 bytes each, IPv4 in the first 4), if, cookie (2 x u32).
_REQUEST = struct.Struct("=BBBxI2s2s16s16sIII")
# The reply's struct inet_diag_msg up to the cookie: family, state, timer, retrans, sport, dport, src, dst, if,
# cookie.
REPLY = struct.Struct("=BBBB2s2s16s16sIII")


def exact_request(sock: Socket, cookie: tuple[int, int], ext: int = 0) -> bytes:
    """The inet_diag_req_v2 naming `sock` by its 4-tuple and `cookie`; `ext`: the INET_DIAG_* attributes wanted."""
    family = socket.AF_INET6 if sock.family == 6 else socket.AF_INET
    # An IPv4-mapped address of a tcp6 socket is asked for as IPv6 (the socket's family); the kernel finds it.
    src = socket.inet_pton(family, sock.local_ip).ljust(16, b"\0")
    dst = socket.inet_pton(family, sock.remote_ip).ljust(16, b"\0")
    return _REQUEST.pack(
        family, socket.IPPROTO_TCP, ext, ALL_TCP_STATES, sock.local_port.to_bytes(2, "big"),
        sock.remote_port.to_bytes(2, "big"), src, dst, 0, *cookie,
    )


def ask(nl: netlink.NetlinkSocket, msg_type: int, payload: bytes, what: str) -> list[netlink.Message]:
    """One request with NLM_F_ACK; the reply's messages before the ACK. Raises NetlinkError with its errno."""
    seq = nl.send(msg_type, netlink.NLM_F_ACK, payload)
    found: list[netlink.Message] = []
    while True:
        for message in netlink.iter_messages(nl.receive()):
            if message.seq != seq:
                continue
            if message.type == netlink.NLMSG_ERROR:
                error = netlink.error_from(message, what)
                if error is not None:
                    raise error
                return found
            found.append(message)


def find_connection(nl: netlink.NetlinkSocket, sock: Socket, ext: int = 0) -> netlink.Message | None:
    """The kernel's message for exactly this socket, or None if it is gone. A listener answers only for a
    listener (`sock` itself in LISTEN), never in place of a connection."""
    try:
        request = exact_request(sock, (INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE), ext)
        replies = ask(nl, SOCK_DIAG_BY_FAMILY, request, "lookup")
    except netlink.NetlinkError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    want = exact_request(sock, (0, 0))[8:44]  # sport, dport, src, dst as the kernel writes them
    listener = sock.state == "LISTEN"
    for message in replies:
        if message.type != SOCK_DIAG_BY_FAMILY or message.end - message.start < REPLY.size:
            continue
        _family, state, _timer, _retrans, sport, dport, src, dst, *_rest = REPLY.unpack_from(
            message.data, message.start
        )
        if (state == TCP_LISTEN) == listener and sport + dport + src + dst == want:
            return message
    return None


_INODE_AT = 68  # struct inet_diag_msg: the inode's offset, after idiag_uid
_INODE = struct.Struct("=I")


def still_open(nl: netlink.NetlinkSocket, sockets: Iterable[Socket]) -> set[int]:
    """The inodes of those of `sockets` the kernel still has under the same inode: a TCP connection closed since
    it was read is gone, or an orphan (inode 0). A socket that cannot be looked up this way (UDP, a listener's
    half-open connection) counts as open: a caller then does what it would without asking."""
    found: set[int] = set()
    for sock in sockets:
        if not sock.is_tcp or sock.state == "LISTEN" or not sock.inode:
            found.add(sock.inode)
            continue
        try:
            message = find_connection(nl, sock)
        except (netlink.NetlinkError, OSError, ValueError):
            found.add(sock.inode)
            continue
        if message is not None and message.end - message.start >= _INODE_AT + _INODE.size and (
            _INODE.unpack_from(message.data, message.start + _INODE_AT)[0] == sock.inode
        ):
            found.add(sock.inode)
    return found
