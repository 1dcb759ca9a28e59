"""Letting the kernel filter a dump: what a filter asks of each sock_diag dump, as a state mask and a bytecode.

sock_diag takes, with each dump request, a mask of TCP states and an optional filter program
(INET_DIAG_REQ_BYTECODE, the one `ss state established '( sport = :80 )'` sends). The kernel then skips every
socket that fails them before making a message of it: at 500,000 sockets, asking for one port's connections is a
few thousand messages rather than half a million, and a dump whose protocol or states the filter rules out is not
asked for at all.

This module knows nothing of the filter language. collectors/session/filters.py describes each term it parses as
one of the conditions below (or as `OPAQUE` when only the owner can tell: a process, a user, a container), and
`kernel_query()` turns the terms into one request per dump. Where every term could be said to the kernel the query
is `exact`: the kernel returns exactly the sockets the filter matches (tests/test_sockdiag_query.py holds it to
that on a real load). Otherwise it returns a superset. Callers apply the filter to what comes back either way.

The program format and its rules are the kernel's (net/ipv4/inet_diag.c, inet_diag_bc_run and _audit): a list of
4-byte ops `{code, yes, no}`; each op's test moves on by `yes` bytes when it holds and by `no` bytes when it fails.
A socket is accepted when the program ends exactly at its end, rejected when it jumps 4 bytes past it. Programs are
combined as iproute2's ss combines them (misc/ss.c, ssfilter_bytecompile): so that a part's "reject" is always a
jump to 4 bytes past its own end, which `_and` moves to past the end of the whole.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import NamedTuple

from netscope.collectors.sockdiag import (
    ALL_STATES,
    DUMP_PROTOS,
    EVERY_DUMP,
    TCP_LISTEN,
    TCP_STATE_NAMES,
    UDP_STATE_NAMES,
    DumpRequest,
)

# Op codes (enum in linux/inet_diag.h).
_BC_JMP = 1
_BC_S_GE, _BC_S_LE, _BC_D_GE, _BC_D_LE = 2, 3, 4, 5
_BC_S_COND, _BC_D_COND = 7, 8

_OP = struct.Struct("=BBH")  # struct inet_diag_bc_op: code, yes (u8), no (u16)
_HOSTCOND = struct.Struct("=BBxxi")  # struct inet_diag_hostcond: family, prefix_len, port (-1: any); the address
_ANY_PORT = -1
# `no` is a u16 and the attribute's length too: a longer program (thousands of separate ports) is not sent, and
# that term is left to the filter in Python.
_MAX_PROGRAM = 60_000


LOCAL, REMOTE, BOTH = "local", "remote", "both"
_UNCONNECTED = 7  # TCP_CLOSE: a UDP socket with no peer ("UNCONN")


# --- the conditions a filter term can be described as ----------------------------------------------------------


class Ports(NamedTuple):
    """The port at `end` (local, remote, or either) is in one of these inclusive ranges."""

    end: str
    ranges: tuple[tuple[int, int], ...]


class Networks(NamedTuple):
    """The address at `end` is in one of these networks: (IP version, network as an int, prefix length). An IPv4
    network also holds the IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), as in the filter language."""

    end: str
    networks: tuple[tuple[int, int, int], ...]


class Endpoint(NamedTuple):
    """At `end` (local, remote, or either: the same end for both), the address is in `network` (as in Networks)
    and the port in one of `ranges`."""

    end: str
    network: tuple[int, int, int]
    ranges: tuple[tuple[int, int], ...]


class States(NamedTuple):
    """The state, as netscope names it (UDP's 7 is UNCONN, a request socket is SYN_RECV), is one of these."""

    names: frozenset[str]


class Protos(NamedTuple):
    """The protocol (tcp, tcp6, udp, udp6, or a unix type, which no TCP/UDP dump holds) is one of these."""

    names: frozenset[str]


class Listening(NamedTuple):
    """What `netstat -l` lists: TCP LISTEN and unconnected UDP."""


class AnyOf(NamedTuple):
    conditions: tuple[Condition, ...]


class Not(NamedTuple):
    condition: Condition


class Opaque(NamedTuple):
    """Only the socket's owner can tell (a process, user or container): the kernel cannot filter on it."""


OPAQUE = Opaque()
Condition = Ports | Networks | Endpoint | States | Protos | Listening | AnyOf | Not | Opaque


# --- the query ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelQuery:
    """One request per dump still wanted, and whether the kernel's answer is exactly the filter's."""

    dumps: tuple[DumpRequest, ...]
    exact: bool

    @property
    def narrows(self) -> bool:
        """Whether this asks the kernel for less than every socket."""
        return self.dumps != EVERY_DUMP

    def describe(self) -> str:
        """For -v: what the kernel was asked for."""
        if not self.dumps:
            return "no TCP or UDP dump (the filter rules them all out)"
        parts = []
        for dump in self.dumps:
            name = DUMP_PROTOS[dump.family, dump.protocol]
            states = "every state" if dump.states == ALL_STATES else f"state mask {dump.states:#06x}"
            program = f", a {len(dump.bytecode)}-byte filter program" if dump.bytecode else ""
            parts.append(f"{name} ({states}{program})")
        return ", ".join(parts)


EVERYTHING = KernelQuery(EVERY_DUMP, exact=True)


def kernel_query(terms: tuple[Condition, ...]) -> KernelQuery:
    """The dumps to ask for a filter whose terms (all of which must hold) are these."""
    dumps: list[DumpRequest] = []
    exact = True
    for (family, protocol), proto in DUMP_PROTOS.items():
        states, program, wanted = ALL_STATES, b"", True
        for term in terms:
            part = _evaluate(term, family, proto)
            if part is False:
                wanted = False
                break
            if isinstance(part, _Mask):
                states &= part.states
            elif isinstance(part, _Code):
                joined = _and(program, part.program) if program else part.program
                if len(joined) <= _MAX_PROGRAM:
                    program = joined
                else:
                    exact = False
            elif part is None:
                exact = False
        if wanted and states:
            dumps.append(DumpRequest(family, protocol, states, program))
    return KernelQuery(tuple(dumps), exact)


# --- evaluating a condition for one dump ------------------------------------------------------------------------


class _Mask(NamedTuple):
    states: int  # never 0 (that is False) nor ALL_STATES (that is True)


class _Code(NamedTuple):
    program: bytes


# True / False: the condition holds for every / no socket of this dump; None: the kernel cannot tell.
_Part = bool | _Mask | _Code | None


def _evaluate(condition: Condition, family: int, proto: str) -> _Part:
    if isinstance(condition, Protos):
        return proto in condition.names
    if isinstance(condition, States):
        return _mask(_state_bits(proto, condition.names))
    if isinstance(condition, Listening):
        return _mask(1 << (TCP_LISTEN if proto.startswith("tcp") else _UNCONNECTED))
    if isinstance(condition, Ports):
        return _code(_ports_program(condition))
    if isinstance(condition, Networks):
        # An IPv6 network holds no address of an AF_INET socket (an IPv4 one may hold an AF_INET6 socket's
        # IPv4-mapped address, which the kernel's condition tests).
        networks = tuple(net for net in condition.networks if not (net[0] == 6 and family == socket.AF_INET))
        return _code(_networks_program(condition.end, networks)) if networks else False
    if isinstance(condition, Endpoint):
        if condition.network[0] == 6 and family == socket.AF_INET:
            return False
        return _code(_endpoint_program(condition))
    if isinstance(condition, Not):
        return _negate(_evaluate(condition.condition, family, proto))
    if isinstance(condition, AnyOf):
        return _any(tuple(_evaluate(c, family, proto) for c in condition.conditions))
    return None


def _mask(bits: int) -> _Part:
    if bits == 0:
        return False
    return True if bits == ALL_STATES else _Mask(bits)


def _code(program: bytes) -> _Part:
    return _Code(program) if len(program) <= _MAX_PROGRAM else None


# The states a UDP socket can be in: connected (ESTABLISHED) or not (CLOSE, which netscope calls UNCONN).
_UDP_STATES = (1 << 1) | (1 << _UNCONNECTED)


def _state_bits(proto: str, names: frozenset[str]) -> int:
    """The kernel states of this protocol that netscope shows under these names."""
    possible = _UDP_STATES if proto.startswith("udp") else ALL_STATES
    return sum(1 << number for number in range(1, 13)
               if 1 << number & possible and _state_name(proto, number) in names)


def _state_name(proto: str, number: int) -> str:
    if proto.startswith("tcp") and number == 12:
        return "SYN_RECV"  # a request socket (NEW_SYN_RECV) is reported in state SYN_RECV
    return (UDP_STATE_NAMES if proto.startswith("udp") else TCP_STATE_NAMES)[number]


def _negate(part: _Part) -> _Part:
    if part is None or isinstance(part, bool):
        return part if part is None else not part
    if isinstance(part, _Mask):
        return _mask(ALL_STATES & ~part.states)
    return _code(_not(part.program))


def _any(parts: tuple[_Part, ...]) -> _Part:
    if any(part is True for part in parts):
        return True
    left = [part for part in parts if part is not False]
    if not left:
        return False
    if all(isinstance(part, _Mask) for part in left):
        bits = 0
        for part in left:
            bits |= part.states  # type: ignore[union-attr]
        return _mask(bits)
    if all(isinstance(part, _Code) for part in left):
        program = left[0].program  # type: ignore[union-attr]
        for part in left[1:]:
            program = _or(program, part.program)  # type: ignore[union-attr]
        return _code(program)
    return None  # a state or else a port: one request cannot say it


# --- programs ----------------------------------------------------------------------------------------------------


def _ports_program(condition: Ports) -> bytes:
    ends = (LOCAL, REMOTE) if condition.end == BOTH else (condition.end,)
    tests = [_port_range(end, low, high) for end in ends for low, high in condition.ranges]
    program = tests[0]
    for test in tests[1:]:
        program = _or(program, test)
    return program


def _port_range(end: str, low: int, high: int) -> bytes:
    if low == high:  # a host condition with only a port: what ss sends for `sport = :80`, on any kernel
        return _hostcond(_BC_S_COND if end == LOCAL else _BC_D_COND, socket.AF_UNSPEC, 0, low, b"")
    above, below = (_BC_S_GE, _BC_S_LE) if end == LOCAL else (_BC_D_GE, _BC_D_LE)
    return _and(_port_compare(above, low), _port_compare(below, high))


def _port_compare(code: int, port: int) -> bytes:
    # The port rides in the `no` field of a second op, which the first op's `yes` of 8 steps over.
    return _OP.pack(code, 8, 12) + _OP.pack(0, 0, port)


def _networks_program(end: str, networks: tuple[tuple[int, int, int], ...]) -> bytes:
    ends = (LOCAL, REMOTE) if end == BOTH else (end,)
    tests = [
        _hostcond(_BC_S_COND if one_end == LOCAL else _BC_D_COND,
                  socket.AF_INET if version == 4 else socket.AF_INET6, prefix, _ANY_PORT,
                  network.to_bytes(4 if version == 4 else 16, "big"))
        for one_end in ends for version, network, prefix in networks
    ]  # fmt: skip
    program = tests[0]
    for test in tests[1:]:
        program = _or(program, test)
    return program


def _endpoint_program(condition: Endpoint) -> bytes:
    version, network, prefix = condition.network
    address = network.to_bytes(4 if version == 4 else 16, "big")
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    tests = []
    for end in (LOCAL, REMOTE) if condition.end == BOTH else (condition.end,):
        code = _BC_S_COND if end == LOCAL else _BC_D_COND
        if len(condition.ranges) == 1 and condition.ranges[0][0] == condition.ranges[0][1]:
            # One port: the host condition tests the address and the port in one op.
            tests.append(_hostcond(code, family, prefix, condition.ranges[0][0], address))
        else:
            tests.append(_and(_hostcond(code, family, prefix, _ANY_PORT, address),
                              _ports_program(Ports(end, condition.ranges))))
    program = tests[0]
    for test in tests[1:]:
        program = _or(program, test)
    return program


def _hostcond(code: int, family: int, prefix: int, port: int, address: bytes) -> bytes:
    size = _OP.size + _HOSTCOND.size + len(address)
    return _OP.pack(code, size, size + 4) + _HOSTCOND.pack(family, prefix, port) + address


def _and(first: bytes, second: bytes) -> bytes:
    """Both: the first's rejects now jump past the end of the second."""
    return _relocate_rejects(first, len(second)) + second


def _or(first: bytes, second: bytes) -> bytes:
    """Either: the first's rejects land on the second; its accepts on a jump over the second."""
    return first + _OP.pack(_BC_JMP, 4, len(second) + 4) + second


def _not(program: bytes) -> bytes:
    """Accepts become a jump past the end, rejects land on the end."""
    return program + _OP.pack(_BC_JMP, 4, 8)


def _relocate_rejects(program: bytes, by: int) -> bytes:
    code = bytearray(program)
    offset, left = 0, len(code)
    while left > 0:
        op_code, yes, no = _OP.unpack_from(code, offset)
        if no == left + 4:  # this op's reject: past the end of `program`
            _OP.pack_into(code, offset, op_code, yes, no + by)
        offset += yes
        left -= yes
    return bytes(code)
