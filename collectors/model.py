"""Plain typed data shared by the collectors and the widgets that show it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from netscope.collectors.tcpinfo import TcpInfo

# Kernel TCP state numbers (include/net/tcp_states.h) to the names netstat prints.
TCP_STATES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}

# The states the counter bar shows, in the order people read them; "UDP" counts every UDP socket.
COUNTED_STATES: tuple[str, ...] = (
    "ESTABLISHED",
    "LISTEN",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "CLOSING",
    "UDP",
)

# Every state name the filter language accepts (UNCONN is an unconnected UDP socket, as `ss` calls it).
ALL_STATE_NAMES: tuple[str, ...] = (*TCP_STATES.values(), "UNCONN")

PROTOCOLS: tuple[str, ...] = ("tcp", "tcp6", "udp", "udp6")

# The counter bar of unix sockets (the Connections view after `u`): their states in the TCP words ss uses.
UNIX_COUNTED_STATES: tuple[str, ...] = ("ESTABLISHED", "LISTEN", "SYN_SENT", "UNCONN")


def is_unix(proto: str) -> bool:
    """u_str, u_dgr, u_seq: a unix socket shown as a row (collectors/unix_sockets.as_sockets)."""
    return proto.startswith("u_")

# A socket's identity across snapshots: proto, local ip, local port, remote ip, remote port, and the inode for
# sockets with no peer (several LISTEN or UDP sockets may share an address with SO_REUSEPORT). Connected sockets
# leave the inode out so that ESTABLISHED -> TIME_WAIT (inode becomes 0) is a change, not a remove and an add.
SocketKey = tuple[str, str, int, str, int, int]


# A socket's fields that many sockets have equal, kept as one tuple that those sockets share (Socket.shared): its
# owner, when it was first seen, and a listener's backlog. A process's sockets read at one time have them equal, so
# 100,000 sockets hold a few hundred of these; as nine slots of each socket they cost 64 bytes a socket in each
# process (192 -> 128 bytes a Socket), and the pipe already sent them as one shared tuple. The order is
# Socket()'s arguments after `inode`.
SharedFields = tuple[int, str, int | None, str, float, bool, str, float, int]
UID, USER, PID, PROGRAM, FIRST_SEEN, SEEN_SINCE_START, CONTAINER, PID_START, BACKLOG = range(9)
NOBODY_YET: SharedFields = (0, "", None, "", 0.0, False, "", 0.0, 0)


def _shared_field(index: int, doc: str) -> property:
    def get(sock: Socket) -> Any:
        return sock.shared[index]

    def put(sock: Socket, value: Any) -> None:
        # A new tuple: the old one is shared with other sockets. Paths that set a field of many sockets share the
        # tuples they make (shared_with), not this.
        shared = sock.shared
        sock.shared = (*shared[:index], value, *shared[index + 1 :])

    return property(get, put, doc=doc)


class Socket:
    """One row of `netstat -antup`, with what the kernel and /proc say about its owner.

    A plain class rather than a dataclass: the fields most sockets share with others live in one shared tuple
    (`shared`, see SharedFields), read and set through properties of their own names. The compiled reader fills
    the slots in place by their names (collectors/_speedups.c): change them together."""

    __slots__ = (
        "counter_name",
        "inode",
        "key",
        "local_ip",
        "local_port",
        "proto",
        "recv_q",
        "remote_ip",
        "remote_port",
        "send_q",
        "shared",
        "state",
    )

    proto: str  # tcp, tcp6, udp, udp6
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: str  # netstat's name: ESTABLISHED, LISTEN ...; UNCONN for an unconnected UDP socket
    recv_q: int
    send_q: int
    inode: int
    # Computed once: the identity is looked up several times per socket per refresh. Never reassign the endpoint
    # fields or the inode of a socket after it is made; make a new one.
    key: SocketKey
    # The counter bar bucket it falls in (a TCP state, "UDP", a unix socket's state): computed once too, as the
    # counters, the table and the alerts each ask it of every socket on a first load.
    counter_name: str
    shared: SharedFields

    uid = _shared_field(UID, "The owning user's id, as the kernel says.")
    user = _shared_field(USER, "Its name; '' for a socket with no inode (the kernel's, not any user's).")
    pid = _shared_field(PID, "None: unknown (another user's process without root, or no owner: TIME_WAIT).")
    program = _shared_field(PROGRAM, "The owner's name.")
    first_seen = _shared_field(FIRST_SEEN, "Wall clock (time.time()) when netscope first saw it.")
    seen_since_start = _shared_field(
        SEEN_SINCE_START, "True if it already existed when netscope started: the age is a lower bound."
    )
    container = _shared_field(
        CONTAINER, "The owner's container or service, from its cgroup (collectors/containers.py); '' host."
    )
    # With `pid` and `inode` it is the identity a kill checks, so a PID recycled since the row was read is never
    # signalled. 0.0: no owner, or not known (a recording does not hold it: nothing is signalled from a replay),
    # which is why == leaves it out.
    pid_start = _shared_field(PID_START, "The owner's start time (time.time() seconds) when seen with it.")
    # `ss` shows it as a listener's Send-Q; netstat shows 0 there, and so does `send_q`. Left out of ==: the /proc
    # reader cannot know it, and both readers must give equal sockets.
    backlog = _shared_field(
        BACKLOG, "A TCP listener's backlog limit (listen()'s, capped by net.core.somaxconn); 0: not known."
    )

    def __init__(
        self, proto: str, local_ip: str, local_port: int, remote_ip: str, remote_port: int, state: str,
        recv_q: int, send_q: int, inode: int, uid: int = 0, user: str = "", pid: int | None = None,
        program: str = "", first_seen: float = 0.0, seen_since_start: bool = False, container: str = "",
        pid_start: float = 0.0, backlog: int = 0, *, shared: SharedFields | None = None,
    ) -> None:
        """The arguments after `inode` are the shared fields; or pass them as `shared`, a tuple to share."""
        self.proto = proto
        self.local_ip = local_ip
        self.local_port = local_port
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.state = state
        self.recv_q = recv_q
        self.send_q = send_q
        self.inode = inode
        self.shared = shared if shared is not None else (
            uid, user, pid, program, first_seen, seen_since_start, container, pid_start, backlog
        )
        self.key = (proto, local_ip, local_port, remote_ip, remote_port, inode if remote_port == 0 else 0)
        if proto.startswith("tcp"):
            self.counter_name = "SYN_RECV" if state == "NEW_SYN_RECV" else state
        else:
            self.counter_name = state if is_unix(proto) else "UDP"

    def _compared(self) -> tuple[Any, ...]:
        """What == compares: every field but pid_start and backlog (see them)."""
        return (self.proto, self.local_ip, self.local_port, self.remote_ip, self.remote_port, self.state,
                self.recv_q, self.send_q, self.inode, self.shared[:PID_START])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Socket)
        return self._compared() == other._compared()

    __hash__ = None  # type: ignore[assignment]  # changes in place (owners, ages): not a dict key

    def __repr__(self) -> str:
        return f"Socket({', '.join(f'{name}={value!r}' for name, value in self.as_dict().items())})"

    def as_dict(self) -> dict[str, Any]:
        """Socket()'s arguments by name, in its order (what dataclasses.asdict gave)."""
        return {name: getattr(self, name) for name in SOCKET_FIELDS}

    def replaced(self, **changes: Any) -> Socket:
        """A new socket with these of Socket()'s arguments changed (dataclasses.replace, for a Socket)."""
        return Socket(**{**self.as_dict(), **changes})

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.proto, self.local_ip, self.local_port, self.remote_ip, self.remote_port, self.state,
                self.recv_q, self.send_q, self.inode, self.shared)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        Socket.__init__(self, *state[:-1], shared=state[-1])

    @property
    def family(self) -> int:
        return 6 if self.proto.endswith("6") else 4

    @property
    def is_tcp(self) -> bool:
        return self.proto.startswith("tcp")

    @property
    def is_listening(self) -> bool:
        """What `netstat -l` lists: TCP LISTEN sockets and unconnected UDP sockets."""
        # is_tcp spelled out: sorting 100,000 rows asks this of each, and a property call costs what the test does
        return self.state == "LISTEN" or (self.state == "UNCONN" and not self.proto.startswith("tcp"))

    def same_content(self, other: Socket) -> bool:
        """Whether what the table shows, apart from age, is unchanged."""
        if not (self.state == other.state and self.recv_q == other.recv_q and self.send_q == other.send_q):
            return False
        mine, theirs = self.shared, other.shared
        return mine is theirs or (
            mine[PID] == theirs[PID] and mine[PID_START] == theirs[PID_START] and mine[PROGRAM] == theirs[PROGRAM]
            and mine[USER] == theirs[USER]
        )

    def with_shared(self, shared: SharedFields, proto: str = "") -> Socket:
        """A new socket with these shared fields (and under another protocol name, given one: raw sockets are
        read as udp and named raw, raw6), for a socket that others may hold unchanged."""
        return Socket(proto or self.proto, self.local_ip, self.local_port, self.remote_ip, self.remote_port,
                      self.state, self.recv_q, self.send_q, self.inode, shared=shared)


# Socket()'s arguments, in order.
SOCKET_FIELDS = ("proto", "local_ip", "local_port", "remote_ip", "remote_port", "state", "recv_q", "send_q",
                "inode", "uid", "user", "pid", "program", "first_seen", "seen_since_start", "container",
                "pid_start", "backlog")

# A socket's owner as the collector attaches it: pid, program, container, the process's start time.
Owner = tuple[int | None, str, str, float]


def shared_with_owner(shared: SharedFields, owner: Owner, made: dict[SharedFields, SharedFields]) -> SharedFields:
    """`shared` with `owner`'s fields, one object for equal results through `made` (the caller's, for a batch)."""
    # literal indexes (UID, USER, FIRST_SEEN, SEEN_SINCE_START, BACKLOG): the type checker knows each one's type
    wanted = (shared[0], shared[1], owner[0], owner[1], shared[4], shared[5], owner[2], owner[3], shared[8])
    return made.setdefault(wanted, wanted)


def mark_seen_since_start(sockets: Iterable[Socket]) -> None:
    """Say of each socket that it was there when netscope started (a first read's). Their shared tuples are few, so
    each is remade once, found by identity: hashing each socket's tuple instead cost 60 ms at 100,000 sockets."""
    # id -> (the tuple, kept alive so that no id is reused meanwhile; the tuple marked)
    made: dict[int, tuple[SharedFields, SharedFields]] = {}
    for sock in sockets:
        shared = sock.shared
        pair = made.get(id(shared))
        if pair is None:
            pair = made[id(shared)] = (shared, (*shared[:5], True, *shared[6:]))
        sock.shared = pair[1]


def shared_with_age(shared: SharedFields, first_seen: float, seen_since_start: bool,
                    made: dict[SharedFields, SharedFields]) -> SharedFields:
    """`shared` with these first-seen fields, one object for equal results through `made`."""
    if shared[FIRST_SEEN] == first_seen and shared[SEEN_SINCE_START] == seen_since_start:
        return shared
    wanted = (*shared[:FIRST_SEEN], first_seen, seen_since_start, *shared[CONTAINER:])
    return made.setdefault(wanted, wanted)  # type: ignore[arg-type]


class LiveTimer(NamedTuple):
    """A TCP socket's running timer, for the live table's Timer column: which one (collectors/timers.TIMER_KINDS:
    1 retransmission, 2 keepalive, 3 timewait, 4 zero-window probe), when it fires (time.time() seconds to a
    tenth: a deadline, not a countdown, so an idle connection's timer is the same object's equal from one refresh
    to the next and crosses the pipe once), and the retransmits or probes it has counted."""

    kind: int
    deadline: float
    retransmits: int


@dataclass(slots=True)
class Snapshot:
    """Every socket of the machine at one instant. Its `sockets` dict is never changed once it is made: a refresh
    that changes any socket makes a new one, so that whoever holds a snapshot can share the dict rather than copy
    it (the connection table does). The one exception is asked for by name: a ConnectionCollector made with
    `update_in_place` (the worker's, which holds no snapshot once its diff is sent)."""

    taken_at: float
    sockets: dict[SocketKey, Socket]
    # True when some sockets' owners could not be read (not root): their PID/Program shows as "-".
    owners_incomplete: bool = False
    # Problems worth telling the user once (a missing /proc file, no IPv6 ...), in plain words.
    warnings: list[str] = field(default_factory=list)
    collect_seconds: float = 0.0
    # TCP internals per connection, when asked for and read over netlink (else empty; never for UDP, LISTEN,
    # TIME_WAIT or SYN_RECV). Apart from `sockets` on purpose: they move on every busy connection every refresh,
    # and `Socket.same_content` (what flashes a row as changed) must not see them.
    tcp_info: dict[SocketKey, TcpInfo] = field(default_factory=dict)
    # Running TCP timers (none: off), read with tcp_info from the same dump: TIME_WAIT sockets have one too.
    timers: dict[SocketKey, LiveTimer] = field(default_factory=dict)


class ChangeKind(Enum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(slots=True)
class SnapshotDiff:
    """What changed between two snapshots: widgets apply this rather than rebuilding the world."""

    snapshot: Snapshot
    added: list[Socket]
    changed: list[Socket]  # the new versions
    removed: list[Socket]  # the last versions seen
    first: bool = False  # the first snapshot: everything is "added" but nothing should flash
    changed_before: list[Socket] = field(default_factory=list)  # the old versions of `changed`, in its order

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


# The rows a first screen holds: more than a terminal shows.
FIRST_SCREEN_ROWS = 200


def first_screen_rows(filter_text: str) -> int:
    """The rows of a first screen to ask a worker for: none under a filter (they are the unfiltered top)."""
    return 0 if filter_text else FIRST_SCREEN_ROWS


@dataclass(frozen=True, slots=True)
class FirstScreen:
    """What a collector worker can send ahead of its first, full refresh: the top of the table in the default
    order (row_order.first_rows) and every socket's count by counter bucket (Socket.counter_name). At 500,000
    sockets the full refresh takes seconds to cross the pipe and be sorted; meanwhile the screen shows its top and
    its totals. Nothing else (alerts, Top, a recording) takes it: it is not a refresh."""

    taken_at: float
    rows: list[Socket]
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(slots=True)
class ProcessDetails:
    """What the details view shows about the process that owns a socket."""

    pid: int
    name: str
    user: str
    cmdline: list[str]
    exe: str
    cwd: str  # "" if unreadable
    start_time: float  # time.time() seconds; identifies this process across PID reuse
    status: str
    parent_pid: int
    error: str = ""  # set when the process vanished or could not be read
    container: str = ""  # its container or service (collectors/containers.py); "" on the host
    cgroup: str = ""  # the cgroup path that names it
