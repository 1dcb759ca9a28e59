"""Alerts: the conditions an on-call engineer wants to be told about without looking, in words, with the filter
that shows the sockets involved.

* `syn_flood` (error, or a warning when only the rise tripped it): SYN_RECV sockets, machine-wide, reach
  `syn_recv`, or rise by `syn_recv_rise` within one refresh. Names the top source addresses and target ports.
* `close_wait_leak` (warning): one process holds at least `close_wait` CLOSE_WAIT sockets and that count grew,
  never falling, across the last `close_wait_refreshes` refreshes: the peers closed, the process did not.
  Sockets with no known owner are left out, as there is no process to name.
* `listen_overflow` (error): TcpExt ListenOverflows or ListenDrops moved by at least `listen_drops` between two
  protocol statistics samples: connection attempts were dropped because an accept queue was full. Names the
  listening sockets with connections waiting to be accepted (their Recv-Q), the fullest first.
* `remote_host` (warning): one remote address is the peer of at least `per_remote_ip` sockets (any state, either
  direction). At most five such alerts, the busiest hosts; the first says how many more there are. Loopback peers
  (127.0.0.0/8, ::1) never raise it: that is the machine talking to itself (a local proxy in front of a local
  application holds thousands), not a remote host.

A threshold of 0 turns its alert off.

Hysteresis, so that an alert does not flap around its threshold: a raised SYN flood alert stays while SYN_RECV is
at least half of its peak (or of `syn_recv`, if lower); a leak alert while the process holds at least half of
`close_wait`; a remote host alert while the host has at least half of `per_remote_ip`; a listen overflow alert
until the counters have been still for `LISTEN_HOLD` samples. An alert keeps the time it was first raised
(`since`) for as long as it stays active.

The engine counts for itself, from every diff, over all sockets (the "top" view's GroupCounter may be filtered,
and an alert is about the machine): per state, per remote address, SYN_RECV per source and target port,
CLOSE_WAIT per process, and the LISTEN sockets. A refresh costs time in proportion to what changed, plus one
step per process holding CLOSE_WAIT sockets; the top SYN_RECV sources are picked only while the alert is up.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from netscope.collectors.model import SnapshotDiff, Socket, SocketKey
from netscope.collectors.protostats import StatsSnapshot
from netscope.collectors.session.insights import GroupCounter, peer_keys

KINDS: tuple[str, ...] = ("syn_flood", "listen_overflow", "close_wait_leak", "remote_host")
LISTEN_COUNTERS: tuple[str, ...] = ("ListenOverflows", "ListenDrops")  # in group TcpExt
LISTEN_HOLD = 3  # quiet statistics samples before a listen overflow alert clears
MAX_PER_KIND = 5  # leak and remote host alerts shown at most: the biggest; a flood of alerts helps no one
TOP_SOURCES = 3
# A flood spread this thin (the top source under this share of the half-open sockets, over many addresses) is
# probably from spoofed addresses, which blocking cannot help: say so.
SPREAD_SHARE = 0.05
SPREAD_SOURCES = 50


@dataclass(slots=True)
class Thresholds:
    syn_recv: int = 100  # SYN_RECV count that alerts by itself
    syn_recv_rise: int = 50  # rise within one refresh that alerts
    close_wait: int = 20  # a process holding at least this many CLOSE_WAIT sockets ...
    close_wait_refreshes: int = 3  # ... that grew (never fell) over this many consecutive refreshes -> leak alert
    per_remote_ip: int = 500  # connections from one remote IP
    listen_drops: int = 1  # ListenOverflows/ListenDrops (TcpExt) moving by at least this per refresh


@dataclass(slots=True)
class Alert:
    kind: str  # "syn_flood", "close_wait_leak", "listen_overflow", "remote_host"
    severity: str  # "warning" or "error"
    title: str  # short, e.g. "SYN flood? 240 half-open connections (+180)"
    detail: str  # what it saw and what to look at
    filter_text: str  # filter that shows the culprit sockets; "" if none
    since: float  # taken_at when first raised (kept while the alert stays active)
    # What it is about, as a short stable name (the metrics endpoint's `subject` label): "machine" for a SYN flood
    # and a listen overflow, "PID/program" for a leak, the address for a remote host.
    subject: str = "machine"


def _half(threshold: int) -> int:
    return max(1, (threshold + 1) // 2)


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _owner(sock: Socket) -> str:
    return f"{sock.program or '?'} (pid {sock.pid})" if sock.pid is not None else "owner unknown"


@dataclass(slots=True)
class _Counts:
    """What the engine keeps per refresh, machine-wide."""

    states: dict[str, int] = field(default_factory=dict)
    by_ip: dict[str, int] = field(default_factory=dict)  # remote address -> sockets with it as peer
    syn_by_ip: dict[str, int] = field(default_factory=dict)  # remote address -> SYN_RECV sockets
    syn_by_port: dict[int, int] = field(default_factory=dict)  # local port -> SYN_RECV sockets
    close_wait: dict[int, int] = field(default_factory=dict)  # PID -> CLOSE_WAIT sockets
    programs: dict[int, str] = field(default_factory=dict)  # PID -> program, for the PIDs in close_wait
    listeners: dict[SocketKey, Socket] = field(default_factory=dict)  # TCP LISTEN sockets, for Recv-Q
    touched_ips: set[str] = field(default_factory=set)  # addresses whose count moved this refresh


def _bump(counts: dict[Any, int], key: object, delta: int) -> None:
    value = counts.get(key, 0) + delta
    if value:
        counts[key] = value
    else:
        del counts[key]  # keep only non-zero entries: the dicts stay as small as what they count


class AlertEngine:
    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self._counts = _Counts()
        self._evaluated_with: Thresholds | None = None
        # SYN flood state: the count at the last refresh (None before the first), whether raised, its peak.
        self._syn_previous: int | None = None
        self._syn_active = False
        self._syn_peak = 0
        self._cw_history: dict[int, deque[int]] = {}  # PID -> its CLOSE_WAIT count at the last refreshes
        self._leaking: set[int] = set()
        self._hot_ips: set[str] = set()
        self._since: dict[tuple[str, str], float] = {}  # (kind, subject) -> when first raised
        self._live: set[tuple[str, str]] = set()  # the (kind, subject) of the alerts raised by this update
        self._socket_alerts: list[Alert] = []
        self._counter_values: dict[str, int] | None = None
        self._listen_alert: Alert | None = None
        self._listen_quiet = 0

    # --- sockets ---------------------------------------------------------------------------------------------

    def update(self, diff: SnapshotDiff, groups: GroupCounter | None = None) -> list[Alert]:
        """Take one socket refresh; return the active alerts, errors first.

        `groups` is accepted for callers that have one and ignored: the UI's counter is filtered, and alerts are
        about the whole machine."""
        del groups
        counts = self._counts
        if diff.first:
            counts = self._start_first()
            for sock in diff.snapshot.sockets.values():
                self._account(sock, 1)
            counts.touched_ips = set(counts.by_ip)
        else:
            counts.touched_ips = set()
            account = self._account
            for sock in diff.added:
                account(sock, 1)
            for sock in diff.removed:
                account(sock, -1)
            for before, after in zip(diff.changed_before, diff.changed, strict=True):
                if (
                    before.state == after.state
                    and before.pid == after.pid
                    and before.program == after.program
                    and after.state != "LISTEN"
                ):
                    continue  # only queues moved, and only a listener's queue matters here
                account(before, -1)
                account(after, 1)
        return self._evaluate(diff)

    def first_in_parts(self, diff: SnapshotDiff, size: int) -> Iterator[None]:
        """update() with a first diff, `size` sockets at a time, yielding between parts (as
        GroupCounter.first_in_parts, for the same reason); `active` holds the result once it ends."""
        counts = self._start_first()
        sockets = list(diff.snapshot.sockets.values())
        account = self._account
        for start in range(0, len(sockets), size):
            if start:
                yield
            for sock in sockets[start:start + size]:
                account(sock, 1)
        counts.touched_ips = set(counts.by_ip)
        self._evaluate(diff)

    def _start_first(self) -> _Counts:
        # A new collector or a replay seek: nothing before this is comparable, so nothing counts as rising.
        self._counts = counts = _Counts()
        self._syn_previous, self._syn_active, self._syn_peak = None, False, 0
        self._cw_history.clear()
        self._leaking.clear()
        self._hot_ips.clear()
        self._since.clear()
        return counts

    def _evaluate(self, diff: SnapshotDiff) -> list[Alert]:
        """The alerts the counts raise now; the active ones, errors first."""
        counts = self._counts
        if self.thresholds != self._evaluated_with:
            # New thresholds may put any host over or under: look at them all, once.
            counts.touched_ips = set(counts.by_ip) | self._hot_ips
            self._evaluated_with = dataclasses.replace(self.thresholds)  # a copy: the caller may change theirs
        taken_at = diff.snapshot.taken_at
        self._live.clear()
        alerts = [*self._syn_flood(taken_at), *self._close_wait_leaks(taken_at), *self._remote_hosts(taken_at)]
        for key in [key for key in self._since if key not in self._live]:
            del self._since[key]  # cleared: raised again later, it starts a new `since`
        self._socket_alerts = alerts
        return self.active

    def _account(self, sock: Socket, delta: int) -> None:
        counts = self._counts
        name = sock.counter_name
        _bump(counts.states, name, delta)
        peer = peer_keys(sock.remote_ip)
        if peer is not None:
            ip = peer[0]
            _bump(counts.by_ip, ip, delta)
            counts.touched_ips.add(ip)
            if name == "SYN_RECV":
                _bump(counts.syn_by_ip, ip, delta)
                _bump(counts.syn_by_port, sock.local_port, delta)
        state = sock.state
        if state == "CLOSE_WAIT":
            pid = sock.pid
            if pid is not None:
                _bump(counts.close_wait, pid, delta)
                if delta > 0:
                    counts.programs[pid] = sock.program
                elif pid not in counts.close_wait:
                    counts.programs.pop(pid, None)
        elif state == "LISTEN" and sock.is_tcp:
            if delta > 0:
                counts.listeners[sock.key] = sock
            else:
                counts.listeners.pop(sock.key, None)

    def _raised_since(self, kind: str, subject: str, taken_at: float) -> float:
        self._live.add((kind, subject))
        return self._since.setdefault((kind, subject), taken_at)

    def _syn_flood(self, taken_at: float) -> list[Alert]:
        limits = self.thresholds
        counts = self._counts
        count = counts.states.get("SYN_RECV", 0)
        rise = 0 if self._syn_previous is None else count - self._syn_previous
        self._syn_previous = count
        by_level = limits.syn_recv > 0 and count >= limits.syn_recv
        by_rise = limits.syn_recv_rise > 0 and rise >= limits.syn_recv_rise
        if by_level or by_rise:
            self._syn_peak = max(self._syn_peak, count) if self._syn_active else count
            self._syn_active = True
        elif self._syn_active and count >= _half(min(self._syn_peak, limits.syn_recv or self._syn_peak)):
            pass  # still at least half the peak (or of the threshold): the same flood, not over yet
        else:
            self._syn_active, self._syn_peak = False, 0
            return []
        # The most first, equals by address text or port. Plain tuples, no key function: a spoofed flood has
        # as many sources as half-open sockets, and tuples compare in C.
        top = [(ip, -n) for n, ip in _most(counts.syn_by_ip, TOP_SOURCES)]
        ports = [(port, -n) for n, port in _most(counts.syn_by_port, TOP_SOURCES)]
        sources = ", ".join(f"{ip} ({n})" for ip, n in top) or "none known"
        detail = f"Top sources: {sources}"
        if len(counts.syn_by_ip) > len(top):
            detail += f" of {len(counts.syn_by_ip)} addresses"
        if ports:
            detail += "; to port " + ", ".join(f"{port} ({n})" for port, n in ports)
        detail += ". Filter: state:syn_recv"
        if top and len(counts.syn_by_ip) >= SPREAD_SOURCES and top[0][1] < SPREAD_SHARE * count:
            detail += ". Spread over many addresses: likely spoofed; check that net.ipv4.tcp_syncookies is on"
        severity = "error" if limits.syn_recv > 0 and count >= limits.syn_recv else "warning"
        return [
            Alert(
                "syn_flood",
                severity,
                f"SYN flood? {count} half-open connections ({rise:+d})",
                detail,
                "state:syn_recv",
                self._raised_since("syn_flood", "", taken_at),
            )
        ]

    def _close_wait_leaks(self, taken_at: float) -> list[Alert]:
        limits = self.thresholds
        counts = self._counts
        history = self._cw_history
        if limits.close_wait <= 0:
            history.clear()
            self._leaking.clear()
            return []
        steps = max(1, limits.close_wait_refreshes)
        for pid in [pid for pid in history if pid not in counts.close_wait]:
            del history[pid]  # none left: the process closed them or exited
            self._leaking.discard(pid)
        keep = _half(limits.close_wait)
        for pid, count in counts.close_wait.items():
            seen = history.get(pid)
            if seen is None or seen.maxlen != steps + 1:
                seen = history[pid] = deque(seen or (), maxlen=steps + 1)
            seen.append(count)
            if pid in self._leaking:
                if count < keep:
                    self._leaking.discard(pid)
            elif count >= limits.close_wait and _rising(seen, steps):
                self._leaking.add(pid)
        worst = heapq.nsmallest(MAX_PER_KIND, self._leaking, key=lambda pid: (-counts.close_wait[pid], pid))
        alerts = []
        for pid in worst:
            count = counts.close_wait[pid]
            program = counts.programs.get(pid) or "?"
            seen = history[pid]
            growth = count - seen[0]
            span = len(seen) - 1
            if growth > 0:
                trend = f"rising for {span} refreshes (+{growth})"
            elif growth == 0:
                trend = f"none closed in {span} refreshes"
            else:
                trend = f"down {-growth} in {span} refreshes"
            alerts.append(
                Alert(
                    "close_wait_leak",
                    "warning",
                    f"CLOSE_WAIT leak? {program} (pid {pid}) holds {count} CLOSE_WAIT sockets",
                    f"{trend.capitalize()}: it is not closing sockets its peers closed. "
                    f"Filter: pid:{pid} state:close_wait",
                    f"pid:{pid} state:close_wait",
                    self._raised_since("close_wait_leak", str(pid), taken_at),
                    f"{pid}/{program}",
                )
            )
        return alerts

    def _remote_hosts(self, taken_at: float) -> list[Alert]:
        limit = self.thresholds.per_remote_ip
        counts = self._counts
        hot = self._hot_ips
        if limit <= 0:
            hot.clear()
            return []
        keep = _half(limit)
        by_ip = counts.by_ip
        # Only an address whose count moved can cross a level: the others keep their state.
        for ip in counts.touched_ips:
            if _is_loopback(ip):
                continue
            count = by_ip.get(ip, 0)
            if count >= limit:
                hot.add(ip)
            elif ip in hot and count < keep:
                hot.discard(ip)
        worst = [ip for _, ip in heapq.nsmallest(MAX_PER_KIND, ((-by_ip[ip], ip) for ip in hot))]
        alerts = []
        for index, ip in enumerate(worst):
            count = by_ip[ip]
            detail = f"{count} sockets have {ip} as their peer (the alert is at {limit})"
            half_open = counts.syn_by_ip.get(ip, 0)
            if half_open:
                detail += f", {half_open} of them half-open"
            detail += f". Filter: rip:{ip}"
            if index == 0 and len(hot) > len(worst):
                detail += f". {len(hot) - len(worst)} more hosts are over the limit too"
            alerts.append(
                Alert(
                    "remote_host",
                    "warning",
                    f"{ip}: {count} connections",
                    detail,
                    f"rip:{ip}",
                    self._raised_since("remote_host", ip, taken_at),
                    ip,
                )
            )
        return alerts

    # --- protocol counters -----------------------------------------------------------------------------------

    def update_counters(self, stats: StatsSnapshot) -> None:
        """Take one protocol statistics sample; a listen overflow alert shows in `active` at once."""
        values = {
            counter.name: counter.value
            for counter in stats.counters
            if counter.group == "TcpExt" and counter.name in LISTEN_COUNTERS
        }
        if not values:
            return  # this kernel, or this sample, has no such counters: nothing to compare
        previous, self._counter_values = self._counter_values, values
        if previous is None:
            return
        # From the values, not each counter's delta: right even if some samples never reached the engine. A
        # counter that went down was reset (another namespace): no movement.
        moved = {}
        for name, value in values.items():
            before = previous.get(name)
            if before is not None and value > before:
                moved[name] = value - before
        limit = self.thresholds.listen_drops
        if limit > 0 and moved and max(moved.values()) >= limit:
            since = self._listen_alert.since if self._listen_alert is not None else stats.taken_at
            self._listen_alert = self._listen_overflow(moved, since)
            self._listen_quiet = 0
        elif self._listen_alert is not None:
            self._listen_quiet += 1
            if self._listen_quiet >= LISTEN_HOLD or limit <= 0:
                self._listen_alert = None

    def _listen_overflow(self, moved: dict[str, int], since: float) -> Alert:
        dropped = max(moved.values())
        counters = ", ".join(f"{name} +{moved[name]}" for name in LISTEN_COUNTERS if name in moved)
        waiting = [sock for sock in self._counts.listeners.values() if sock.recv_q > 0]
        # Recv-Q of a listener is its accept queue; `backlog` its limit where the reader knows it (else 0). The
        # fullest first: by fill ratio where the backlog is known, else by length.
        waiting.sort(key=lambda sock: (-(sock.recv_q / sock.backlog if sock.backlog else 0), -sock.recv_q,
                                       sock.key))
        named = waiting[:TOP_SOURCES]
        if named:
            listeners = "; ".join(
                f"{_endpoint(sock.local_ip, sock.local_port)} {_owner(sock)}: {sock.recv_q} waiting"
                + (f" of a backlog of {sock.backlog}" if sock.backlog else "")
                for sock in named
            )
            ports = ",".join(str(port) for port in dict.fromkeys(sock.local_port for sock in named))
            filter_text = f"state:listen lport:{ports}"
            detail = (
                f"{counters}. Not accepted fast enough: {listeners}. The program is slow to accept(), or its "
                f"listen() backlog (capped by net.core.somaxconn) is too small. Filter: {filter_text}"
            )
        else:
            filter_text = "listen"
            detail = (
                f"{counters}, but no listening socket has connections waiting now; the queue filled between "
                "refreshes. Filter: listen, and watch Recv-Q"
            )
        return Alert(
            "listen_overflow",
            "error",
            f"Listen queue overflow: {dropped} connection attempts dropped",
            detail,
            filter_text,
            since,
        )

    # --- output ----------------------------------------------------------------------------------------------

    @property
    def active(self) -> list[Alert]:
        """The alerts now active: errors first, then by kind (floods, overflows, leaks, hosts), oldest first."""
        alerts = list(self._socket_alerts)
        if self._listen_alert is not None:
            alerts.append(self._listen_alert)
        alerts.sort(key=_alert_order)
        return alerts


def _most(counts: dict[Any, int], n: int) -> list[tuple[int, Any]]:
    """The n largest counts as (-count, key), the largest first, equal counts by key."""
    return heapq.nsmallest(n, ((-count, key) for key, count in counts.items()))


def _alert_order(alert: Alert) -> tuple[bool, int, float, str]:
    return alert.severity != "error", KINDS.index(alert.kind), alert.since, alert.title


def _is_loopback(ip: str) -> bool:
    """For the canonical peer text of insights.peer_keys: IPv4-mapped addresses arrive as plain IPv4."""
    return ip.startswith("127.") or ip == "::1"


def _rising(counts: deque[int], steps: int) -> bool:
    """Whether the count grew over the last `steps` refreshes without falling at any of them."""
    if len(counts) < steps + 1:
        return False
    return counts[-1] > counts[0] and all(later >= earlier for earlier, later in pairwise(counts))
