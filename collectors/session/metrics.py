"""What netscope tells Prometheus: the metric families, counted from the same diffs the screen gets, and capped.

`FAMILIES` is the contract with every dashboard and alert rule built on it: names, help and labels may be added
to, never renamed (README, "Metrics for Prometheus", lists them; a test compares its table with this one).

Counting follows the diffs (`SocketTally.apply`), so a refresh costs time in proportion to what changed, not to the
number of sockets; a frame (`build_frame`) then costs one step per group (port, program, network), not per socket.
Label cardinality is capped: in each family with a group label, the `top` groups with the most sockets keep their
own series and the rest are summed into one group labelled `other`, because a fleet's Prometheus pays for every
series and a busy host has thousands of remote networks.

Textual-free and prometheus_client-free: a frame is plain data; app/metrics/endpoint.py exposes it. Label text that
the system chose (program and container names) passes through the `label` function the caller gives, so that it is
escaped the way every other screen and output escapes it (widgets/formatting.py); series whose escaped labels
coincide are summed, never repeated.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from netscope.collectors.interfaces import InterfaceSnapshot
from netscope.collectors.model import SnapshotDiff, Socket, SocketKey
from netscope.collectors.protostats import StatsSnapshot
from netscope.collectors.session.alerts import Alert
from netscope.collectors.session.insights import peer_keys

OTHER = "other"  # the group the series beyond the cap are summed into
NO_OWNER = "-"  # process label of sockets with no known owner, as netstat's PID/Program column shows them
DEFAULT_TOP = 10
DEFAULT_INTERFACES = 64
MAX_TOP = 10_000


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # as Prometheus shows it (counters end in _total)
    kind: str  # "gauge", "counter" or "info"
    help: str
    labels: tuple[str, ...]
    group: str  # what `families` turns on and off; "self" is always on


# fmt: off
FAMILIES: tuple[Family, ...] = (
    Family("netscope_sockets", "gauge", "Sockets per protocol and state (TCP states as netstat names them, "
           "SYN_RECV including the kernel's NEW_SYN_RECV; UDP: UNCONN or ESTABLISHED)", ("proto", "state"),
           "sockets"),
    Family("netscope_listen_queue", "gauge", "Connections waiting to be accepted by a listening TCP socket "
           "(its Recv-Q)", ("proto", "address", "port", "process"), "listen"),
    Family("netscope_listen_backlog", "gauge", "The accept queue's limit of a listening TCP socket (its Send-Q: "
           "listen()'s backlog, capped by net.core.somaxconn)", ("proto", "address", "port", "process"), "listen"),
    Family("netscope_port_sockets", "gauge", "Sockets on each local port that something listens on, per state "
           "(UDP for every UDP socket)", ("port", "state"), "ports"),
    Family("netscope_process_sockets", "gauge", "Sockets per program and container or service, per state "
           "(process \"-\": no known owner)", ("process", "container", "state"), "processes"),
    Family("netscope_remote_sockets", "gauge", "Sockets per remote network (/24 for IPv4, /64 for IPv6), per "
           "state", ("network", "state"), "remotes"),
    Family("netscope_alert_active", "gauge", "1 while one of netscope's alerts is raised (syn_flood, "
           "listen_overflow, close_wait_leak, remote_host)", ("kind", "subject"), "alerts"),
    Family("netscope_interface_receive_bytes_total", "counter", "Bytes received by the interface",
           ("interface",), "interfaces"),
    Family("netscope_interface_transmit_bytes_total", "counter", "Bytes sent by the interface",
           ("interface",), "interfaces"),
    Family("netscope_interface_receive_packets_total", "counter", "Packets received by the interface",
           ("interface",), "interfaces"),
    Family("netscope_interface_transmit_packets_total", "counter", "Packets sent by the interface",
           ("interface",), "interfaces"),
    Family("netscope_interface_receive_errors_total", "counter", "Receive errors (netstat -i's RX-ERR)",
           ("interface",), "interfaces"),
    Family("netscope_interface_transmit_errors_total", "counter", "Transmit errors (netstat -i's TX-ERR)",
           ("interface",), "interfaces"),
    Family("netscope_interface_receive_drops_total", "counter", "Received packets dropped (netstat -i's RX-DRP)",
           ("interface",), "interfaces"),
    Family("netscope_interface_transmit_drops_total", "counter", "Packets dropped on sending (netstat -i's "
           "TX-DRP)", ("interface",), "interfaces"),
    Family("netscope_collect_seconds", "gauge", "CPU seconds the last refresh cost: reading sockets and owners "
           "(the collector worker, median of its last few) plus counting these metrics", (), "self"),
    Family("netscope_refresh_interval_seconds", "gauge", "Seconds between refreshes now (longer than asked when "
           "refreshing would cost more than --cpu-limit)", (), "self"),
    Family("netscope_refreshes_total", "counter", "Refreshes counted into these metrics", (), "self"),
    Family("netscope_refresh_failures_total", "counter", "Refreshes that could not read the sockets", (), "self"),
    Family("netscope_scrape_series", "gauge", "Series in this exposition (the caps keep it small)", (), "self"),
    Family("netscope_build", "info", "netscope's version and how it reads the kernel", ("version", "python",
           "parser"), "self"),
)

# `netstat -s` counters people alert on (group, kernel name) -> family. Counters the kernel does not have are left
# out of the exposition, not shown as 0.
NETSTAT_COUNTERS: dict[tuple[str, str], Family] = {
    (group, counter): Family(name, "counter", help_text, (), "netstat")
    for group, counter, name, help_text in (
        ("TcpExt", "ListenOverflows", "netscope_tcp_listen_overflows_total",
         "Times a listening socket's accept queue was full (TcpExt ListenOverflows)"),
        ("TcpExt", "ListenDrops", "netscope_tcp_listen_drops_total",
         "Connection attempts dropped by listening sockets, overflows included (TcpExt ListenDrops)"),
        ("Tcp", "RetransSegs", "netscope_tcp_retransmitted_segments_total", "TCP segments retransmitted "
         "(Tcp RetransSegs)"),
        ("TcpExt", "TCPTimeouts", "netscope_tcp_timeouts_total",
         "TCP retransmission timeouts (TcpExt TCPTimeouts)"),
        ("Tcp", "ActiveOpens", "netscope_tcp_active_opens_total",
         "Connections this host opened (Tcp ActiveOpens)"),
        ("Tcp", "PassiveOpens", "netscope_tcp_passive_opens_total",
         "Connections this host accepted (Tcp PassiveOpens)"),
        ("Tcp", "AttemptFails", "netscope_tcp_attempt_fails_total", "Connection attempts that failed (Tcp "
         "AttemptFails)"),
        ("Tcp", "EstabResets", "netscope_tcp_established_resets_total",
         "Established connections reset (Tcp EstabResets)"),
        ("Tcp", "InErrs", "netscope_tcp_in_errors_total", "TCP segments received in error (Tcp InErrs)"),
        ("Tcp", "OutRsts", "netscope_tcp_out_resets_total", "TCP resets sent (Tcp OutRsts)"),
        ("TcpExt", "SyncookiesSent", "netscope_tcp_syncookies_sent_total",
         "SYN cookies sent: the SYN queue was full (TcpExt SyncookiesSent)"),
        ("TcpExt", "SyncookiesFailed", "netscope_tcp_syncookies_failed_total",
         "SYN cookies that did not validate (TcpExt SyncookiesFailed)"),
        ("TcpExt", "TCPBacklogDrop", "netscope_tcp_backlog_drops_total",
         "Segments dropped because the socket's backlog was full (TcpExt TCPBacklogDrop)"),
        ("TcpExt", "TCPAbortOnMemory", "netscope_tcp_abort_on_memory_total",
         "Connections aborted for lack of memory (TcpExt TCPAbortOnMemory)"),
        ("TcpExt", "TCPAbortOnTimeout", "netscope_tcp_abort_on_timeout_total",
         "Connections aborted after too many retransmissions (TcpExt TCPAbortOnTimeout)"),
        ("Udp", "InErrors", "netscope_udp_in_errors_total", "UDP datagrams received in error (Udp InErrors)"),
        ("Udp", "NoPorts", "netscope_udp_no_ports_total",
         "UDP datagrams to a port nothing listens on (Udp NoPorts)"),
        ("Udp", "RcvbufErrors", "netscope_udp_receive_buffer_errors_total",
         "UDP datagrams dropped: the receive buffer was full (Udp RcvbufErrors)"),
        ("Udp", "SndbufErrors", "netscope_udp_send_buffer_errors_total",
         "UDP datagrams dropped: the send buffer was full (Udp SndbufErrors)"),
    )
}
# fmt: on
FAMILY_GROUPS: tuple[str, ...] = (
    "sockets", "listen", "ports", "processes", "remotes", "alerts", "interfaces", "netstat",
)  # fmt: skip
_BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}

# /proc/net/dev counters per interface family.
_INTERFACE_FIELDS: tuple[tuple[str, str], ...] = (
    ("netscope_interface_receive_bytes_total", "rx_bytes"),
    ("netscope_interface_transmit_bytes_total", "tx_bytes"),
    ("netscope_interface_receive_packets_total", "rx_packets"),
    ("netscope_interface_transmit_packets_total", "tx_packets"),
    ("netscope_interface_receive_errors_total", "rx_errors"),
    ("netscope_interface_transmit_errors_total", "tx_errors"),
    ("netscope_interface_receive_drops_total", "rx_dropped"),
    ("netscope_interface_transmit_drops_total", "tx_dropped"),
)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The endpoint's settings: `--metrics`, `--metrics-top`, `--metrics-families`, or the config's [metrics]."""

    address: str = "127.0.0.1:9850"
    top: int = DEFAULT_TOP  # groups per family with their own series; the rest are summed into "other"
    interfaces: int = DEFAULT_INTERFACES  # interfaces with their own series, the busiest; the rest "other"
    families: frozenset[str] = frozenset(FAMILY_GROUPS)


def families_problem(names: Iterable[str]) -> str | None:
    """Why a list of family groups cannot be used, or None."""
    unknown = [name for name in names if name not in FAMILY_GROUPS]
    if unknown:
        return f"unknown metric families {', '.join(map(repr, unknown))}; known: {', '.join(FAMILY_GROUPS)}"
    return None


def _bump(counts: dict[Any, int], key: object, delta: int) -> None:
    value = counts.get(key, 0) + delta
    if value:
        counts[key] = value
    else:
        del counts[key]  # only non-zero entries: a closed port or an exited program leaves no series behind


class SocketTally:
    """Every socket counted per family key, kept up to date from each SnapshotDiff (feed them all, in order)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.by_state: dict[tuple[str, str], int] = {}  # (proto, state)
        self.by_port: dict[tuple[bool, int, str], int] = {}  # (TCP?, local port, counter state)
        self.by_process: dict[tuple[str, str, str], int] = {}  # (program, container, counter state)
        self.by_network: dict[tuple[str, str], int] = {}  # (remote network, counter state)
        self.listening: dict[tuple[bool, int], int] = {}  # (TCP?, port) -> listening sockets on it
        self.listeners: dict[SocketKey, Socket] = {}  # TCP LISTEN sockets, for their queues

    def apply(self, diff: SnapshotDiff) -> None:
        if diff.first:
            self.reset()
        account = self._account
        for sock in diff.removed:
            account(sock, -1)
        for before, after in zip(diff.changed_before, diff.changed, strict=True):
            if (before.state == after.state and before.pid == after.pid and before.program == after.program
                    and before.container == after.container):
                if after.state == "LISTEN" and after.is_tcp:
                    self.listeners[after.key] = after  # only its queues moved
                continue
            account(before, -1)
            account(after, 1)
        for sock in diff.added:
            account(sock, 1)

    def _account(self, sock: Socket, delta: int) -> None:
        tcp = sock.is_tcp
        state = sock.counter_name
        _bump(self.by_state, (sock.proto, "SYN_RECV" if sock.state == "NEW_SYN_RECV" else sock.state), delta)
        _bump(self.by_port, (tcp, sock.local_port, state), delta)
        program = NO_OWNER if sock.pid is None else sock.program or "?"
        _bump(self.by_process, (program, sock.container, state), delta)
        peer = peer_keys(sock.remote_ip)
        if peer is not None:
            _bump(self.by_network, (peer[1], state), delta)
        if sock.is_listening:
            _bump(self.listening, (tcp, sock.local_port), delta)
            if tcp:
                if delta > 0:
                    self.listeners[sock.key] = sock
                else:
                    self.listeners.pop(sock.key, None)


@dataclass(slots=True)
class FrameFamily:
    family: Family
    samples: dict[tuple[str, ...], float]  # label values in `family.labels` order -> value


@dataclass(slots=True)
class FrameStatus:
    """What the feed knows about itself, for the "self" families."""

    collect_seconds: float = 0.0
    interval: float = 1.0
    refreshes: int = 0
    failures: int = 0
    build: dict[str, str] = field(default_factory=dict)  # version, python, parser


@dataclass(slots=True)
class MetricsFrame:
    taken_at: float
    families: list[FrameFamily]
    series: int


Label = Callable[[str], str]


def build_frame(
    tally: SocketTally,
    alerts: list[Alert],
    interfaces: InterfaceSnapshot | None,
    statistics: StatsSnapshot | None,
    settings: MetricsSettings,
    status: FrameStatus,
    taken_at: float,
    label: Label,
) -> MetricsFrame:
    """One exposition's worth of samples. `label` escapes and bounds text the system chose (program, container
    and interface names)."""
    on = settings.families
    top = settings.top
    families: list[FrameFamily] = []

    def add(name: str, samples: dict[tuple[str, ...], float]) -> None:
        families.append(FrameFamily(_BY_NAME[name], samples))

    if "sockets" in on:
        add("netscope_sockets", {key: float(count) for key, count in tally.by_state.items()})
    if "listen" in on:
        queues, backlogs = _listeners(tally.listeners.values(), top, label)
        add("netscope_listen_queue", queues)
        add("netscope_listen_backlog", backlogs)
    if "ports" in on:
        ports = [((str(port),), state, count) for (tcp, port, state), count in tally.by_port.items()
                 if (tcp, port) in tally.listening]
        add("netscope_port_sockets", _capped(ports, top, (OTHER,)))
    if "processes" in on:
        programs = [((label(program), label(container)), state, count)
                    for (program, container, state), count in tally.by_process.items()]
        add("netscope_process_sockets", _capped(programs, top, (OTHER, "")))
    if "remotes" in on:
        networks = [((network,), state, count) for (network, state), count in tally.by_network.items()]
        add("netscope_remote_sockets", _capped(networks, top, (OTHER,)))
    if "alerts" in on:
        add("netscope_alert_active", {(alert.kind, label(alert.subject)): 1.0 for alert in alerts})
    if "interfaces" in on and interfaces is not None:
        for name, samples in _interfaces(interfaces, settings.interfaces, label).items():
            add(name, samples)
    if "netstat" in on and statistics is not None:
        for counter in statistics.counters:
            wanted = NETSTAT_COUNTERS.get((counter.group, counter.name))
            if wanted is not None and counter.value >= 0:
                families.append(FrameFamily(wanted, {(): float(counter.value)}))
    add("netscope_collect_seconds", {(): status.collect_seconds})
    add("netscope_refresh_interval_seconds", {(): status.interval})
    add("netscope_refreshes_total", {(): float(status.refreshes)})
    add("netscope_refresh_failures_total", {(): float(status.failures)})
    build = _BY_NAME["netscope_build"]
    add("netscope_build", {tuple(status.build.get(name, "") for name in build.labels): 1.0})
    series = sum(len(family.samples) for family in families) + 1  # + netscope_scrape_series itself
    add("netscope_scrape_series", {(): float(series)})
    return MetricsFrame(taken_at, families, series)


def _capped(counts: Sequence[tuple[tuple[str, ...], str, int]], top: int, other: tuple[str, ...]
            ) -> dict[tuple[str, ...], float]:
    """(group labels, state, count) -> samples with the `top` groups by total sockets, the rest summed per state
    into the `other` group. Ties by label text, so the same counts always pick the same groups."""
    totals: dict[tuple[str, ...], int] = {}
    for group, _, count in counts:
        totals[group] = totals.get(group, 0) + count
    kept = set(heapq.nsmallest(top, totals, key=lambda group: (-totals[group], group)))
    samples: dict[tuple[str, ...], float] = {}
    for group, state, count in counts:
        key = (*(group if group in kept else other), state)
        samples[key] = samples.get(key, 0.0) + count
    return samples


def _listeners(listeners: Iterable[Socket], top: int, label: Label
               ) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    """Recv-Q and backlog per listener, the `top` with the most waiting kept (then by port), the rest summed into
    one `other` listener. SO_REUSEPORT listeners with the same labels are one series: their queues add up."""
    queues: dict[tuple[str, ...], float] = {}
    backlogs: dict[tuple[str, ...], float] = {}
    for sock in listeners:
        program = NO_OWNER if sock.pid is None else sock.program or "?"
        key: tuple[str, ...] = (sock.proto, sock.local_ip, str(sock.local_port), label(program))
        queues[key] = queues.get(key, 0.0) + sock.recv_q
        backlogs[key] = backlogs.get(key, 0.0) + sock.backlog
    kept = set(heapq.nsmallest(top, queues, key=lambda key: (-queues[key], int(key[2]), key)))
    if len(kept) == len(queues):
        return queues, backlogs
    other: tuple[str, ...] = (OTHER, OTHER, OTHER, OTHER)
    capped_queues: dict[tuple[str, ...], float] = {}
    capped_backlogs: dict[tuple[str, ...], float] = {}
    for key in queues:
        target = key if key in kept else other
        capped_queues[target] = capped_queues.get(target, 0.0) + queues[key]
        capped_backlogs[target] = capped_backlogs.get(target, 0.0) + backlogs[key]
    return capped_queues, capped_backlogs


def _interfaces(snapshot: InterfaceSnapshot, top: int, label: Label) -> dict[str, dict[tuple[str, ...], float]]:
    """Each counter family per interface: the `top` busiest by bytes keep their own series, the rest `other`."""
    busiest = heapq.nsmallest(
        top, snapshot.interfaces,
        key=lambda interface: (-(interface.counters.rx_bytes + interface.counters.tx_bytes), interface.name))
    kept = {interface.name for interface in busiest}
    out: dict[str, dict[tuple[str, ...], float]] = {name: {} for name, _ in _INTERFACE_FIELDS}
    for interface in snapshot.interfaces:
        key = (label(interface.name) if interface.name in kept else OTHER,)
        for name, attribute in _INTERFACE_FIELDS:
            samples = out[name]
            samples[key] = samples.get(key, 0.0) + getattr(interface.counters, attribute)
    return out
