"""Raw sockets (`netstat -w`, `ss -w`): raw and raw6, the IP protocol each was opened for, its owner (ping, DHCP
clients, routing daemons, packet capture over IP).

Netlink first (sock_diag's raw module, `raw_diag`, Linux 4.14+: the kernel loads it on demand where modules
load), else /proc/net/raw{,6}, which has the same columns as /proc/net/udp. As in netstat and ss, the protocol
number stands where a port would: `0.0.0.0:1` is a raw ICMP socket; the protocol's name comes from
/etc/protocols. A raw socket is UNCONN unless connect()ed (ESTABLISHED).
"""

from __future__ import annotations

import functools
import socket

from netscope.collectors import netlink
from netscope.collectors.model import Socket
from netscope.collectors.procnet import parse_proc_net
from netscope.collectors.sockdiag import (
    ALL_STATES,
    INET_DIAG_MSG,
    SOCK_DIAG_BY_FAMILY,
    build_request,
    parse_inet_diag_msg,
)

_STATES = {1: "ESTABLISHED", 7: "UNCONN"}
PROTOCOLS_FILE = "/etc/protocols"
_FAMILIES = ((socket.AF_INET, "raw", 4), (socket.AF_INET6, "raw6", 16))


@functools.cache
def protocol_names(path: str = PROTOCOLS_FILE) -> dict[int, str]:
    """IP protocol number -> name, from /etc/protocols (empty where it is missing; the number is shown then)."""
    names: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and fields[1].isdigit() and int(fields[1]) not in names:
                    names[int(fields[1])] = fields[0][:32]
    except OSError:
        pass
    return names


def protocol_name(number: int) -> str:
    return protocol_names().get(number, str(number))


def read_raw_sockets() -> tuple[list[Socket], str]:
    """Every raw socket of this network namespace, without owners, and where they were read from."""
    try:
        return _read_netlink(), "netlink"
    except OSError:  # raw_diag missing (no module) or netlink forbidden
        return read_proc_raw(), "/proc/net/raw"


def _read_netlink() -> list[Socket]:
    out: list[Socket] = []
    with netlink.NetlinkSocket(netlink.NETLINK_SOCK_DIAG) as sock:
        for family, proto, size in _FAMILIES:
            request = build_request(family, socket.IPPROTO_RAW, ALL_STATES)
            for message in sock.dump(SOCK_DIAG_BY_FAMILY, request, f"dump of {proto} sockets"):
                if message.type != SOCK_DIAG_BY_FAMILY or message.end - message.start < INET_DIAG_MSG.size:
                    continue
                msg = parse_inet_diag_msg(message.data, message.start)
                out.append(Socket(
                    proto, socket.inet_ntop(family, msg.src[:size]), msg.sport,
                    socket.inet_ntop(family, msg.dst[:size]), msg.dport,
                    _STATES.get(msg.state, f"UNKNOWN({msg.state})"), msg.rqueue, msg.wqueue, msg.inode, msg.uid,
                ))  # fmt: skip
    return out


def read_proc_raw(proc_root: str = "/proc") -> list[Socket]:
    out: list[Socket] = []
    for proto, name in (("udp", "raw"), ("udp6", "raw6")):  # the same columns as UDP's
        try:
            with open(f"{proc_root.rstrip('/')}/net/{name}", encoding="ascii", errors="replace") as file:
                text = file.read()
        except OSError:
            continue
        out.extend(sock.with_shared(sock.shared, name) for sock in parse_proc_net(text, proto))
    return out
