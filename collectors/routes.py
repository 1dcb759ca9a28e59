"""Routing tables (`netstat -r`, `netstat -rn -A inet6`, `ip route show table all`).

Long, and one thing: the rtnetlink parser, the /proc fallback and the Route they both make must agree field by
field (tests/test_routes.py holds them to it).

Where the routes come from, and why:

* First choice, a hand-written rtnetlink dump (RTM_GETROUTE + NLM_F_DUMP, AF_INET then AF_INET6, every table;
  see `netscope.collectors.netlink`). It is the only source with what /proc/net/route lacks: every table (not just
  main, and ids above 255 through RTA_TABLE), protocol (kernel, boot, static, dhcp, ra, bird, bgp ...), scope,
  route type (local, broadcast, unreachable, blackhole ...), preferred source, every nexthop of a multipath route,
  and IPv6 metrics and tables. It is also fast: the kernel streams the table in ~32 KiB reads and we unpack only
  the attributes we show, which matters on a BGP router with ~1M routes (pyroute2's generic parser, which builds
  an object per attribute, is far too slow for that, so it is deliberately not used). Measured: 300,000 routes
  in ~2.4 s, i.e. ~8 us a route, most of it building the Route objects.
* Fallback, /proc/net/route and /proc/net/ipv6_route, when a netlink socket cannot be opened (a seccomp filter or
  LSM answering EPERM, a kernel without netlink: EAFNOSUPPORT) or the dump fails. /proc/net/route has the main
  table only, and only the first nexthop of a multipath route; neither file has protocol, scope or preferred
  source, /proc/net/ipv6_route has no table (Route.table is "") and cannot tell the reject types apart (type
  "reject"). It is also slow on big tables: the kernel rewalks the IPv6 tree for every 4 KiB read, so 100,000
  IPv6 routes take ~30 s to read. `RouteSnapshot.source` says which source was used and a warning says why.

Flags (netstat -r's letters). Both sources produce the same letters for the same route, following net-tools:
  U  up: every listed route, except reject routes, which show "!" instead (as net-tools does for IPv4)
  !  reject: unreachable, prohibit, blackhole and throw routes (the /proc files mark only what the kernel marks
     RTF_REJECT: IPv4 unreachable/prohibit, every IPv6 reject type)
  G  has a gateway
  H  host route: /32 or /128 (net-tools shows H for IPv6 only when the kernel sets RTF_HOST, which it no longer
     does; we show it for every /128, which is what H means)
  D  IPv4: dynamic, i.e. created by an ICMP redirect (protocol "redirect"); IPv6: a default route learned from a
     router advertisement (RTF_DEFAULT; from netlink: protocol "ra" and destination ::/0) -- net-tools' meanings
  M  IPv4 modified by a redirect (RTF_MODIFIED; only the /proc file can say so, and modern kernels never do)
  A  IPv6 addrconf: learned from a router advertisement (RTF_ADDRCONF; from netlink: protocol "ra", so prefix
     routes of autoconfigured addresses, which the kernel tags protocol "kernel", lack it there)
  C  IPv6 cache entry (RTF_CACHE; cache entries are not listed, as `ip route show` does not list them)
  e  IPv6 route that expires (RA-learned; netlink: RTA_CACHEINFO with a nonzero expiry)
  m  IPv6 modified (RTF_MODIFIED, /proc only)
  n  IPv6 route with no nexthop (RTF_NONEXTHOP): reject routes, and the local/anycast routes of addresses
The other net-tools letters (R, d, a, c, o, f, p, l, ...) are for flags modern kernels never report.

Multipath routes become one Route per nexthop (same destination, table and metric; `nexthop` = 1, 2, ...), as
`netstat -rn -A inet6` and /proc/net/ipv6_route list them, so every gateway and device is visible and filterable.
The /proc fallback for IPv4 can only show the first nexthop (the kernel prints only that one).

Routes are sorted: main table first (then other tables by number), default routes first within a table, then
IPv4 before IPv6, then by destination (numerically, then prefix length), metric and nexthop.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from netscope.collectors import netlink
from netscope.collectors.gc_pause import gc_paused


@dataclass(slots=True, frozen=True)
class Route:
    family: int  # 4 or 6
    destination: str  # "0.0.0.0/0", "10.0.0.0/8", "::/0", "fe80::/64"
    gateway: str  # "" when the destination is on-link
    interface: str  # "" for routes with no device (unreachable, blackhole)
    flags: str  # netstat -r's letters: U up, G gateway, H host, ! reject ...
    metric: int
    protocol: str = ""  # kernel, boot, static, dhcp, ra, bird ...; "" when the source does not say
    scope: str = ""  # global, link, host ...
    table: str = "main"  # main, local, default, or the table number; "" when unknown (/proc/net/ipv6_route)
    preferred_source: str = ""
    type: str = "unicast"  # unicast, local, broadcast, multicast, unreachable, blackhole, prohibit ...
    # (from /proc, "reject": the files do not tell unreachable, prohibit, blackhole and throw apart)
    # Added: 1, 2 ... for the nexthops of a multipath route (one Route each), 0 for a single-path route. Also
    # numbers routes that would otherwise share a key (the /proc files have no table, TOS or source prefix), so
    # that every route has its own identity.
    nexthop: int = 0

    @property
    def is_default(self) -> bool:
        return self.destination in ("0.0.0.0/0", "::/0") and self.type == "unicast"

    @property
    def key(self) -> tuple[object, ...]:
        """A route's identity: what the kernel keys it by (a change of gateway is a changed route)."""
        return (self.family, self.table, self.type, self.destination, self.metric, self.interface, self.nexthop)


@dataclass(slots=True)
class RouteSnapshot:
    taken_at: float
    routes: list[Route]
    source: str  # "netlink" or "/proc"
    warnings: list[str] = field(default_factory=list)


# --- Names, as iproute2 prints them ---

BUILTIN_PROTOCOLS: dict[int, str] = {
    0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra", 10: "mrt", 11: "zebra",
    12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp", 18: "keepalived", 42: "babel", 99: "openr",
    186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp",
}  # fmt: skip
BUILTIN_TABLES: dict[int, str] = {0: "unspec", 253: "default", 254: "main", 255: "local"}
BUILTIN_SCOPES: dict[int, str] = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
ROUTE_TYPES: dict[int, str] = {
    0: "none", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole",
    7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve",
}  # fmt: skip

# iproute2 reads its packaged defaults, then /etc overrides, then the drop-in directories.
IPROUTE2_DIRS: tuple[str, ...] = ("/usr/share/iproute2", "/usr/lib/iproute2", "/etc/iproute2")

RT_TABLE_MAIN = 254
RTPROT_REDIRECT = 1
RTPROT_KERNEL = 2
RTPROT_RA = 9
RTN_LOCAL = 2
RTN_ANYCAST = 4
_REJECT_TYPES = frozenset({6, 7, 8, 9})  # blackhole, unreachable, prohibit, throw
# The kernel sets IPv6 RTF_NONEXTHOP on reject routes and on the local/anycast routes it makes for addresses
# (protocol kernel), not on a local route added by hand: netlink does not carry the flag, so derive it likewise.
_ADDRESS_ROUTE_TYPES = frozenset({RTN_LOCAL, RTN_ANYCAST})


def parse_name_file(text: str) -> dict[int, str]:
    """An iproute2 name file (rt_protos, rt_tables, rt_scopes): "number name" lines, "#" comments."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            number = int(fields[0], 0)  # iproute2 uses strtoul(..., 0): "0x10" is allowed
        except ValueError:
            continue
        if 0 <= number <= 0xFFFFFFFF:
            names[number] = fields[1]
    return names


def load_names(filename: str, builtin: dict[int, str], dirs: Sequence[str] = IPROUTE2_DIRS) -> dict[int, str]:
    """The built-in names overridden by `filename` and `filename.d/*.conf` in each iproute2 directory."""
    names = dict(builtin)
    for directory in dirs:
        paths = [
            os.path.join(directory, filename),
            *sorted(glob.glob(os.path.join(directory, filename + ".d", "*.conf"))),
        ]
        for path in paths:
            try:
                with open(path, encoding="utf-8", errors="replace") as file:
                    names.update(parse_name_file(file.read()))
            except OSError:
                continue  # absent or unreadable: the built-ins stand
    return names


class _Names:
    """Number -> name lookups with a fallback to the number itself (as iproute2 prints unknown values)."""

    def __init__(self, dirs: Sequence[str] = IPROUTE2_DIRS) -> None:
        self.protocols = load_names("rt_protos", BUILTIN_PROTOCOLS, dirs)
        self.tables = load_names("rt_tables", BUILTIN_TABLES, dirs)
        self.scopes = load_names("rt_scopes", BUILTIN_SCOPES, dirs)

    @staticmethod
    def lookup(names: dict[int, str], number: int) -> str:
        name = names.get(number)
        if name is None:
            name = names[number] = str(number)  # memoised: a big table repeats the same few numbers
        return name


# --- Flags ---


def _letters(
    family: int,
    *,
    up: bool,
    reject: bool,
    gateway: bool,
    host: bool,
    dynamic: bool = False,
    modified: bool = False,
    default_router: bool = False,
    addrconf: bool = False,
    cache: bool = False,
    expires: bool = False,
    no_nexthop: bool = False,
) -> str:
    """netstat -r's flag letters, in net-tools' order for the family (see the module docstring)."""
    letters = "!" if reject else ("U" if up else "")
    if gateway:
        letters += "G"
    if host:
        letters += "H"
    if family == 4:
        if dynamic:
            letters += "D"
        if modified:
            letters += "M"
        return letters
    if default_router:
        letters += "D"
    if addrconf:
        letters += "A"
    if cache:
        letters += "C"
    if expires:
        letters += "e"
    if modified:
        letters += "m"
    if no_nexthop:
        letters += "n"
    return letters


# --- Netlink ---

_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTNEXTHOP = struct.Struct("=HBBi")  # len, flags, hops, ifindex
_U32 = struct.Struct("=I")
_I32_AT_8 = struct.Struct("=8xi")  # rta_cacheinfo.rta_expires
RTM_F_CLONED = 0x200

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_MULTIPATH = 9
RTA_CACHEINFO = 12
RTA_TABLE = 15
RTA_VIA = 18
RTA_NH_ID = 30

_FAMILY_BY_AF: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 6}
_ADDRESS_LEN: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}

SortKey = tuple[int, int, int, int, int, int, int]


def _address_text(raw: bytes, cache: dict[bytes, str]) -> str:
    """Printable form of a 4- or 16-byte address (cached: gateways and sources repeat across a big table)."""
    text = cache.get(raw)
    if text is None:
        if len(raw) == 4:
            text = socket.inet_ntop(socket.AF_INET, raw)
        elif len(raw) == 16:
            text = socket.inet_ntop(socket.AF_INET6, raw)
        else:
            text = raw.hex()
        cache[raw] = text
    return text


def _via_text(via: bytes, cache: dict[bytes, str]) -> str:
    """RTA_VIA: struct rtvia { u16 family; u8 addr[]; } -- e.g. an IPv4 route via an IPv6 gateway."""
    return _address_text(via[2:], cache) if len(via) > 2 else ""


class _InterfaceNames(dict[int, str]):
    """ifindex -> name: filled from one RTM_GETLINK dump per collection; an index it did not list (created since)
    is asked of if_indextoname(), and one that no longer exists shows as its number, as `ip route` does.
    A dict (with __missing__) so that the per-route lookup is a plain subscript."""

    def __missing__(self, index: int) -> str:
        if index <= 0:
            name = ""
        else:
            try:
                name = socket.if_indextoname(index)
            except OSError:
                name = str(index)
        self[index] = name
        return name


def _hop_gateway(data: bytes, start: int, end: int, cache: dict[bytes, str]) -> str:
    """The gateway among one nexthop's attributes (RTA_GATEWAY, or RTA_VIA for another family's gateway)."""
    for attr_type, a_start, a_end in netlink.iter_attrs(data, start, end):
        if attr_type == RTA_GATEWAY and a_end > a_start:
            return _address_text(data[a_start:a_end], cache)
        if attr_type == RTA_VIA and a_end > a_start:
            return _via_text(data[a_start:a_end], cache)
    return ""


def _multipath_hops(data: bytes, start: int, end: int, cache: dict[bytes, str]) -> list[tuple[str, int]]:
    """(gateway, ifindex) of each struct rtnexthop in an RTA_MULTIPATH payload; stops at a malformed one."""
    hops: list[tuple[str, int]] = []
    while start + _RTNEXTHOP.size <= end:
        hop_len, _hop_flags, _hops, hop_index = _RTNEXTHOP.unpack_from(data, start)
        if hop_len < _RTNEXTHOP.size or start + hop_len > end:
            break
        hops.append((_hop_gateway(data, start + _RTNEXTHOP.size, start + hop_len, cache), hop_index))
        start += netlink.align(hop_len)
    return hops


# What a route's numbers come out as: (table, protocol, scope, type, flags, table sort rank).
_Described = tuple[str, str, str, str, str, int]


def _describe(
    names: _Names, family: int, table_id: int, proto: int, scope: int, rtype: int, dst_len: int, gateway: bool,
    expires: bool,
) -> _Described:  # fmt: skip
    reject = rtype in _REJECT_TYPES
    flags = _letters(
        family,
        up=True,
        reject=reject,
        gateway=gateway,
        host=dst_len == (32 if family == 4 else 128),
        dynamic=proto == RTPROT_REDIRECT,
        default_router=proto == RTPROT_RA and dst_len == 0,
        addrconf=proto == RTPROT_RA,
        expires=expires,
        no_nexthop=family == 6 and (reject or (rtype in _ADDRESS_ROUTE_TYPES and proto == RTPROT_KERNEL)),
    )
    return (
        names.lookup(names.tables, table_id),
        names.lookup(names.protocols, proto),
        names.lookup(names.scopes, scope),
        ROUTE_TYPES.get(rtype) or str(rtype),
        flags,
        0 if table_id == RT_TABLE_MAIN else 1 + table_id,
    )


def _dump_routes(
    sock: netlink.NetlinkSocket,
    af: int,
    names: _Names,
    ifnames: _InterfaceNames,
    out: list[tuple[SortKey, Route]],
) -> tuple[int, bool]:
    """Append every route of one family (all tables) to `out`. Returns how many routes name a nexthop object
    whose gateway and device the kernel left out (net.ipv4.nexthop_compat_mode=0), and whether any route is
    keyed by more than we keep (TOS, IPv6 source prefix), so that keys may repeat.

    This loop runs once per route of tables that can hold a million, so it unpacks the attributes inline (the
    same walk as netlink.iter_attrs) and memoises everything derived from the header's numbers.
    """
    family = _FAMILY_BY_AF[af]
    addr_len = _ADDRESS_LEN[af]
    zero = bytes(addr_len)
    cache: dict[bytes, str] = {}
    described: dict[tuple[int, ...], _Described] = {}
    unpack_rtmsg = _RTMSG.unpack_from
    unpack_attr = netlink.ATTR.unpack_from
    u32 = _U32.unpack_from
    ntop = socket.inet_ntop
    from_bytes = int.from_bytes
    append = out.append
    opaque_nexthops = 0
    ambiguous = False
    request = _RTMSG.pack(af, 0, 0, 0, 0, 0, 0, 0, 0)
    what = f"reading the IPv{family} routing tables (RTM_GETROUTE)"
    for msg_type, _flags, _seq, data, start, end in sock.dump(netlink.RTM_GETROUTE, request, what):
        if msg_type != netlink.RTM_NEWROUTE or end - start < 12:
            continue
        rt_family, dst_len, src_len, tos, table_id, proto, scope, rtype, rt_flags = unpack_rtmsg(data, start)
        # A kernel without IPv6 treats an AF_INET6 dump as AF_UNSPEC (every family's routes): keep only ours.
        if rt_family != af or rt_flags & RTM_F_CLONED:
            continue
        if src_len or tos:
            ambiguous = True
        dst = zero
        gateway = ""
        oif = metric = 0
        prefsrc = ""
        expires = nh_id = False
        multipath = None
        pos = start + 12
        while pos + 4 <= end:
            attr_len, attr_type = unpack_attr(data, pos)
            if attr_len < 4 or pos + attr_len > end:
                break  # malformed: keep what came before it
            attr_type &= 0x3FFF
            if attr_type == RTA_DST:
                if attr_len - 4 == addr_len:
                    dst = data[pos + 4 : pos + attr_len]
            elif attr_type == RTA_OIF:
                if attr_len >= 8:
                    oif = u32(data, pos + 4)[0]
            elif attr_type == RTA_GATEWAY:
                if attr_len > 4:
                    gateway = _address_text(data[pos + 4 : pos + attr_len], cache)
            elif attr_type == RTA_PRIORITY:
                if attr_len >= 8:
                    metric = u32(data, pos + 4)[0]
            elif attr_type == RTA_TABLE:
                if attr_len >= 8:
                    table_id = u32(data, pos + 4)[0]  # rtm_table is one byte: ids above 255 come only here
            elif attr_type == RTA_PREFSRC:
                if attr_len > 4:
                    prefsrc = _address_text(data[pos + 4 : pos + attr_len], cache)
            elif attr_type == RTA_MULTIPATH:
                multipath = (pos + 4, pos + attr_len)
            elif attr_type == RTA_CACHEINFO:
                if attr_len >= 16:
                    expires = _I32_AT_8.unpack_from(data, pos + 4)[0] != 0
            elif attr_type == RTA_VIA:
                if attr_len > 6 and not gateway:
                    gateway = _via_text(data[pos + 4 : pos + attr_len], cache)
            elif attr_type == RTA_NH_ID:
                nh_id = True
            pos += (attr_len + 3) & ~3

        hops = _multipath_hops(data, multipath[0], multipath[1], cache) if multipath else None
        if not hops:
            if nh_id and not gateway and not oif:
                opaque_nexthops += 1
            hops = [(gateway, oif)]
        destination = f"{ntop(af, dst)}/{dst_len}"
        dst_int = from_bytes(dst, "big")
        multi = len(hops) > 1
        for number, (hop_gateway, hop_oif) in enumerate(hops, 1):
            key = (table_id, proto, scope, rtype, dst_len, bool(hop_gateway), expires)
            info = described.get(key)
            if info is None:
                info = described[key] = _describe(names, family, *key)
            table, protocol, scope_name, type_name, flags, table_rank = info
            nexthop = number if multi else 0
            route = Route(
                family, destination, hop_gateway, ifnames[hop_oif], flags, metric,
                protocol, scope_name, table, prefsrc, type_name, nexthop,
            )  # fmt: skip
            append(((table_rank, dst_len != 0, family, dst_int, dst_len, metric, nexthop), route))
    return opaque_nexthops, ambiguous


# --- /proc fallback ---

RTF_UP = 0x0001
RTF_GATEWAY = 0x0002
RTF_HOST = 0x0004
RTF_DYNAMIC = 0x0010
RTF_MODIFIED = 0x0020
RTF_REJECT = 0x0200
RTF_DEFAULT = 0x00010000
RTF_ADDRCONF = 0x00040000
RTF_ANYCAST = 0x00100000
RTF_NONEXTHOP = 0x00200000
RTF_EXPIRES = 0x00400000
RTF_CACHE = 0x01000000
RTF_LOCAL = 0x80000000

_HOST_ORDER_U32 = struct.Struct("=I")  # /proc/net/route prints each __be32 as a host-order %08X


def _proc_ipv4(hex_text: str) -> bytes:
    """The 4 network-order bytes of a /proc/net/route address or mask ("010200C0" -> 192.0.2.1 here)."""
    if len(hex_text) != 8:
        raise ValueError(f"{hex_text!r} is not 8 hex digits")
    return _HOST_ORDER_U32.pack(int(hex_text, 16))


def _prefix_length(mask: int, bits: int) -> int:
    """Prefix length of a contiguous netmask; ValueError for a non-contiguous one."""
    length = bin(mask).count("1")
    full = (1 << bits) - 1
    if mask != full ^ ((1 << (bits - length)) - 1):
        raise ValueError(f"netmask {mask:#x} is not contiguous")
    return length


def _proc_routes_with_keys(text: str) -> list[tuple[SortKey, Route]]:
    routes: list[tuple[SortKey, Route]] = []
    for line in text.splitlines():
        fields = line.split()
        # Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
        if len(fields) < 8 or fields[0] == "Iface":
            continue
        try:
            dst = _proc_ipv4(fields[1])
            gateway = _proc_ipv4(fields[2])
            bits = int(fields[3], 16)
            metric = int(fields[6])
            dst_len = _prefix_length(int.from_bytes(_proc_ipv4(fields[7]), "big"), 32)
        except ValueError:
            continue  # a malformed (or half-written) line: skip it, never fail the whole table
        reject = bool(bits & RTF_REJECT)
        flags = _letters(
            4,
            up=bool(bits & RTF_UP),
            reject=reject,
            gateway=bool(bits & RTF_GATEWAY),
            host=bool(bits & RTF_HOST) or dst_len == 32,
            dynamic=bool(bits & RTF_DYNAMIC),
            modified=bool(bits & RTF_MODIFIED),
        )
        route = Route(
            family=4,
            destination=f"{socket.inet_ntop(socket.AF_INET, dst)}/{dst_len}",
            # An IPv6 gateway of an IPv4 route (RTA_VIA) is flagged G but printed as 00000000: show it as unknown.
            gateway=socket.inet_ntop(socket.AF_INET, gateway) if any(gateway) else "",
            interface="" if fields[0] == "*" else fields[0],
            flags=flags,
            metric=metric,
            table="main",  # the kernel prints the main table only
            type="reject" if reject else "unicast",
        )
        key = (0, dst_len != 0, 4, int.from_bytes(dst, "big"), dst_len, metric, 0)
        routes.append((key, route))
    return routes


def _proc_ipv6_routes_with_keys(text: str) -> list[tuple[SortKey, Route]]:
    routes: list[tuple[SortKey, Route]] = []
    for line in text.splitlines():
        fields = line.split()
        # dest dest_len src src_len gateway metric refcnt use flags device
        if len(fields) < 10:
            continue
        try:
            if len(fields[0]) != 32 or len(fields[4]) != 32:
                raise ValueError("an address is not 32 hex digits")
            dst = bytes.fromhex(fields[0])  # %pi6: network order, unlike /proc/net/tcp6
            dst_len = int(fields[1], 16)
            gateway = bytes.fromhex(fields[4])
            metric = int(fields[5], 16)
            bits = int(fields[8], 16)
            if not 0 <= dst_len <= 128:
                raise ValueError("prefix length out of range")
        except ValueError:
            continue
        reject = bool(bits & RTF_REJECT)
        if reject and dst_len == 0 and not any(dst) and metric == 0xFFFFFFFF:
            continue  # the kernel's ip6_null_entry (root of the tree), not a route: netlink never lists it
        if reject:
            type_name = "reject"
        elif bits & RTF_LOCAL:
            type_name = "local"
        elif bits & RTF_ANYCAST:
            type_name = "anycast"
        else:
            type_name = "unicast"
        flags = _letters(
            6,
            up=bool(bits & RTF_UP),
            reject=reject,
            gateway=bool(bits & RTF_GATEWAY),
            host=dst_len == 128,
            modified=bool(bits & RTF_MODIFIED),
            default_router=bool(bits & RTF_DEFAULT),
            addrconf=bool(bits & RTF_ADDRCONF),
            cache=bool(bits & RTF_CACHE),
            expires=bool(bits & RTF_EXPIRES),
            no_nexthop=bool(bits & RTF_NONEXTHOP),
        )
        route = Route(
            family=6,
            destination=f"{socket.inet_ntop(socket.AF_INET6, dst)}/{dst_len}",
            gateway=socket.inet_ntop(socket.AF_INET6, gateway) if bits & RTF_GATEWAY else "",
            interface=fields[9],
            flags=flags,
            metric=metric,
            table="",  # the file mixes every table and does not say which
            type=type_name,
        )
        key = (0, dst_len != 0, 6, int.from_bytes(dst, "big"), dst_len, metric, 0)
        routes.append((key, route))
    return routes


def parse_proc_route(text: str) -> list[Route]:
    """Parse /proc/net/route (IPv4, main table). Malformed lines are skipped; never raises on bad text."""
    return _finish(_proc_routes_with_keys(text))


def parse_proc_ipv6_route(text: str) -> list[Route]:
    """Parse /proc/net/ipv6_route (IPv6, all tables). Malformed lines are skipped; never raises on bad text."""
    return _finish(_proc_ipv6_routes_with_keys(text))


def _first(pair: tuple[SortKey, Route]) -> SortKey:
    return pair[0]


def _finish(pairs: list[tuple[SortKey, Route]], renumber: bool = True) -> list[Route]:
    """Sort; then, if keys may repeat, number the routes that share one so that each has its own identity."""
    pairs.sort(key=_first)  # the kernel dumps in prefix order, so this is mostly merging presorted runs
    routes = [route for _, route in pairs]
    if not renumber:
        return routes
    seen: set[tuple[object, ...]] = set()
    for i, route in enumerate(routes):
        key = route.key
        if key in seen:
            base = key[:-1]
            number = route.nexthop + 1
            while (*base, number) in seen:
                number += 1
            route = routes[i] = dataclasses.replace(route, nexthop=number)
            key = route.key
        seen.add(key)
    return routes


# --- The collector ---

_UNAVAILABLE_ERRNOS = frozenset({errno.EPERM, errno.EACCES, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT})
_FALLBACK_LIMITS = (
    "IPv4 shows only the main table and only the first gateway of multipath routes, and protocol, scope, "
    "preferred source and the IPv6 table are not shown."
)
_DUMP_ATTEMPTS = 3


class RouteCollector:
    """Reads every routing table; `collect()` blocks (the app runs it in a thread) and never raises."""

    def __init__(self, proc_root: str = "/proc", use_netlink: bool = True) -> None:
        self.proc_root = proc_root
        self.use_netlink = use_netlink
        self._netlink_unavailable = ""  # why netlink cannot be used here at all (set once socket() failed)
        try:
            self._names = _Names()
        except Exception:  # unreadable name files are skipped inside; this is only a last resort
            self._names = _Names(dirs=())

    def collect(self) -> RouteSnapshot:
        taken_at = time.time()
        try:
            return self._collect(taken_at)
        except Exception as exc:  # a bug must not take the app down: report it as a warning instead
            return RouteSnapshot(
                taken_at,
                [],
                "/proc",
                [f"Reading the routing tables failed unexpectedly ({exc!r}); routes are not shown."],
            )

    def _collect(self, taken_at: float) -> RouteSnapshot:
        if not self.use_netlink:
            reason = "Routes are read from /proc/net/route and /proc/net/ipv6_route because netlink is turned off"
            return self._collect_proc(taken_at, [f"{reason}: {_FALLBACK_LIMITS}"])
        if self._netlink_unavailable:
            return self._collect_proc(taken_at, [self._netlink_unavailable])
        try:
            sock = netlink.NetlinkSocket(netlink.NETLINK_ROUTE)
        except OSError as exc:
            why = (
                f"Could not open a netlink socket ({exc.strerror or exc}), so routes are read from "
                f"/proc/net/route and /proc/net/ipv6_route: {_FALLBACK_LIMITS} "
                "If a container's seccomp profile or a security policy forbids netlink, allowing AF_NETLINK "
                "sockets shows every table."
            )
            if exc.errno in _UNAVAILABLE_ERRNOS:
                self._netlink_unavailable = why  # it will not get better: do not retry every interval
            return self._collect_proc(taken_at, [why])
        try:
            with sock, gc_paused():
                routes, warnings = self._collect_netlink(sock)
        except netlink.NetlinkError as exc:
            why = (
                f"Reading the routes over netlink failed ({exc}), so this refresh reads /proc/net/route and "
                f"/proc/net/ipv6_route instead: {_FALLBACK_LIMITS} Netlink is tried again at the next refresh."
            )
            return self._collect_proc(taken_at, [why])
        return RouteSnapshot(taken_at, routes, "netlink", warnings)

    def _collect_netlink(self, sock: netlink.NetlinkSocket) -> tuple[list[Route], list[str]]:
        warnings: list[str] = []
        try:
            links = netlink.link_names(sock)
        except netlink.NetlinkError:
            if sock.closed:
                raise
            links = {}  # names then come from if_indextoname() one by one
        ifnames = _InterfaceNames(links)
        for attempt in range(1, _DUMP_ATTEMPTS + 1):
            pairs: list[tuple[SortKey, Route]] = []
            opaque = 0
            interrupted = ambiguous = False
            for af in (socket.AF_INET, socket.AF_INET6):
                count, keyed_by_more = _dump_routes(sock, af, self._names, ifnames, pairs)
                opaque += count
                ambiguous = ambiguous or keyed_by_more
                interrupted = interrupted or sock.last_dump_interrupted
            if not interrupted:
                break
            if attempt == _DUMP_ATTEMPTS:
                warnings.append(
                    f"The routing table changed while it was being read, {_DUMP_ATTEMPTS} times in a row, so this "
                    "list may miss or repeat a route. It is read again at the next refresh."
                )
        if opaque:
            warnings.append(
                f"{opaque} route(s) use nexthop objects and the kernel did not include their gateway and device "
                "(net.ipv4.nexthop_compat_mode is 0); `ip nexthop show` lists them."
            )
        return _finish(pairs, renumber=ambiguous), warnings

    def _collect_proc(self, taken_at: float, warnings: list[str]) -> RouteSnapshot:
        pairs: list[tuple[SortKey, Route]] = []
        for name, parse, family in (
            ("route", _proc_routes_with_keys, "IPv4"),
            ("ipv6_route", _proc_ipv6_routes_with_keys, "IPv6"),
        ):
            path = os.path.join(self.proc_root, "net", name)
            try:
                with open(path, encoding="ascii", errors="replace") as file:
                    text = file.read()
            except FileNotFoundError:
                if family == "IPv6":
                    warnings.append(f"{path} does not exist: IPv6 is disabled here, so no IPv6 routes are shown.")
                else:
                    warnings.append(f"{path} does not exist, so no {family} routes are shown.")
                continue
            except OSError as exc:
                warnings.append(
                    f"Could not read {path} ({exc.strerror or exc}), so no {family} routes are shown. "
                    "Check that /proc is mounted and readable."
                )
                continue
            pairs.extend(parse(text))
        return RouteSnapshot(taken_at, _finish(pairs), "/proc", warnings)
