"""Routing tables (`netstat -r`, `netstat -rn -A inet6`, `ip route show table all`)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    table: str = "main"  # main, local, default, or the table number
    preferred_source: str = ""
    type: str = "unicast"  # unicast, local, broadcast, multicast, unreachable, blackhole, prohibit ...

    @property
    def is_default(self) -> bool:
        return self.destination in ("0.0.0.0/0", "::/0") and self.type == "unicast"

    @property
    def key(self) -> tuple[object, ...]:
        """A route's identity: what the kernel keys it by (a change of gateway is a changed route)."""
        return (self.family, self.table, self.type, self.destination, self.metric, self.interface)


@dataclass(slots=True)
class RouteSnapshot:
    taken_at: float
    routes: list[Route]
    source: str  # "netlink" or "/proc"
    warnings: list[str] = field(default_factory=list)
