"""Multicast group memberships (`netstat -g`) from /proc/net/igmp and /proc/net/igmp6."""

from __future__ import annotations

from dataclasses import dataclass, field


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
