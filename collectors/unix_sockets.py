"""Unix domain sockets (`netstat -x`, `ss -x`): type, state, queues, path, inode, the peer's inode and the owner.

Netlink UNIX_DIAG first: it gives the queues and the peer (so both ends of a socketpair or of a /run/*.sock
connection are linked), which /proc/net/unix lacks; /proc/net/unix is the fallback (no queues, no peer). Paths
are the system's choice: kept as the kernel's bytes, decoded without loss (`\\xff` for a byte that is not UTF-8),
abstract names written `@name` as netstat and ss do, and escaped for the terminal where they are shown.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from netscope.collectors import netlink
from netscope.collectors.model import Socket
from netscope.collectors.owners import attach_owners
from netscope.collectors.processes import user_name
from netscope.collectors.sockdiag import SOCK_DIAG_BY_FAMILY

UNIX_DIAG_REQ = struct.Struct("=BBxxIII8x")  # family, protocol, states, inode, show, cookie
UNIX_DIAG_MSG = struct.Struct("=BBBxI8x")  # family, type, state, inode, cookie
UDIAG_SHOW_NAME, UDIAG_SHOW_PEER, UDIAG_SHOW_RQLEN, UDIAG_SHOW_UID = 0x01, 0x04, 0x10, 0x40
UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_RQLEN, UNIX_DIAG_UID = 0, 2, 4, 7
_U32, _RQLEN = struct.Struct("=I"), struct.Struct("=II")

TYPES: dict[int, str] = {int(socket.SOCK_STREAM): "STREAM", int(socket.SOCK_DGRAM): "DGRAM",
                         int(socket.SOCK_SEQPACKET): "SEQPACKET"}
# The kernel's TCP-style state numbers for unix sockets, as netstat words them; unconnected has no word there.
STATES = {1: "CONNECTED", 2: "CONNECTING", 7: "UNCONNECTED", 10: "LISTENING"}
# /proc/net/unix's St column (socket_state) and its __SO_ACCEPTCON flag.
_PROC_STATES = {1: "UNCONNECTED", 2: "CONNECTING", 3: "CONNECTED", 4: "DISCONNECTING"}
_ACCEPTCON = 0x10000
MAX_PATH = 108  # sun_path: a longer name is not one the kernel gave


@dataclass(slots=True)
class UnixSocket:
    type: str  # STREAM, DGRAM, SEQPACKET (or the number, for a type newer than this code)
    state: str  # LISTENING, CONNECTED, CONNECTING, UNCONNECTED, DISCONNECTING
    inode: int
    path: str = ""  # "" unnamed; "@name" abstract; otherwise the file's path
    peer_inode: int = 0  # the other end's inode (0: none, or not known from /proc)
    recv_q: int | None = None  # listeners: connections waiting; others: bytes queued. None: not known (/proc)
    send_q: int | None = None  # listeners: the backlog; others: bytes queued to the peer
    pid: int | None = None
    program: str = ""
    container: str = ""
    uid: int | None = None  # the creator's uid (netlink on Linux 5.3 and later); None: not known


@dataclass(slots=True)
class UnixTable:
    sockets: list[UnixSocket]
    source: str  # "netlink" or "/proc/net/unix"
    warnings: list[str]


def decode_path(raw: bytes) -> str:
    """The kernel's sun_path bytes as text: abstract names (a leading NUL) as `@name`, each NUL inside as `@`
    (what /proc/net/unix shows), bytes that are not UTF-8 kept visible as `\\xNN`, never dropped."""
    raw = raw[:MAX_PATH]
    abstract = raw.startswith(b"\0")
    raw = b"@" + raw[1:].replace(b"\0", b"@") if abstract else raw.split(b"\0", 1)[0]
    return raw.decode("utf-8", "backslashreplace")


def read_unix_sockets(owners: bool = True) -> UnixTable:
    """Every unix socket of this network namespace, with owners (`owners`) from the same /proc/*/fd scan the
    TCP/UDP collector uses."""
    warnings: list[str] = []
    try:
        sockets, source = _read_netlink(), "netlink"
    except OSError as error:
        sockets, source = read_proc_unix(), "/proc/net/unix"
        warnings.append(f"unix sockets read from /proc/net/unix (netlink UNIX_DIAG failed: {error}): no queues "
                        "and no peers")  # fmt: skip
    if owners:
        warnings.extend(attach_owners(sockets))
    return UnixTable(sockets, source, warnings)


def _read_netlink() -> list[UnixSocket]:
    out: list[UnixSocket] = []
    show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID
    request = UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, 0xFFFFFFFF, 0, show)
    with netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG) as sock:
        for message in sock.dump(SOCK_DIAG_BY_FAMILY, request, "dump of unix sockets"):
            data, start, end = message.data, message.start, message.end
            if message.type != SOCK_DIAG_BY_FAMILY or end - start < UNIX_DIAG_MSG.size:
                continue
            _family, kind, state, inode = UNIX_DIAG_MSG.unpack_from(data, start)
            found = UnixSocket(TYPES.get(kind, str(kind)), STATES.get(state, f"UNKNOWN({state})"), inode)
            for attr, at, stop in netlink.iter_attrs(data, start + UNIX_DIAG_MSG.size, end):
                if attr == UNIX_DIAG_NAME:
                    found.path = decode_path(bytes(data[at:stop]))
                elif attr == UNIX_DIAG_PEER and stop - at >= 4:
                    found.peer_inode = _U32.unpack_from(data, at)[0]
                elif attr == UNIX_DIAG_RQLEN and stop - at >= 8:
                    found.recv_q, found.send_q = _RQLEN.unpack_from(data, at)
                elif attr == UNIX_DIAG_UID and stop - at >= 4:
                    found.uid = _U32.unpack_from(data, at)[0]
            out.append(found)
    return out


def read_proc_unix(proc_root: str = "/proc") -> list[UnixSocket]:
    """/proc/net/unix: `Num RefCount Protocol Flags Type St Inode Path`. A path holding a newline breaks its line
    there (the file does not escape it): the rest is skipped, and netlink, which has no such trouble, is the
    reader that is used wherever it works."""
    try:
        with open(f"{proc_root.rstrip('/')}/net/unix", "rb") as file:
            lines = file.read().split(b"\n")[1:]
    except OSError:
        return []
    out: list[UnixSocket] = []
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) < 7:
            continue
        try:
            flags, kind, state, inode = int(fields[3], 16), int(fields[4], 16), int(fields[5], 16), int(fields[6])
        except ValueError:
            continue
        words = "LISTENING" if flags & _ACCEPTCON else _PROC_STATES.get(state, f"UNKNOWN({state})")
        path = fields[7].rstrip(b"\r") if len(fields) > 7 else b""
        out.append(UnixSocket(TYPES.get(kind, str(kind)), words, inode, decode_path(path)))
    return out


# The Connections view shows unix sockets as rows of its one table, in `ss`'s words: u_str, u_dgr, u_seq, and the
# TCP state names the filter language knows (a connected socket is ESTABLISHED, as ss says ESTAB).
UNIX_PROTOS: dict[str, str] = {"STREAM": "u_str", "DGRAM": "u_dgr", "SEQPACKET": "u_seq"}
UNIX_STATE_NAMES: dict[str, str] = {"CONNECTED": "ESTABLISHED", "CONNECTING": "SYN_SENT", "UNCONNECTED": "UNCONN",
                                    "LISTENING": "LISTEN", "DISCONNECTING": "CLOSING"}


def as_sockets(sockets: list[UnixSocket], taken_at: float) -> list[Socket]:
    """Unix sockets as table rows, placed where `ss -x` prints them: the local address is the path (`""`
    unnamed) and the local port the inode; the remote address is the peer's path (found in the same read, so the
    client end of a /run/*.sock connection names the service it talks to) and the remote port the peer's inode.
    A listener's queue is its pending connections and `backlog` its limit; Send-Q is 0 there, as for TCP."""
    paths = {sock.inode: sock.path for sock in sockets}
    users: dict[int, str] = {}
    rows: list[Socket] = []
    for sock in sockets:
        listening = sock.state == "LISTENING"
        uid = sock.uid if sock.uid is not None else -1
        user = users.get(uid)
        if user is None:
            user = users[uid] = user_name(uid) if uid >= 0 else ""
        row = Socket(
            UNIX_PROTOS.get(sock.type, f"u_{sock.type.lower()}"), sock.path, sock.inode,
            paths.get(sock.peer_inode, "") if sock.peer_inode else "", sock.peer_inode,
            UNIX_STATE_NAMES.get(sock.state, sock.state), sock.recv_q or 0, 0 if listening else sock.send_q or 0,
            sock.inode, uid, user=user, pid=sock.pid, program=sock.program, first_seen=taken_at,
            container=sock.container,
        )
        if listening:
            row.backlog = sock.send_q or 0
        rows.append(row)
    return rows
