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
from dataclasses import dataclass

from netscope.collectors import netlink
from netscope.collectors.model import Socket, is_unix
from netscope.collectors.socket_lookup import REPLY, ask, exact_request, find_connection

SOCK_DESTROY = 21  # linux/sock_diag.h
CAP_NET_ADMIN = 12

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


def _cookie_of(nl: netlink.NetlinkSocket, sock: Socket) -> tuple[int, int] | None:
    """The cookie of the socket at exactly this 4-tuple, or None if there is none (the kernel may answer with
    the listener on the local port instead: that is not it)."""
    message = find_connection(nl, sock)
    if message is None:
        return None
    *_rest, low, high = REPLY.unpack_from(message.data, message.start)
    return low, high


def close_refusal(sock: Socket) -> str:
    """Why this socket is not one to close on its own ("" if it is): asked before the user is asked to confirm."""
    if is_unix(sock.proto):
        return ("Closing one unix socket is not possible: the kernel's SOCK_DESTROY closes TCP connections only. "
                "Kill its owner (k) instead.")
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
            ask(nl, SOCK_DESTROY, exact_request(sock, cookie), "closing a connection (SOCK_DESTROY)")
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
            ask(nl, SOCK_DESTROY, exact_request(nobody, (0, 0)), "probing SOCK_DESTROY")
    except netlink.NetlinkError as exc:
        if exc.errno in (errno.ENOENT, errno.ESTALE):
            return ""
        if exc.errno in (errno.EPERM, errno.EACCES):
            return _no_permission()
        return NOT_BUILT if exc.errno == errno.EOPNOTSUPP else _error_message(exc.errno or errno.EIO)
    except OSError as exc:
        return f"Cannot close connections here: the kernel's sock_diag netlink interface is unavailable ({exc})."
    return ""  # the kernel accepted a destroy of nothing: it has the handler
