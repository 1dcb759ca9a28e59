"""The NAT view's data, without drawing it: tracked flows filtered with the filter language and sorted.

The filter language speaks of sockets; a flow is seen as two of them, its original tuple (source as the local
end) and its reply tuple, so `ip:` finds a masqueraded connection by its inside or its outside address, `:8080`
by either side's port, `established` by conntrack's TCP state, and `proc:` by the local socket it links to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netscope.collectors.conntrack import Flow, Tuple
from netscope.collectors.model import Socket
from netscope.collectors.session.filters import Filter

# conntrack's TCP states in the words the filter language knows (its FIN_WAIT is the socket's FIN_WAIT1 ...).
_STATE_WORDS = {"FIN_WAIT": "FIN_WAIT1", "SYN_SENT2": "SYN_SENT", "NONE": "CLOSE", "": "UNCONN"}

# The NAT view's orders, `s` cycling through them: (label, key given the order of addresses).
AddressOrder = Callable[[str], Any]
SORTS: tuple[tuple[str, Callable[[Flow, AddressOrder], Any]], ...] = (
    ("original", lambda f, ip: (ip(f.original.src), ip(f.original.dst), f.original.dport or 0,
                                f.original.sport or 0)),
    ("timeout", lambda f, ip: f.timeout),
    ("bytes", lambda f, ip: -((f.original.bytes or 0) + (f.reply.bytes or 0))),
    ("state", lambda f, ip: (f.state, f.protocol)),
)


def _as_socket(flow: Flow, end: Tuple, owner: Socket | None) -> Socket:
    proto = {6: "tcp", 17: "udp"}.get(flow.protocol, flow.protocol_name)
    if flow.family == 6 and proto in ("tcp", "udp"):
        proto += "6"
    sock = Socket(proto, end.src, end.sport or 0, end.dst, end.dport or 0,
                  _STATE_WORDS.get(flow.state, flow.state), 0, 0, 0, -1)
    if owner is not None:
        sock.pid, sock.program, sock.user, sock.container = owner.pid, owner.program, owner.user, owner.container
    return sock


def flow_matches(flow: Flow, flow_filter: Filter) -> bool:
    """Whether the filter matches the flow's original tuple or its reply tuple (each with the local socket's owner
    where the flow has one)."""
    if flow_filter.is_empty:
        return True
    owner = flow.client or flow.server
    return flow_filter.matches(_as_socket(flow, flow.original, owner)) or flow_filter.matches(
        _as_socket(flow, flow.reply, owner))


@dataclass(slots=True)
class NatTable:
    """What the NAT view shows: the last read's flows, the filter and the order."""

    flows: list[Flow] = field(default_factory=list)
    filter: Filter = field(default_factory=Filter)
    sort_index: int = 0
    # How addresses order (the view gives collectors/row_order.ip_order: 10.0.0.9 before 10.0.0.10); else text
    address_order: AddressOrder = str

    @property
    def sort_label(self) -> str:
        return SORTS[self.sort_index][0]

    def cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)

    def shown(self) -> list[Flow]:
        matching = [flow for flow in self.flows if flow_matches(flow, self.filter)]
        key, order = SORTS[self.sort_index][1], self.address_order
        return sorted(matching, key=lambda flow: key(flow, order))
