"""Which sockets a printed output shows (netstat's -t -u -l -4 -6 and --filter), in netstat's order, and the
two ways a printed run can fail."""

from __future__ import annotations

import argparse
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from netscope.collectors.model import Socket
from netscope.collectors.row_order import endpoints_sort_bytes
from netscope.collectors.session.filters import Filter
from netscope.collectors.sockdiag_query import KernelQuery, Listening, Protos, kernel_query

_PROTO_ORDER = {"tcp": 0, "tcp6": 1, "udp": 2, "udp6": 3, "raw": 4, "raw6": 5}


class UsageError(Exception):
    """A command line that cannot be carried out: exit status 2, the message on stderr."""


class Failure(Exception):
    """Something went wrong that is not the user's typing: exit status 1, the message on stderr."""


@dataclass(frozen=True, slots=True)
class Selection:
    """netstat's selection flags and the filter: -t/-u/-w protocol, -4/-6 family, -l listening only."""

    tcp: bool = True
    udp: bool = True
    raw: bool = False
    ipv4: bool = True
    ipv6: bool = True
    listening_only: bool = False
    filter: Filter = field(default_factory=Filter)

    @classmethod
    def from_args(cls, args: argparse.Namespace, flt: Filter) -> Selection:
        # No protocol flag: TCP and UDP (raw sockets only with -w); neither of -4/-6: both, as in netstat.
        chosen = args.tcp or args.udp or args.raw
        tcp, udp = args.tcp or not chosen, args.udp or not chosen
        v4, v6 = args.ipv4 or not args.ipv6, args.ipv6 or not args.ipv4
        return cls(tcp, udp, args.raw, v4, v6, args.listening, flt)

    def matches(self, sock: Socket) -> bool:
        if not (self.tcp if sock.is_tcp else self.raw if sock.proto.startswith("raw") else self.udp):
            return False
        if not (self.ipv6 if sock.family == 6 else self.ipv4):
            return False
        if self.listening_only and not sock.is_listening:
            return False
        return self.filter.matches(sock)

    def kernel_query(self) -> KernelQuery:
        """The TCP/UDP dumps to ask the kernel for (sockdiag_query.py): the filter's and the flags' sockets, or a
        superset of them; `pick` still chooses among what comes back."""
        conditions = list(self.filter.conditions)
        if not (self.tcp and self.udp and self.ipv4 and self.ipv6):
            conditions.append(Protos(frozenset(
                proto for proto, wanted in (("tcp", self.tcp and self.ipv4), ("tcp6", self.tcp and self.ipv6),
                                            ("udp", self.udp and self.ipv4), ("udp6", self.udp and self.ipv6))
                if wanted
            )))  # fmt: skip
        if self.listening_only:
            conditions.append(Listening())
        return kernel_query(tuple(conditions))

    def pick(self, sockets: Iterable[Socket]) -> list[Socket]:
        if self.tcp and self.udp and self.ipv4 and self.ipv6 and not self.listening_only and self.filter.is_empty:
            # Everything but perhaps raw sockets (netstat's default): 100,000 calls of matches() cost 0.1 s.
            return [sock for sock in sockets if self.raw or not sock.proto.startswith("raw")]
        return [sock for sock in sockets if self.matches(sock)]


def sort_sockets(sockets: Iterable[Socket]) -> list[Socket]:
    """tcp, tcp6, udp, udp6; listeners first; then by local and remote address and port, as numbers; then inode.
    One bytes string per socket (see endpoints_sort_bytes): `--once` sorts every socket of the machine."""
    proto_order = _PROTO_ORDER.get
    return sorted(sockets, key=lambda sock: (
        bytes((proto_order(sock.proto, 9), not sock.is_listening))
        + endpoints_sort_bytes(sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port)
        + _INODE(sock.inode)
    ))  # fmt: skip


_INODE = struct.Struct(">I").pack
