"""Multicast group memberships (`netstat -g`) from /proc/net/igmp and /proc/net/igmp6.

Like the other /proc/net files these describe the network namespace of the reader, or of PID when proc_root is
/proc/PID. Both list only groups with at least one member; an interface with none is simply absent.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
import time
from dataclasses import dataclass, field

from netscope.collectors.proc_files import read_proc_text, skipped_lines_warning


@dataclass(slots=True, frozen=True)
class Membership:
    interface: str
    family: int  # 4 or 6
    group: str  # "224.0.0.1", "ff02::1"
    users: int  # how many sockets/subsystems joined it (the kernel's refcount)


@dataclass(slots=True)
class MulticastSnapshot:
    taken_at: float
    memberships: list[Membership]  # sorted by interface, family, group
    warnings: list[str] = field(default_factory=list)


_HEX8 = re.compile(r"[0-9A-Fa-f]{8}\Z")
_HEX32 = re.compile(r"[0-9A-Fa-f]{32}\Z")
_COUNT = re.compile(r"[0-9]+\Z")


def igmp_hex_to_address(hex_group: str) -> str:
    """Convert an IGMP group, "010000E0" -> "224.0.0.1". Raises ValueError unless given 8 hex digits.

    /proc/net/igmp prints the group's 32-bit word with %08X, so the digits are in host byte order: reversed on a
    little-endian machine. Packing the number back with the native order restores the network bytes.
    """
    if not _HEX8.match(hex_group):
        raise ValueError(f"not an IGMP group: {hex_group!r}")
    return socket.inet_ntoa(struct.pack("=I", int(hex_group, 16)))


def igmp6_hex_to_address(hex_group: str) -> str:
    """Convert an IGMPv6 group, "ff020000000000000000000000000001" -> "ff02::1". Raises ValueError if not 32 hex.

    /proc/net/igmp6 prints the address with %pi6, i.e. its bytes in network order: no swapping.
    """
    if not _HEX32.match(hex_group):
        raise ValueError(f"not an IPv6 group: {hex_group!r}")
    return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hex_group))


def parse_igmp(text: str, source: str = "/proc/net/igmp") -> tuple[list[Membership], list[str]]:
    """Parse /proc/net/igmp; never raises. Returns memberships in file order and at most one warning.

    The file is a title line, then per interface a header "Idx<TAB>Device    : Count Querier" followed by one
    indented line per group: "<TAB><TAB><TAB><TAB>Group Users Timer<TAB><TAB>Reporter", e.g.
    "\t\t\t\t010000E0     1 0:00000000\t\t0". A group line with no valid header before it is skipped.
    """
    memberships: list[Membership] = []
    skipped: list[str] = []
    device: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("Idx"):
            continue
        if not line[0].isspace():
            # "4\teth0      : 1      V3". Device names cannot hold ':' or blanks, so the first ':' ends it.
            index, _, rest = line.partition("\t") if "\t" in line else line.partition(" ")
            name, colon, _ = rest.partition(":")
            name = name.strip()
            device = name if index.strip().isdigit() and colon and name and " " not in name else None
            if device is None:
                skipped.append(line)
            continue
        fields = line.split()
        if device is None or len(fields) < 2 or not _HEX8.match(fields[0]) or not _COUNT.match(fields[1]):
            skipped.append(line)
            continue
        memberships.append(Membership(device, 4, igmp_hex_to_address(fields[0]), int(fields[1])))
    return memberships, skipped_lines_warning(source, skipped)


def parse_igmp6(text: str, source: str = "/proc/net/igmp6") -> tuple[list[Membership], list[str]]:
    """Parse /proc/net/igmp6 ("Idx Device Group Users Flags Timer" per line, no title); never raises.

    e.g. "1    lo              ff020000000000000000000000000001     1 0000000C 0".
    """
    memberships: list[Membership] = []
    skipped: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if (
            len(fields) < 4
            or not _COUNT.match(fields[0])
            or not _HEX32.match(fields[2])
            or not _COUNT.match(fields[3])
        ):
            skipped.append(line)
            continue
        memberships.append(Membership(fields[1], 6, igmp6_hex_to_address(fields[2]), int(fields[3])))
    return memberships, skipped_lines_warning(source, skipped)


def sort_memberships(memberships: list[Membership]) -> list[Membership]:
    """By interface, family, then group as a number (224.0.0.251 after 224.0.0.22, unlike text order)."""
    return sorted(memberships, key=lambda m: (m.interface, m.family, int(ipaddress.ip_address(m.group))))


# (relative path, parser, what is lost when the file is missing)
_SOURCES = (
    ("net/igmp", parse_igmp, "IPv4 multicast memberships are unavailable (no IP multicast in this kernel)"),
    ("net/igmp6", parse_igmp6, "IPv6 multicast memberships are unavailable (IPv6 is disabled or not built in)"),
)


class MulticastCollector:
    """Reads the multicast groups every interface has joined and how many members each has."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root

    def collect(self) -> MulticastSnapshot:
        """Read both files (blocking, well under a millisecond); missing ones give a warning, not an error."""
        memberships: list[Membership] = []
        warnings: list[str] = []
        for relative, parse, missing in _SOURCES:
            path = os.path.join(self.proc_root, relative)
            text = read_proc_text(path, missing, warnings)
            if text is None:
                continue
            found, problems = parse(text, path)
            memberships.extend(found)
            warnings.extend(problems)
        return MulticastSnapshot(
            taken_at=time.time(), memberships=sort_memberships(memberships), warnings=warnings
        )
