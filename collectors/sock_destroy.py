"""Closing one TCP connection without touching its process: the kernel's SOCK_DESTROY (what `ss -K` does).

The kernel aborts the socket as if the network had: its process gets ECONNABORTED on its next read or write (and
carries on, or not, as it handles that), the peer gets a RST. It needs CAP_NET_ADMIN and a kernel built with
CONFIG_INET_DIAG_DESTROY.

How a connection is named, and why in two steps: SOCK_DESTROY takes an inet_diag_req_v2 with the 4-tuple, but
the kernel's lookup by 4-tuple falls back to the *listening* socket on the local address and port when the
connection itself is gone (inet_lookup), and destroying that would stop the service. So the connection is first
looked up (SOCK_DIAG_BY_FAMILY, the same lookup), the answer checked to be that very connection, and then
destroyed by 4-tuple *and* the socket cookie that answer carried: the kernel refuses (ENOENT) if the socket at
that 4-tuple is any other by then.

Decisions: only TCP. UDP has no connection to reset: udp_diag's destroy disconnects the socket and sets an error
on it, which is not "closing one connection" to anyone watching; netscope says so instead. A LISTEN socket is
refused: closing it stops the service for every new client, and killing the program (`k`) is the honest way to
do that. Any other TCP state (ESTABLISHED, SYN_RECV, CLOSE_WAIT, TIME_WAIT ...) may be closed.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct
from dataclasses import dataclass

from netscope.collectors import netlink
from netscope.collectors.model import Socket

SOCK_DIAG_BY_FAMILY = 20
SOCK_DESTROY = 21  # linux/sock_diag.h
INET_DIAG_NOCOOKIE = 0xFFFFFFFF  # both cookie words: "any socket at this 4-tuple"
CAP_NET_ADMIN = 12
ALL_TCP_STATES = ((1 << 13) - 1) & ~1  # TCP_ESTABLISHED .. TCP_NEW_SYN_RECV
TCP_LISTEN = 10

# struct inet_diag_req_v2 with its struct inet_diag_sockid: family, protocol, ext, pad, states; sport, dport
# (big-endian), src, dst (16 bytes each, IPv4 in the first 4), if, cookie (2 x u32).
_REQUEST = struct.Struct("=BBBxI2s2s16s16sIII")
# The reply's struct inet_diag_msg up to the cookie: family, state, timer, retrans, sport, dport, src, dst, if,
# cookie.
_REPLY = struct.Struct("=BBBB2s2s16s16sIII")

NEEDS_ROOT = "Closing one connection needs root (CAP_NET_ADMIN); run netscope as root."
NEEDS_CAP = (
    "Closing one connection needs CAP_NET_ADMIN, which this root process lacks (a container without it?); "
    "run netscope with that capability."
)
NOT_BUILT = "This kernel cannot close single sockets (built without CONFIG_INET_DIAG_DESTROY)."
ALREADY_GONE = "That connection is already gone."


@dataclass(slots=True, frozen=True)
class DestroyResult:
    ok: bool
    message: str  # plain words, for the status line


def _no_permission() -> str:
    return NEEDS_ROOT if os.geteuid() != 0 else NEEDS_CAP


def _has_net_admin() -> bool:
    """Whether this process's effective capabilities hold CAP_NET_ADMIN (the kernel's check, ns_capable, is
    against the socket's network namespace; in the usual one namespace that is this)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0  # no /proc: assume root has it, and let the kernel say otherwise


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _describe(sock: Socket) -> str:
    local, remote = _endpoint(sock.local_ip, sock.local_port), _endpoint(sock.remote_ip, sock.remote_port)
    return f"{sock.proto} {local} -> {remote}"


def _request(sock: Socket, cookie: tuple[int, int]) -> bytes:
    family = socket.AF_INET6 if sock.family == 6 else socket.AF_INET
    # An IPv4-mapped address of a tcp6 socket is asked for as IPv6 (the socket's family); the kernel finds it.
    src = socket.inet_pton(family, sock.local_ip).ljust(16, b"\0")
    dst = socket.inet_pton(family, sock.remote_ip).ljust(16, b"\0")
    return _REQUEST.pack(
        family, socket.IPPROTO_TCP, 0, ALL_TCP_STATES, sock.local_port.to_bytes(2, "big"),
        sock.remote_port.to_bytes(2, "big"), src, dst, 0, *cookie,
    )


def _ask(nl: netlink.NetlinkSocket, msg_type: int, payload: bytes, what: str) -> list[netlink.Message]:
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


def _cookie_of(nl: netlink.NetlinkSocket, sock: Socket) -> tuple[int, int] | None:
    """The cookie of the socket at exactly this 4-tuple, or None if there is none (the kernel may answer with
    the listener on the local port instead: that is not it)."""
    try:
        replies = _ask(nl, SOCK_DIAG_BY_FAMILY, _request(sock, (INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)), "lookup")
    except netlink.NetlinkError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    want = _request(sock, (0, 0))[8:44]  # sport, dport, src, dst as the kernel writes them
    for message in replies:
        if message.type != SOCK_DIAG_BY_FAMILY or message.end - message.start < _REPLY.size:
            continue
        _family, state, _timer, _retrans, sport, dport, src, dst, _if, low, high = _REPLY.unpack_from(
            message.data, message.start
        )
        if state != TCP_LISTEN and sport + dport + src + dst == want:
            return low, high
    return None


def close_refusal(sock: Socket) -> str:
    """Why this socket is not one to close on its own ("" if it is): asked before the user is asked to confirm."""
    if not sock.is_tcp:
        return "Closing a single UDP socket is not supported: UDP has no connection to close."
    if sock.state == "LISTEN" or sock.remote_port == 0:
        return (
            f"Not closing the listening socket on port {sock.local_port}: that would stop the service for every "
            "new client. Close single connections, or kill the program to stop it."
        )
    return ""


def destroy_socket(sock: Socket) -> DestroyResult:
    """Close this one TCP connection (see the module docstring). Never raises; the result says what happened."""
    refusal = close_refusal(sock)
    if refusal:
        return DestroyResult(False, refusal)
    try:
        nl = netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG)
    except OSError as exc:
        return DestroyResult(
            False, f"Cannot close connections here: the kernel's sock_diag netlink interface is unavailable "
            f"({exc.strerror or exc})."
        )
    with nl:
        try:
            cookie = _cookie_of(nl, sock)
            if cookie is None:
                return DestroyResult(False, ALREADY_GONE)
            _ask(nl, SOCK_DESTROY, _request(sock, cookie), "closing a connection (SOCK_DESTROY)")
        except netlink.NetlinkError as exc:
            return DestroyResult(False, _error_message(exc.errno or errno.EIO))
    if sock.inode == 0:
        return DestroyResult(True, f"Closed {_describe(sock)}; no process held it.")
    owner = f"{sock.program} (PID {sock.pid})" if sock.pid is not None and sock.program else "the process"
    return DestroyResult(True, f"Closed {_describe(sock)}; {owner} keeps running.")


def _error_message(err: int) -> str:
    if err in (errno.EPERM, errno.EACCES):
        return _no_permission()
    if err == errno.EOPNOTSUPP:
        return NOT_BUILT
    if err in (errno.ENOENT, errno.ESTALE):  # ESTALE: another socket has that 4-tuple now
        return ALREADY_GONE
    return f"Closing the connection failed: {os.strerror(err)} (errno {err})."


def destroy_capability() -> str:
    """"" when this process may close connections, else why not, in words. Cheap: a capability check, and the
    kernel asked once per process (a destroy of a socket that cannot exist: cookie 0 is never a socket's)."""
    if not _has_net_admin():
        return _no_permission()
    return _kernel_support()


@functools.cache
def _kernel_support() -> str:
    # The kernel checks for a destroy handler before looking anything up, and the permission only after: so
    # this tells EOPNOTSUPP (not built) from ENOENT (supported), and nothing about permission.
    nobody = Socket("tcp", "0.0.0.0", 0, "0.0.0.0", 0, "CLOSE", 0, 0, 0, 0)
    try:
        with netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG) as nl:
            _ask(nl, SOCK_DESTROY, _request(nobody, (0, 0)), "probing SOCK_DESTROY")
    except netlink.NetlinkError as exc:
        if exc.errno in (errno.ENOENT, errno.ESTALE):
            return ""
        if exc.errno in (errno.EPERM, errno.EACCES):
            return _no_permission()
        return NOT_BUILT if exc.errno == errno.EOPNOTSUPP else _error_message(exc.errno or errno.EIO)
    except OSError as exc:
        return f"Cannot close connections here: the kernel's sock_diag netlink interface is unavailable ({exc})."
    return ""  # the kernel accepted a destroy of nothing: it has the handler
