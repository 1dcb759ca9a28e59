"""The data behind the "top" view: sockets grouped by remote host, remote network, local port or process, with
counts per state and the change since the last refresh, kept up to date from each `SnapshotDiff`.

What is counted:

* Every socket the counter's filter (`matches`) accepts, or every socket when it has none.
* `remote_ip` and `remote_net` count only sockets with a peer: their remote address is not the wildcard
  (0.0.0.0, ::, ::ffff:0.0.0.0), so LISTEN sockets and unconnected UDP sockets are left out. The address, not the
  port, decides, because `rip:` in the filter language tests the address alone. An IPv4-mapped address
  (::ffff:10.0.0.5, an IPv4 peer of a dual-stack socket) counts as its IPv4 address, as `rip:10.0.0.5` matches
  both forms. Networks are /24 for IPv4 and /64 for IPv6.
* `local_port` counts every socket on the port, whatever its protocol or state: the listener and the
  connections it accepted, and a client socket's ephemeral port (`lport:` cannot tell them apart either).
* `process` counts every socket by owning PID; sockets with no known owner (TIME_WAIT and other sockets the
  kernel holds, other users' sockets without root) form one group, "- (no owner)".

States are `Socket.counter_name`: UDP sockets are "UDP", NEW_SYN_RECV is "SYN_RECV".

Each group's `filter_text` selects exactly that group's sockets among the counted ones; with a filter set, the
group is the sockets matching both the filter and `filter_text` (type them together: "<filter> <filter_text>").
The filter language has no "no owner" term, so the no-owner group's text lists the owners to leave out
(`!pid:1,2,3`): exact for the refresh it was made in, but long on a machine with many processes.

`change` is a group's total now minus its total at the previous `apply_diff` (0 after a first diff or a recount).
A group whose last socket went away is still returned for the one refresh in which it emptied, with total 0 and
its negative change, so that sorting by change shows a host that just dropped all its connections; it is gone
from the next refresh on.

The counts are updated from each diff's added, removed and changed sockets: a refresh costs time in proportion
to what changed, not to the number of sockets, so the view stays cheap at 100,000 sockets.
"""

from __future__ import annotations

import heapq
import ipaddress
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from netscope.collectors.model import COUNTED_STATES, TCP_STATES, Snapshot, SnapshotDiff, Socket

GROUPINGS: tuple[str, ...] = ("remote_ip", "remote_net", "local_port", "process")
GROUPING_LABELS: dict[str, str] = {
    "remote_ip": "Remote host",
    "remote_net": "Remote network",
    "local_port": "Local port",
    "process": "Process",
}
NO_OWNER = "- (no owner)"
SORTS: tuple[str, ...] = ("total", "change", "key")
# Every name groups() sorts by besides SORTS: the counter names a socket can have.
SORT_STATES: frozenset[str] = frozenset(COUNTED_STATES) | (frozenset(TCP_STATES.values()) - {"NEW_SYN_RECV"})

IPV4_PREFIX = 24
IPV6_PREFIX = 64

Matcher = Callable[[Socket], bool]
# (address key, network key, address sort key, network sort key); None for a socket without a peer.
PeerKeys = tuple[str, str, tuple[int, int], tuple[int, int]] | None

_PEER_CACHE_LIMIT = 200_000  # distinct remote addresses remembered; dropped whole beyond, as filters.py does
_peer_cache: dict[str, PeerKeys] = {}


def peer_keys(address: str) -> PeerKeys:
    """The remote host and network an address groups under, or None for no peer (a wildcard or unparsable one).

    Cached: the same few addresses recur in every snapshot, and ipaddress is slow next to a dict lookup."""
    try:
        return _peer_cache[address]
    except KeyError:
        pass
    keys = _compute_peer_keys(address)
    if len(_peer_cache) >= _PEER_CACHE_LIMIT:
        _peer_cache.clear()
    _peer_cache[address] = keys
    return keys


def _compute_peer_keys(address: str) -> PeerKeys:
    try:
        # IPv4 first, without ipaddress (ten times slower): most peers are IPv4, and a first refresh of 100,000
        # sockets may bring 20,000 new ones. inet_pton takes only the dotted-quad form ipaddress takes.
        packed = socket.inet_pton(socket.AF_INET, address)
    except (OSError, ValueError):
        pass
    else:
        value = int.from_bytes(packed, "big")
        if not value:
            return None  # 0.0.0.0: no peer
        net = value >> (32 - IPV4_PREFIX) << (32 - IPV4_PREFIX)
        net_text = f"{socket.inet_ntop(socket.AF_INET, net.to_bytes(4, 'big'))}/{IPV4_PREFIX}"
        return address, net_text, (4, value), (4, net)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None  # the filter matches nothing for it either
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if parsed.is_unspecified:
        return None
    value = int(parsed)
    if parsed.version == 4:
        host = str(parsed)
        net = value >> (32 - IPV4_PREFIX) << (32 - IPV4_PREFIX)
        net_text = f"{ipaddress.IPv4Address(net)}/{IPV4_PREFIX}"
    else:
        host = str(ipaddress.IPv6Address(value))  # from the number: no %scope; compressed, which rip: parses
        net = value >> (128 - IPV6_PREFIX) << (128 - IPV6_PREFIX)
        net_text = f"{ipaddress.IPv6Address(net)}/{IPV6_PREFIX}"
    return host, net_text, (parsed.version, value), (parsed.version, net)


def remote_net_filter(net_key: str) -> str:
    """The filter text for a remote network group, leaving out what `rip:NET` would match but the group does not
    count: the wildcard address (no peer), and IPv4-mapped addresses inside ::/64 (counted as IPv4)."""
    if net_key == f"0.0.0.0/{IPV4_PREFIX}":
        return f"rip:{net_key} !rip:0.0.0.0"
    if net_key == f"::/{IPV6_PREFIX}":
        # ::ffff:a.b.c.d is in ::/64 too; `rip:0.0.0.0/0` matches exactly the mapped ones among IPv6 addresses.
        return f"rip:{net_key} !rip:0.0.0.0/0 !rip:::"
    return f"rip:{net_key}"


@dataclass(slots=True)
class Group:
    grouping: str
    key: str  # what is shown: "10.0.0.5", "10.0.0.0/24", "2001:db8::/64", "8080", "nginx (1234)", "- (no owner)"
    filter_text: str  # filter-language text selecting exactly this group's sockets (module docstring)
    total: int
    states: dict[str, int]  # by Socket.counter_name; states with no socket are left out
    change: int  # total now minus total at the previous update (0 on the first)


@dataclass(slots=True)
class _Tally:
    """One grouping's counts. Keys are the address or network text, the port number, or the PID (None: no
    owner)."""

    totals: dict[Any, int] = field(default_factory=dict)
    # Per key, its counts by state; or, where every socket of the group is in one state (most groups: an ephemeral
    # port's one socket, a client's connections), that state's name, its count being the total. A dict per group
    # was 3 MB at 50,000 connections for the port groups alone.
    states: dict[Any, str | dict[str, int]] = field(default_factory=dict)
    # The totals at the previous update of the keys touched since: what `change` is measured from.
    before: dict[Any, int] = field(default_factory=dict)

    def bump(self, key: object, state: str, delta: int) -> None:
        totals = self.totals
        total = totals.get(key, 0)
        if key not in self.before:
            self.before[key] = total
        totals[key] = total + delta
        held = self.states.get(key)
        if held is None or (isinstance(held, str) and held == state) or not total:
            if total + delta:
                self.states[key] = state
            else:
                self.states.pop(key, None)
            return
        states = {held: total} if isinstance(held, str) else held
        count = states.get(state, 0) + delta
        if count:
            states[state] = count
        else:
            del states[state]
        self.states[key] = next(iter(states)) if len(states) == 1 else states

    def state_counts(self, key: object) -> dict[str, int]:
        """The key's counts by state (states with no socket left out), as a dict of its own."""
        held = self.states.get(key)
        if held is None:
            return {}
        return {held: self.totals[key]} if isinstance(held, str) else dict(held)

    def state_count(self, key: object, state: str) -> int:
        held = self.states.get(key)
        if isinstance(held, str):
            return self.totals[key] if held == state else 0
        return held.get(state, 0) if held is not None else 0

    def start_tick(self) -> list[Any]:
        """Forget the groups that emptied during the last update; return their keys."""
        gone = [key for key in self.before if not self.totals.get(key)]
        for key in gone:
            self.totals.pop(key, None)
            self.states.pop(key, None)
        self.before.clear()
        return gone

    def change(self, key: object) -> int:
        total = self.totals[key]
        return total - self.before.get(key, total)


class GroupCounter:
    """Per-group per-state counts for all four groupings, maintained incrementally from SnapshotDiffs (O(changes)
    per refresh, not O(sockets)) so it stays cheap at 100,000 sockets.

    Feed it every diff, in order: a non-first diff is applied to the counts of the one before."""

    def __init__(self, matches: Matcher | None = None) -> None:
        self._matches = matches
        self._tallies: dict[str, _Tally] = {name: _Tally() for name in GROUPINGS}
        self._programs: dict[int, str] = {}  # PID -> program name, for the process groups' labels
        self._snapshot: Snapshot | None = None
        # groups() answers since the counts last moved: on an idle server every refresh asks the same questions,
        # and each answer picks the top few of tens of thousands of groups (12 ms a refresh at 100,000 sockets).
        self._answers: dict[tuple[str, str, int | None], list[Group]] = {}
        # While a filter is on, the counts of every socket too, fed the same diffs: clearing the filter takes
        # them back instead of recounting every socket (90 ms at 100,000 sockets, keys unanswered meanwhile).
        self._unfiltered: GroupCounter | None = None

    # --- feeding ---------------------------------------------------------------------------------------------

    def apply_diff(self, diff: SnapshotDiff) -> None:
        self._snapshot = diff.snapshot
        if diff.first:
            self._unfiltered = None
            self._recount(diff.snapshot.sockets.values())
            return
        if self._unfiltered is not None:
            self._unfiltered.apply_diff(diff)
        if any(tally.before for tally in self._tallies.values()):
            self._answers.clear()  # the last refresh's changes, and the groups it emptied, are forgotten now
        for tally in self._tallies.values():
            gone = tally.start_tick()
            if tally is self._tallies["process"]:
                for pid in gone:
                    if pid is not None:
                        self._programs.pop(pid, None)
        matches = self._matches
        account = self._account
        for sock in diff.added:
            if matches is None or matches(sock):
                account(sock, 1)
        for sock in diff.removed:
            # The removed socket is the version last counted, so the filter says what it said then.
            if matches is None or matches(sock):
                account(sock, -1)
        for before, after in zip(diff.changed_before, diff.changed, strict=True):
            if (
                matches is None
                and before.pid == after.pid
                and before.program == after.program
                and before.counter_name == after.counter_name
            ):
                continue  # only queues changed: no count moves (a filter might care about anything else)
            if matches is None or matches(before):
                account(before, -1)
            if matches is None or matches(after):
                account(after, 1)
        if any(tally.before for tally in self._tallies.values()):
            self._answers.clear()

    def set_filter(self, matches: Matcher | None, snapshot: Snapshot | None) -> None:
        """Count only the sockets `matches` accepts (None: all), recounting `snapshot` (None: the last one fed)."""
        for _part in self.set_filter_in_parts(matches, snapshot, part=0):
            pass

    def set_filter_in_parts(self, matches: Matcher | None, snapshot: Snapshot | None, part: int) -> Iterator[None]:
        """set_filter(), recounting `part` sockets at a time (0: all at once) and yielding between parts; the
        counts until the last part are those from before. Feed no diff until it is done."""
        snapshot = snapshot if snapshot is not None else self._snapshot
        unfiltered = self._unfiltered
        if matches is None and unfiltered is not None and unfiltered._snapshot is snapshot:
            # Kept up to date with every diff since the filter came on: what a recount would give.
            self._take_counts_of(unfiltered)
            self._matches = None
            self._unfiltered = None
            return
        recount = GroupCounter(matches)
        recount._snapshot = snapshot
        sockets = list(snapshot.sockets.values()) if snapshot is not None else []
        part = part or max(1, len(sockets))
        for start in range(0, len(sockets), part):
            if start:
                yield
            recount._count(sockets[start:start + part])
        if self._matches is None and matches is not None and snapshot is self._snapshot:
            self._unfiltered = GroupCounter()
            self._unfiltered._take_counts_of(self)
        elif matches is None or snapshot is not self._snapshot:
            self._unfiltered = None  # counts of another snapshot than the one fed: a recount is the truth
        self._matches = matches
        self._take_counts_of(recount)

    def _take_counts_of(self, other: GroupCounter) -> None:
        # A recount makes new tallies: `other`'s are shared with no one from here on.
        self._tallies, self._programs, self._snapshot = other._tallies, other._programs, other._snapshot
        self._answers = {}

    def first_in_parts(self, diff: SnapshotDiff, size: int) -> Iterator[None]:
        """apply_diff of a first diff, `size` sockets at a time, yielding between parts: the app counts a big first
        load over several turns of its event loop, and answers keys in between (100,000 sockets are 95 ms in one
        go, measured). Until the last part the counts are those of the sockets counted so far."""
        self._snapshot = diff.snapshot
        self._unfiltered = None
        sockets = list(diff.snapshot.sockets.values())
        self._begin_recount()
        for start in range(0, len(sockets), size):
            if start:
                yield
            self._count(sockets[start:start + size])

    def _recount(self, sockets: Iterable[Socket]) -> None:
        """Count from scratch."""
        self._begin_recount()
        self._count(list(sockets))

    def _begin_recount(self) -> None:
        # A recount is a new baseline: `before` stays empty, so no change to report.
        self._tallies = {grouping: _Tally() for grouping in GROUPINGS}
        self._answers.clear()
        self._programs = {}

    def _count(self, sockets: list[Socket]) -> None:
        """Add `sockets` to the tallies. Not via _account: tallying (key, state) pairs with Counter, which counts
        in C, is about twice as fast, and a recount runs on every filter change over every socket."""
        matches = self._matches
        counted = [sock for sock in sockets if matches(sock)] if matches is not None else sockets
        states = [sock.counter_name for sock in counted]
        peers = [peer_keys(sock.remote_ip) for sock in counted]
        pairs: dict[str, Counter[tuple[Any, str]]] = {
            "remote_ip": Counter((peer[0], state) for peer, state in zip(peers, states, strict=True) if peer),
            "remote_net": Counter((peer[1], state) for peer, state in zip(peers, states, strict=True) if peer),
            "local_port": Counter(zip([sock.local_port for sock in counted], states, strict=True)),
            "process": Counter(zip([sock.pid for sock in counted], states, strict=True)),
        }
        for grouping, counts in pairs.items():
            tally = self._tallies[grouping]
            totals, by_state = tally.totals, tally.states
            for (key, state), count in counts.items():
                total = totals.get(key, 0)
                totals[key] = total + count
                found = by_state.get(key)
                if found is None:
                    by_state[key] = state  # one state so far (see _Tally.states)
                elif isinstance(found, str):
                    if found != state:  # (a part before counted this key in this state: still one state)
                        by_state[key] = {found: total, state: count}
                else:
                    found[state] = found.get(state, 0) + count
        self._programs.update((sock.pid, sock.program) for sock in counted if sock.pid is not None)

    def _account(self, sock: Socket, delta: int) -> None:
        state = sock.counter_name
        tallies = self._tallies
        peer = peer_keys(sock.remote_ip)
        if peer is not None:
            tallies["remote_ip"].bump(peer[0], state, delta)
            tallies["remote_net"].bump(peer[1], state, delta)
        tallies["local_port"].bump(sock.local_port, state, delta)
        pid = sock.pid
        tallies["process"].bump(pid, state, delta)
        if delta > 0 and pid is not None:
            self._programs[pid] = sock.program  # the newest name wins: a process may exec another program

    # --- reading ---------------------------------------------------------------------------------------------

    def count(self, grouping: str) -> int:
        """How many groups `groups(grouping)` returns, without building them."""
        return len(self._tally(grouping).totals)

    def groups(self, grouping: str, sort: str = "total", limit: int | None = None) -> list[Group]:
        """The groups of one grouping, sorted: counts ("total", "change", or a state such as "ESTABLISHED") from
        the largest, "key" in address, port or program order; ties in that key order. `limit`: the first few
        only, found without sorting them all."""
        question = (grouping, sort, limit)
        answer = self._answers.get(question)
        if answer is None:
            answer = self._answers[question] = self._grouped(grouping, sort, limit)
        return list(answer)

    def _grouped(self, grouping: str, sort: str, limit: int | None) -> list[Group]:
        tally = self._tally(grouping)
        if sort not in SORTS and sort not in SORT_STATES:
            known = ", ".join(COUNTED_STATES)
            raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(SORTS)} or a state ({known})")
        order = self._key_order(grouping)
        totals = tally.totals
        sort_key: Callable[[Any], Any]
        if sort == "total":
            sort_key = lambda key: (-totals[key], order(key))  # noqa: E731
        elif sort == "change":
            sort_key = lambda key: (-tally.change(key), order(key))  # noqa: E731
        elif sort == "key":
            sort_key = order
        else:
            count_in = tally.state_count
            sort_key = lambda key: (-count_in(key, sort), order(key))  # noqa: E731
        if limit is not None and limit < len(totals):
            keys = heapq.nsmallest(max(0, limit), totals, key=sort_key)
        else:
            keys = sorted(totals, key=sort_key)
        return [self._group(grouping, tally, key) for key in keys]

    def _tally(self, grouping: str) -> _Tally:
        tally = self._tallies.get(grouping)
        if tally is None:
            raise ValueError(f"unknown grouping {grouping!r}; expected one of {', '.join(GROUPINGS)}")
        return tally

    def _key_order(self, grouping: str) -> Callable[[Any], Any]:
        if grouping == "remote_ip":
            return _address_order
        if grouping == "remote_net":
            return _network_order
        if grouping == "local_port":
            return lambda key: key
        programs = self._programs
        # Programs by name, then PID; the no-owner group last.
        return lambda pid: (1, "", 0) if pid is None else (0, programs.get(pid, "").lower(), pid)

    def _group(self, grouping: str, tally: _Tally, key: Any) -> Group:
        if grouping == "remote_ip":
            label, filter_text = key, f"rip:{key}"
        elif grouping == "remote_net":
            label, filter_text = key, remote_net_filter(key)
        elif grouping == "local_port":
            label, filter_text = str(key), f"lport:{key}"
        elif key is None:
            label, filter_text = NO_OWNER, self._no_owner_filter(tally)
        else:
            label, filter_text = f"{self._programs.get(key) or '?'} ({key})", f"pid:{key}"
        return Group(grouping, label, filter_text, tally.totals[key], tally.state_counts(key), tally.change(key))

    @staticmethod
    def _no_owner_filter(tally: _Tally) -> str:
        owners = sorted(pid for pid, total in tally.totals.items() if pid is not None and total)
        # Every counted socket with an owner is in one of these PIDs' groups, so "none of them" is "no owner".
        return "!pid:" + ",".join(map(str, owners)) if owners else ""


def _address_order(text: str) -> tuple[int, int]:
    keys = peer_keys(text)
    return keys[2] if keys is not None else (0, 0)


@lru_cache(maxsize=1 << 16)
def _network_order(text: str) -> tuple[int, int]:
    net = ipaddress.ip_network(text)
    return net.version, int(net.network_address)
