"""A fixed, realistic machine for SVG snapshots: the same sockets and clock on every run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.diff import diff_snapshots
from netscope.collectors.model import Snapshot, SnapshotDiff, Socket
from netscope.collectors.sources import SourceDefaults

T0 = 1_790_000_000.0  # a fixed wall-clock instant


def sock(
    proto: str, local: str, lport: int, remote: str, rport: int, state: str, *, pid: int | None = None,
    program: str = "", user: str = "root", recv_q: int = 0, send_q: int = 0, inode: int = 0, age: float = 600,
) -> Socket:
    return Socket(
        proto=proto, local_ip=local, local_port=lport, remote_ip=remote, remote_port=rport, state=state,
        recv_q=recv_q, send_q=send_q, inode=inode, uid=0, user=user, pid=pid, program=program,
        first_seen=T0 - age, seen_since_start=age > 60,
    )


def machine() -> list[Socket]:
    sockets = [
        sock("tcp", "0.0.0.0", 22, "0.0.0.0", 0, "LISTEN", pid=812, program="sshd", inode=1001),
        sock("tcp6", "::", 22, "::", 0, "LISTEN", pid=812, program="sshd", inode=1002),
        sock("tcp", "0.0.0.0", 80, "0.0.0.0", 0, "LISTEN", pid=1220, program="nginx", inode=1003, recv_q=3,
             send_q=511),
        sock("tcp", "0.0.0.0", 443, "0.0.0.0", 0, "LISTEN", pid=1220, program="nginx", inode=1004, send_q=511),
        sock("tcp", "127.0.0.1", 5432, "0.0.0.0", 0, "LISTEN", pid=940, program="postgres", user="postgres",
             inode=1005, send_q=244),
        sock("udp", "127.0.0.53", 53, "0.0.0.0", 0, "UNCONN", pid=501, program="systemd-resolve",
             user="systemd-resolve", inode=1006),
        sock("udp6", "fe80::1c2a:4ff:fe3b:9a01", 546, "::", 0, "UNCONN", pid=502, program="systemd-networkd",
             user="systemd-network", inode=1007),
        sock("tcp", "10.0.0.5", 22, "203.0.113.7", 51514, "ESTABLISHED", pid=23001, program="sshd",
             inode=2001, age=4000),
    ]
    for index in range(9):
        sockets.append(
            sock("tcp", "10.0.0.5", 443, f"198.51.100.{20 + index}", 40000 + index * 7, "ESTABLISHED",
                 pid=1221, program="nginx", user="www-data", inode=3000 + index, age=30 + index * 50,
                 send_q=1448 if index == 2 else 0)
        )
    for index in range(4):
        sockets.append(
            sock("tcp", "10.0.0.5", 80, f"192.0.2.{100 + index}", 61000 + index, "SYN_RECV", age=1 + index)
        )
    for index in range(3):
        sockets.append(sock("tcp", "10.0.0.5", 80, "198.51.100.9", 52000 + index, "TIME_WAIT", age=20 + index))
    sockets += [
        sock("tcp", "127.0.0.1", 5432, "127.0.0.1", 39412, "ESTABLISHED", pid=951, program="postgres",
             user="postgres", inode=4001),
        sock("tcp", "127.0.0.1", 39412, "127.0.0.1", 5432, "ESTABLISHED", pid=1221, program="nginx",
             user="www-data", inode=4002),
        sock("tcp", "10.0.0.5", 8080, "10.0.0.9", 33210, "CLOSE_WAIT", pid=2077, program="[b]java[/b]",
             user="app", inode=5001, recv_q=1),
        sock("tcp6", "2001:db8::5", 443, "2001:db8:ffff::42", 50110, "ESTABLISHED", pid=1221, program="nginx",
             user="www-data", inode=6001, age=75),
    ]
    return sockets


def snapshots() -> list[Snapshot]:
    """Two refreshes: in the second one connection is new, one changed state and one closed."""
    first = machine()
    second = [sock.replaced() for sock in first]
    closed = next(s for s in second if s.remote_ip == "198.51.100.21")
    second.remove(closed)
    changed = next(index for index, s in enumerate(second) if s.remote_ip == "198.51.100.22")
    second[changed] = second[changed].replaced(state="TIME_WAIT", pid=None, program="", user="", inode=0)
    second.append(sock("tcp", "10.0.0.5", 443, "198.51.100.77", 45678, "ESTABLISHED", pid=1221,
                       program="nginx", user="www-data", inode=3100, age=0))
    return [
        Snapshot(taken_at=T0 - 1, sockets={s.key: s for s in first}, collect_seconds=0.012),
        Snapshot(taken_at=T0, sockets={s.key: s for s in second}, collect_seconds=0.011),
    ]


class FixedSource(SourceDefaults):
    """Yields the fixed refreshes, then nothing more (the screen keeps showing the last one)."""

    interval = 1.0

    def __init__(self, frames: list[Snapshot] | None = None) -> None:
        self.frames = frames if frames is not None else snapshots()

    async def stream(self) -> AsyncIterator[SnapshotDiff | CollectionFailure]:
        previous: Snapshot | None = None
        for frame in self.frames:
            yield diff_snapshots(previous, frame)
            previous = frame
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        """Nothing to release."""
