"""Plain typed data shared by the collectors and the widgets that show it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from netscope.collectors import speedups
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


if TYPE_CHECKING:
    _Value = TypeVar("_Value")

    class _Read(Generic[_Value]):
        def __get__(self, obj: object, owner: type | None = None) -> _Value: ...

    class _ReadWrite(_Read[_Value]):
        def __set__(self, obj: object, value: _Value) -> None: ...


class Socket:
    """One row of `netstat -antup`, with what the kernel and /proc say about its owner.

    A plain class rather than a dataclass: the fields most sockets share with others live in one shared tuple
    (`shared`, see SharedFields), read and set through attributes of their own names, and the endpoint fields are
    read from `key`, which holds them: each kept once (40 bytes a socket in each process). With counter_name
    worked out on each read, a Socket is 80 bytes, not 128.
    The compiled reader fills the slots in place by their names (collectors/_speedups.c): change them together."""

    __slots__ = (
        "inode",
        "key",
        "recv_q",
        "send_q",
        "shared",
        "state",
    )

    state: str  # netstat's name: ESTABLISHED, LISTEN ...; UNCONN for an unconnected UDP socket
    recv_q: int
    send_q: int
    inode: int
    # Computed once: the identity is looked up several times per socket per refresh (model.SocketKey).
    key: SocketKey
    shared: SharedFields

    if TYPE_CHECKING:  # what the descriptors set after the class give (_tuple_field, counter_name_of)
        # Read from `key`: never reassign them, or the inode; make a new socket.
        proto = _Read[str]()  # tcp, tcp6, udp, udp6 (u_str, u_dgr, u_seq: a unix socket; raw, raw6)
        local_ip = _Read[str]()
        local_port = _Read[int]()
        remote_ip = _Read[str]()
        remote_port = _Read[int]()  # 0: no peer
        # The counter bar bucket it falls in (a TCP state, "UDP", a unix socket's state): worked out from the
        # protocol and the state on each read, not kept in a slot.
        counter_name = _Read[str]()
        # Read from `shared`, and set as a new tuple.
        uid = _ReadWrite[int]()  # the owning user's id, as the kernel says
        user = _ReadWrite[str]()  # its name; '' for a socket with no inode (the kernel's, not any user's)
        pid = _ReadWrite[int | None]()  # None: unknown (another user's process without root; no owner: TIME_WAIT)
        program = _ReadWrite[str]()  # the owner's name
        first_seen = _ReadWrite[float]()  # wall clock (time.time()) when netscope first saw it
        seen_since_start = _ReadWrite[bool]()  # it was there when netscope started: the age is a lower bound
        container = _ReadWrite[str]()  # the owner's container or service, from its cgroup; '' the host
        # With `pid` and `inode` it is the identity a kill checks, so a PID recycled since the row was read is
        # never signalled. 0.0: no owner, or not known (a recording does not hold it: nothing is signalled from a
        # replay), which is why == leaves it out.
        pid_start = _ReadWrite[float]()  # the owner's start time (time.time() seconds) when seen with it
        # A TCP listener's backlog limit (listen()'s, capped by net.core.somaxconn); 0: not known. `ss` shows it as
        # a listener's Send-Q; netstat shows 0 there, and so does `send_q`. Left out of ==: the /proc reader cannot
        # know it, and both readers must give equal sockets.
        backlog = _ReadWrite[int]()

    def __init__(
        self, proto: str, local_ip: str, local_port: int, remote_ip: str, remote_port: int, state: str,
        recv_q: int, send_q: int, inode: int, uid: int = 0, user: str = "", pid: int | None = None,
        program: str = "", first_seen: float = 0.0, seen_since_start: bool = False, container: str = "",
        pid_start: float = 0.0, backlog: int = 0, *, shared: SharedFields | None = None,
    ) -> None:
        """The arguments after `inode` are the shared fields; or pass them as `shared`, a tuple to share."""
        self.state = state
        self.recv_q = recv_q
        self.send_q = send_q
        self.inode = inode
        self.shared = shared if shared is not None else (
            uid, user, pid, program, first_seen, seen_since_start, container, pid_start, backlog
        )
        self.key = (proto, local_ip, local_port, remote_ip, remote_port, inode if remote_port == 0 else 0)

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


def _tuple_field(cls: type, slot: str, index: int, writable: bool) -> Any:
    """Item `index` of the tuple in `cls`'s slot `slot` as an attribute: set (where `writable`) as a new tuple, the
    old one being shared with other sockets. Compiled where it can be (_speedups.TupleField): a property's every
    read is a Python call, and sorting and counting 500,000 sockets reads these millions of times."""
    if speedups.TupleField is not None:
        return speedups.TupleField(cls, slot, index, writable)
    if slot not in ("key", "shared"):
        raise ValueError(f"not a tuple slot of a Socket: {slot!r}")
    if slot == "key":  # the holder's name spelled out: a getattr() per read would cost half as much again

        def get(obj: Any) -> Any:
            return obj.key[index]
    else:

        def get(obj: Any) -> Any:
            return obj.shared[index]

    def put(obj: Any, value: Any) -> None:
        held = getattr(obj, slot)
        setattr(obj, slot, (*held[:index], value, *held[index + 1 :]))

    return property(get, put if writable else None)


def counter_name_of(sock: Socket) -> str:
    """The counter bar's bucket of a socket: a TCP socket's state (a connection not yet accepted is SYN_RECV), a
    unix socket's state, else UDP (udp, raw)."""
    proto, state = sock.key[0], sock.state
    if proto.startswith("tcp"):
        return "SYN_RECV" if state == "NEW_SYN_RECV" else state
    return state if is_unix(proto) else "UDP"


# 16 bytes a socket in each process less than a slot of its own (a Socket's size class 96 -> 80 bytes).
Socket.counter_name = (
    speedups.CounterName(Socket) if speedups.CounterName is not None else property(counter_name_of)  # type: ignore[assignment]
)

# Each endpoint field is kept once, in the key (40 bytes a socket in each process), and each field most sockets
# share with others once, in `shared`.
for _index, _name in enumerate(("proto", "local_ip", "local_port", "remote_ip", "remote_port")):
    setattr(Socket, _name, _tuple_field(Socket, "key", _index, writable=False))
for _index, _name in enumerate(("uid", "user", "pid", "program", "first_seen", "seen_since_start", "container",
                                "pid_start", "backlog")):
    setattr(Socket, _name, _tuple_field(Socket, "shared", _index, writable=True))

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
