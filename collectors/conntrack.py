"""The kernel's connection tracking table (`netstat -M`, `conntrack -L`): every tracked flow with its original and
reply tuples, so a NATed connection shows both its inside and its outside addresses.

Read with ctnetlink (NETLINK_NETFILTER, IPCTNL_MSG_CT_GET dump), parsed by hand like the other netlink readers.
Conntrack is per network namespace; where it is not loaded there is no table, and the error says how to load it.
Values in ctnetlink attributes are big-endian (network order), nested as the kernel's enums below say.
"""

from __future__ import annotations

import dataclasses
import errno
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from netscope.collectors import netlink
from netscope.collectors.model import Socket

NETLINK_NETFILTER = 12
IPCTNL_MSG_CT_GET = (1 << 8) | 1  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
IPCTNL_MSG_CT_NEW = (1 << 8) | 0
NFGENMSG = struct.Struct("=BBH")  # family, version, res_id
# enum ctattr_type
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_TIMEOUT, CTA_MARK = 1, 2, 3, 4, 7, 8
CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_USE, CTA_ID, CTA_ZONE = 9, 10, 11, 12, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE = 4, 5, 6
CTA_PROTO_ICMPV6_ID, CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE = 7, 8, 9
# ICMP's type, code and id (and ICMPv6's) to their places in Tuple.icmp
_ICMP_PLACES = {CTA_PROTO_ICMP_TYPE: 0, CTA_PROTO_ICMP_CODE: 1, CTA_PROTO_ICMP_ID: 2, CTA_PROTO_ICMPV6_TYPE: 0,
                CTA_PROTO_ICMPV6_CODE: 1, CTA_PROTO_ICMPV6_ID: 2}
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES = 1, 2
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
TCP_CONNTRACK_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
                        "TIME_WAIT", "CLOSE", "SYN_SENT2")  # fmt: skip
IPS_SEEN_REPLY, IPS_ASSURED, IPS_SRC_NAT, IPS_DST_NAT = 1 << 1, 1 << 2, 1 << 4, 1 << 5
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "icmpv6", 132: "sctp", 136: "udplite", 47: "gre"}

# How tracking is turned on; with nf_conntrack loaded, a namespace's table stays empty until something asks.
TURN_ON = "any firewall rule that tracks state (nft `ct state`, iptables `-m conntrack`) or NAT turns it on"
NOT_LOADED = (
    "the kernel's connection tracking is not in use in this network namespace (no nf_conntrack, or nothing has "
    f"asked for it): `modprobe nf_conntrack` loads it, and {TURN_ON}"
)
NO_FLOWS_HINT = f"connection tracking may not be in use in this network namespace: {TURN_ON}"


@dataclass(slots=True)
class Tuple:
    src: str = ""
    dst: str = ""
    sport: int | None = None  # TCP/UDP/SCTP/DCCP ports; None for ICMP
    dport: int | None = None
    icmp: tuple[int, int, int] | None = None  # type, code, id
    packets: int | None = None  # with nf_conntrack_acct on
    bytes: int | None = None


@dataclass(slots=True)
class Flow:
    family: int  # 4 or 6
    protocol: int
    original: Tuple = field(default_factory=Tuple)
    reply: Tuple = field(default_factory=Tuple)
    state: str = ""  # TCP's conntrack state; "" for the others
    timeout: int = 0  # seconds left
    status: int = 0  # IPS_* bits
    mark: int = 0
    zone: int = 0
    use: int = 0
    id: int = 0
    # Where this host is an end of the flow (link_local_sockets): the socket that opened it, and the one that
    # answered it, each with its owner.
    client: Socket | None = None
    server: Socket | None = None

    @property
    def protocol_name(self) -> str:
        return PROTO_NAMES.get(self.protocol, str(self.protocol))

    @property
    def nat(self) -> str:
        """snat, dnat, both or "": whether the reply comes back to other addresses than the original left from."""
        return {IPS_SRC_NAT: "snat", IPS_DST_NAT: "dnat", IPS_SRC_NAT | IPS_DST_NAT: "snat+dnat"}.get(
            self.status & (IPS_SRC_NAT | IPS_DST_NAT), "")


def _plain(ip: str) -> str:
    return ip.removeprefix("::ffff:") if ip.startswith("::ffff:") and "." in ip else ip


def link_local_sockets(flows: list[Flow], sockets: Iterable[Socket]) -> None:
    """Set each TCP/UDP flow's `client` (the local socket whose connection the original tuple is) and `server`
    (the local socket the reply tuple comes from, after any DNAT). A dual-stack socket's IPv4-mapped address
    matches the IPv4 flow."""
    by_tuple: dict[tuple[str, str, int, str, int], Socket] = {}
    for sock in sockets:
        kind = "tcp" if sock.is_tcp else "udp"
        by_tuple[(kind, _plain(sock.local_ip), sock.local_port, _plain(sock.remote_ip), sock.remote_port)] = sock
    for flow in flows:
        proto = {6: "tcp", 17: "udp"}.get(flow.protocol)
        if proto is None:
            continue
        o, r = flow.original, flow.reply
        flow.client = by_tuple.get((proto, o.src, o.sport or 0, o.dst, o.dport or 0))
        flow.server = by_tuple.get((proto, r.src, r.sport or 0, r.dst, r.dport or 0))


class ConntrackUnavailable(OSError):
    """No table to read: say why, and how to get one."""


def conntrack_problem(error: OSError, command: str = "netscope -M") -> str:
    """Why read_conntrack() failed, in words that say what to do (`command`: what the user runs)."""
    if isinstance(error, ConntrackUnavailable):
        return f"no connection tracking table: {error.strerror or error}"
    if error.errno in (errno.EPERM, errno.EACCES):
        return f"reading the connection tracking table needs CAP_NET_ADMIN: run {command} as root (sudo {command})"
    return f"cannot read the connection tracking table: {error}"


def read_conntrack() -> list[Flow]:
    """Every tracked flow (IPv4 and IPv6) of this network namespace. Raises ConntrackUnavailable when there is
    no table, with words that say why."""
    try:
        nl = netlink.NetlinkSocket(NETLINK_NETFILTER)
    except OSError as error:
        why = f"cannot open a NETLINK_NETFILTER socket ({error.strerror}): {NOT_LOADED}"
        raise ConntrackUnavailable(error.errno or errno.EPROTONOSUPPORT, why) from None
    flows: list[Flow] = []
    try:
        with nl:
            for message in nl.dump(IPCTNL_MSG_CT_GET, NFGENMSG.pack(socket.AF_UNSPEC, 0, 0), "conntrack dump"):
                if message.type == IPCTNL_MSG_CT_NEW and message.end - message.start >= NFGENMSG.size:
                    flows.append(_flow(message.data, message.start, message.end))
    except netlink.NetlinkError as error:
        if error.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.EPROTONOSUPPORT):
            raise ConntrackUnavailable(error.errno, f"{error}: {NOT_LOADED}") from None
        raise
    return flows


# Values in ctnetlink attributes are big-endian; attribute headers are the host's. The walk below is written out
# by hand, without netlink.iter_attrs' generator or a slice per value: that took the read from 24 to ~10 µs a flow
# (measured at 10,000 flows), which is what lets the NAT view refresh a busy table often.
_ATTR = netlink.ATTR.unpack_from
_TYPE_MASK = netlink.NLA_TYPE_MASK
_BE8, _BE16, _BE32, _BE64 = (struct.Struct(code).unpack_from for code in (">B", ">H", ">I", ">Q"))
_ADDRESSES: dict[bytes, str] = {}  # raw address -> text: few distinct addresses, many flows
_ADDRESSES_MAX = 1 << 16


def _address(raw: bytes) -> str:
    text = _ADDRESSES.get(raw)
    if text is None:
        text = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
        if len(_ADDRESSES) >= _ADDRESSES_MAX:
            _ADDRESSES.clear()
        _ADDRESSES[raw] = text
    return text


def _flow(data: bytes, start: int, end: int) -> Flow:
    family = data[start]  # struct nfgenmsg: family, version, res_id
    flow = Flow(6 if family == socket.AF_INET6 else 4, 0)
    at = start + NFGENMSG.size
    while at + 4 <= end:
        length, kind = _ATTR(data, at)
        if length < 4 or at + length > end:
            break  # malformed: what came before is good, nothing after it is (as nla_ok())
        kind &= _TYPE_MASK
        value, stop = at + 4, at + length
        size = length - 4
        if kind == CTA_TUPLE_ORIG:
            flow.protocol = _tuple(data, value, stop, flow.original)
        elif kind == CTA_TUPLE_REPLY:
            _tuple(data, value, stop, flow.reply)
        elif kind == CTA_COUNTERS_ORIG:
            _counters(data, value, stop, flow.original)
        elif kind == CTA_COUNTERS_REPLY:
            _counters(data, value, stop, flow.reply)
        elif kind == CTA_PROTOINFO:
            _protoinfo(data, value, stop, flow)
        elif size == 4 and kind in (CTA_STATUS, CTA_TIMEOUT, CTA_MARK, CTA_USE, CTA_ID):
            number = _BE32(data, value)[0]
            if kind == CTA_STATUS:
                flow.status = number
            elif kind == CTA_TIMEOUT:
                flow.timeout = number
            elif kind == CTA_MARK:
                flow.mark = number
            elif kind == CTA_USE:
                flow.use = number
            else:
                flow.id = number
        elif kind == CTA_ZONE and size == 2:
            flow.zone = _BE16(data, value)[0]
        at += (length + 3) & ~3
    return flow


def _protoinfo(data: bytes, start: int, end: int, flow: Flow) -> None:
    """CTA_PROTOINFO > CTA_PROTOINFO_TCP > CTA_PROTOINFO_TCP_STATE: TCP's conntrack state."""
    while start + 4 <= end:
        length, kind = _ATTR(data, start)
        if length < 4 or start + length > end:
            return
        if kind & _TYPE_MASK == CTA_PROTOINFO_TCP:
            at, stop = start + 4, start + length
            while at + 4 <= stop:
                leaf_length, leaf = _ATTR(data, at)
                if leaf_length < 4 or at + leaf_length > stop:
                    break
                if leaf & _TYPE_MASK == CTA_PROTOINFO_TCP_STATE and leaf_length > 4:
                    number = data[at + 4]
                    flow.state = (TCP_CONNTRACK_STATES[number] if number < len(TCP_CONNTRACK_STATES)
                                  else str(number))  # fmt: skip
                at += (leaf_length + 3) & ~3
        start += (length + 3) & ~3


def _tuple(data: bytes, start: int, end: int, into: Tuple) -> int:
    """Fill `into` from a CTA_TUPLE_* nest; the IP protocol number."""
    protocol = 0
    icmp = [0, 0, 0]
    seen_icmp = False
    while start + 4 <= end:
        length, kind = _ATTR(data, start)
        if length < 4 or start + length > end:
            break
        kind &= _TYPE_MASK
        at, stop = start + 4, start + length
        while at + 4 <= stop:  # the nest's leaves
            leaf_length, leaf = _ATTR(data, at)
            if leaf_length < 4 or at + leaf_length > stop:
                break
            leaf &= _TYPE_MASK
            size = leaf_length - 4
            value = at + 4
            if kind == CTA_TUPLE_IP:
                if (size == 4 and leaf in (CTA_IP_V4_SRC, CTA_IP_V4_DST)) or (
                        size == 16 and leaf in (CTA_IP_V6_SRC, CTA_IP_V6_DST)):
                    text = _address(bytes(data[value : value + size]))
                    if leaf in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                        into.src = text
                    else:
                        into.dst = text
            elif kind == CTA_TUPLE_PROTO and size > 0:
                number = (_BE8 if size == 1 else _BE16 if size == 2 else _BE32 if size == 4 else _BE64)(
                    data, value)[0] if size in (1, 2, 4, 8) else int.from_bytes(data[value : value + size], "big")
                if leaf == CTA_PROTO_NUM:
                    protocol = number
                elif leaf == CTA_PROTO_SRC_PORT:
                    into.sport = number
                elif leaf == CTA_PROTO_DST_PORT:
                    into.dport = number
                elif leaf in _ICMP_PLACES:
                    icmp[_ICMP_PLACES[leaf]] = number
                    seen_icmp = True
            at += (leaf_length + 3) & ~3
        start += (length + 3) & ~3
    if seen_icmp:
        into.icmp = (icmp[0], icmp[1], icmp[2])
    return protocol


def _counters(data: bytes, start: int, end: int, into: Tuple) -> None:
    while start + 4 <= end:
        length, kind = _ATTR(data, start)
        if length < 4 or start + length > end:
            return
        kind &= _TYPE_MASK
        size = length - 4
        if kind in (CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES) and size in (4, 8):
            number = (_BE64 if size == 8 else _BE32)(data, start + 4)[0]
            if kind == CTA_COUNTERS_PACKETS:
                into.packets = number
            else:
                into.bytes = number
        start += (length + 3) & ~3


STATUS_BITS = ("EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST",
               "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE", "UNTRACKED", "HELPER",
               "OFFLOAD", "HW_OFFLOAD")  # fmt: skip


def flow_record(flow: Flow) -> dict[str, object]:
    """A flow as data: both tuples in full, the status bits by name."""
    return {
        "family": flow.family, "proto": flow.protocol_name, "protocol": flow.protocol, "state": flow.state or None,
        "timeout": flow.timeout, "original": dataclasses.asdict(flow.original),
        "reply": dataclasses.asdict(flow.reply), "nat": flow.nat or None,
        "status": [name for bit, name in enumerate(STATUS_BITS) if flow.status >> bit & 1],
        "mark": flow.mark, "zone": flow.zone, "use": flow.use, "id": flow.id,
        "client": _owner(flow.client), "server": _owner(flow.server),
    }  # fmt: skip


def _owner(sock: Socket | None) -> dict[str, object] | None:
    """A local end of a flow as data: its socket's inode and its owner (pid and program null when unknown)."""
    if sock is None:
        return None
    return {"inode": sock.inode, "pid": sock.pid, "program": sock.program if sock.pid is not None else None}


def flow_line(flow: Flow) -> str:
    """One flow as `conntrack -L` prints it: `tcp      6 431999 ESTABLISHED src=… dst=… sport=… dport=… src=…
    [ASSURED] mark=0 use=1`."""
    parts = [f"{flow.protocol_name:<8} {flow.protocol} {flow.timeout}"]
    if flow.state:
        parts.append(flow.state)
    parts.append(_tuple_text(flow.original))
    if not flow.status & IPS_SEEN_REPLY:
        parts.append("[UNREPLIED]")
    parts.append(_tuple_text(flow.reply))
    if flow.status & IPS_ASSURED:
        parts.append("[ASSURED]")
    parts.append(f"mark={flow.mark}")
    if flow.zone:
        parts.append(f"zone={flow.zone}")
    parts.append(f"use={flow.use}")
    return " ".join(parts)


def _tuple_text(t: Tuple) -> str:
    text = f"src={t.src} dst={t.dst}"
    if t.sport is not None or t.dport is not None:
        text += f" sport={t.sport or 0} dport={t.dport or 0}"
    elif t.icmp is not None:
        text += f" type={t.icmp[0]} code={t.icmp[1]} id={t.icmp[2]}"
    if t.packets is not None:
        text += f" packets={t.packets} bytes={t.bytes or 0}"
    return text
