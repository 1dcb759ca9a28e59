"""Per-connection throughput from successive snapshots' tcp_info, and its sums per process and per remote host.

Rates are the change of the kernel's byte counters over the time between two snapshots: `bytes_acked` (bytes sent
and acknowledged by the peer, so a rate the network really delivered, not what sits in a buffer) and
`bytes_received`. A counter that goes backwards means a new connection on the same 4-tuple: its history starts
over. A connection missing from a snapshot is forgotten, so one that comes back starts over too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from netscope.collectors.model import Snapshot, SocketKey

_MAPPED = "::ffff:"  # an IPv4 peer of a dual-stack socket: grouped with the same peer seen over IPv4


@dataclass(slots=True, frozen=True)
class Throughput:
    bytes_sent: int  # tcpi_bytes_acked (the kernel counts the SYN and the FIN as one byte each)
    bytes_received: int
    send_rate: float | None  # bytes/s over the last refresh; None on the first sample of a connection
    recv_rate: float | None


@dataclass(slots=True)
class RateGroup:
    key: str  # "nginx (1234)" / "10.0.0.5"
    filter_text: str  # "pid:1234" / "rip:10.0.0.5": the filter language's term for the group's connections
    connections: int
    send_rate: float  # the sum of its connections' rates (a connection on its first sample adds 0)
    recv_rate: float
    bytes_sent: int
    bytes_received: int


@dataclass(slots=True)
class _Track:
    taken_at: float
    sent: int
    received: int
    now: Throughput
    history: deque[tuple[float, float]]


class ThroughputTracker:
    """Feed it every snapshot (`update`); ask it about connections (`get`, `history`) and groups of them."""

    def __init__(self, history: int = 60) -> None:
        self._length = history
        self._tracks: dict[SocketKey, _Track] = {}

    def update(self, snapshot: Snapshot) -> None:
        """Take in a snapshot's tcp_info (an empty one forgets every connection). O(len(snapshot.tcp_info))."""
        taken_at = snapshot.taken_at
        old = self._tracks
        tracks: dict[SocketKey, _Track] = {}
        for key, info in snapshot.tcp_info.items():
            sent, received = info.bytes_acked, info.bytes_received
            track = old.get(key)
            if track is None or sent < track.sent or received < track.received:
                tracks[key] = _Track(
                    taken_at, sent, received, Throughput(sent, received, None, None), deque(maxlen=self._length)
                )
                continue
            elapsed = taken_at - track.taken_at
            if elapsed <= 0:
                # The same snapshot again, or the wall clock stepped back: no rate to tell; measure from here.
                track.taken_at, track.sent, track.received = taken_at, sent, received
                track.now = Throughput(sent, received, None, None)
            else:
                send_rate = (sent - track.sent) / elapsed
                recv_rate = (received - track.received) / elapsed
                track.taken_at, track.sent, track.received = taken_at, sent, received
                track.now = Throughput(sent, received, send_rate, recv_rate)
                track.history.append((send_rate, recv_rate))
            tracks[key] = track
        self._tracks = tracks

    def get(self, key: SocketKey) -> Throughput | None:
        """The connection's counters and rates as of the last update; None if it had no tcp_info then."""
        track = self._tracks.get(key)
        return track.now if track is not None else None

    def history(self, key: SocketKey) -> list[tuple[float, float]]:
        """The last `history` (send_rate, recv_rate) samples, oldest first (the first sample has no rate)."""
        track = self._tracks.get(key)
        return list(track.history) if track is not None else []

    def by_process(self, snapshot: Snapshot) -> list[RateGroup]:
        """The snapshot's connections with tcp_info, summed per owning process, busiest first. Connections whose
        owner is unknown (another user's, without root; orphaned) are left out: no filter term selects them."""
        groups: dict[int, RateGroup] = {}
        sockets = snapshot.sockets
        for key, info in snapshot.tcp_info.items():
            sock = sockets.get(key)
            if sock is None or sock.pid is None:
                continue
            group = groups.get(sock.pid)
            if group is None:
                group = groups[sock.pid] = RateGroup(
                    f"{sock.program or '?'} ({sock.pid})", f"pid:{sock.pid}", 0, 0.0, 0.0, 0, 0
                )
            self._add(group, key, info.bytes_acked, info.bytes_received)
        return _busiest_first(groups.values())

    def by_remote_host(self, snapshot: Snapshot) -> list[RateGroup]:
        """The snapshot's connections with tcp_info, summed per remote address, busiest first. An IPv4-mapped
        address (::ffff:10.0.0.5) counts as the IPv4 one: the same host, and `rip:10.0.0.5` matches both."""
        groups: dict[str, RateGroup] = {}
        sockets = snapshot.sockets
        for key, info in snapshot.tcp_info.items():
            sock = sockets.get(key)
            if sock is None:
                continue
            host = sock.remote_ip
            if host.startswith(_MAPPED) and "." in host:
                host = host[len(_MAPPED) :]
            group = groups.get(host)
            if group is None:
                group = groups[host] = RateGroup(host, f"rip:{host}", 0, 0.0, 0.0, 0, 0)
            self._add(group, key, info.bytes_acked, info.bytes_received)
        return _busiest_first(groups.values())

    def _add(self, group: RateGroup, key: SocketKey, sent: int, received: int) -> None:
        group.connections += 1
        group.bytes_sent += sent
        group.bytes_received += received
        track = self._tracks.get(key)
        if track is not None:
            now = track.now
            group.send_rate += now.send_rate or 0.0
            group.recv_rate += now.recv_rate or 0.0


def _busiest_first(groups: Iterable[RateGroup]) -> list[RateGroup]:
    return sorted(groups, key=lambda g: (-(g.send_rate + g.recv_rate), -(g.bytes_sent + g.bytes_received), g.key))
