"""Views 2-5 in a recording: interfaces, statistics and multicast groups (one chain) and routes (another), each
as a whole entry or a change against the last, and back (the format is in fileformat.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from netscope.collectors.interfaces import Interface, InterfaceCounters, InterfaceSnapshot
from netscope.collectors.multicast import Membership, MulticastSnapshot
from netscope.collectors.protostats import ProtocolCounter, StatsSnapshot
from netscope.collectors.recording.fileformat import (
    _Bad,
    _bool,
    _float,
    _floats,
    _int,
    _list,
    _object,
    _str,
    _strs,
)
from netscope.collectors.recording.table_codecs import decode_conntrack, decode_unix
from netscope.collectors.routes import Route, RouteSnapshot
from netscope.collectors.view_data import ConntrackSnapshot, UnixRows, ViewData

# --- encoding views 2-5 ------------------------------------------------------------------------------------------
# Each part has an entry function, (previous or None, new) -> JSON object, and a decoding function, (JSON object,
# previous or None) -> snapshot. Decoding builds new objects and never changes the previous snapshot: it may have
# been handed out already.

_COUNTERS = (
    "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo", "rx_frame", "rx_multicast",
    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_fifo", "tx_collisions", "tx_carrier",
)  # fmt: skip
_RATE_COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")  # what the four rates divide


def _divisor(pairs: list[tuple[int, float]]) -> float | None:
    """The elapsed time e with change / e == rate for the most (change, rate) pairs, or None if there are none.

    The collectors divide every change of one sample by the same elapsed time, so recording e once reproduces
    all their rates exactly. e is found from a rate by dividing back, which may be an ulp off; the neighbours are
    tried too, and the writer records any rate e does not give as it is."""
    best, best_count, tried = None, 0, set()
    for change, rate in pairs[:3]:
        guess = change / rate
        candidates = [guess]
        for direction in (math.inf, -math.inf):
            step = guess
            for _ in range(2):
                step = math.nextafter(step, direction)
                candidates.append(step)
        for candidate in candidates:
            if candidate in tried or not (candidate > 0 and math.isfinite(candidate)):
                continue
            tried.add(candidate)
            count = sum(1 for n, r in pairs if n / candidate == r)
            if count > best_count:
                best, best_count = candidate, count
                if count == len(pairs):
                    return best
    return best


def _counter_values(counters: InterfaceCounters) -> list[int]:
    return [getattr(counters, name) for name in _COUNTERS]


def _interface_rates(before: InterfaceCounters, now: InterfaceCounters, elapsed: float) -> tuple[float, ...]:
    # As InterfaceCollector computes them: a counter that went backwards gives 0.0.
    return tuple(
        (getattr(now, name) - getattr(before, name)) / elapsed if getattr(now, name) >= getattr(before, name)
        else 0.0
        for name in _RATE_COUNTERS
    )  # fmt: skip


def _rates(interface: Interface) -> tuple[float, ...]:
    return (interface.rx_bytes_per_s, interface.tx_bytes_per_s, interface.rx_packets_per_s,
            interface.tx_packets_per_s)  # fmt: skip


def _static(interface: Interface) -> list[Any]:
    i = interface
    return [i.index, i.up, i.running, i.mtu, i.flags, i.speed_mbps, i.mac, i.ipv4, i.ipv6, i.operstate]


def _interface_row(interface: Interface) -> list[Any]:
    *static, operstate = _static(interface)
    i = interface
    return [i.name, *static, _counter_values(i.counters), *_rates(i), i.rx_history, i.tx_history, operstate]


def _history_code(before: list[float], now: list[float], rate: float) -> int | list[float]:
    """-1: unchanged; n: `before` without its first n values, then `rate` (the usual: one sample more); else the
    whole list."""
    if now == before:
        return -1
    if now and now[-1] == rate:
        kept = len(now) - 1
        dropped = len(before) - kept
        if dropped >= 0 and now[:kept] == before[dropped:]:
            return dropped
    return now


def _interfaces_entry(before: InterfaceSnapshot | None, now: InterfaceSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if before is None:
        body["x"] = [_interface_row(interface) for interface in now.interfaces]
    else:
        body["d"] = 1
        where: dict[str, int] = {}
        for position, interface in enumerate(before.interfaces):
            where.setdefault(interface.name, position)
        pairs: list[tuple[int, float]] = []
        for interface in now.interfaces:
            if (found := where.get(interface.name)) is not None:
                old = before.interfaces[found].counters
                for name, rate in zip(_RATE_COUNTERS, _rates(interface), strict=True):
                    change = getattr(interface.counters, name) - getattr(old, name)
                    if change > 0 and rate:
                        pairs.append((change, rate))
        elapsed = _divisor(pairs)
        items: list[Any] = []
        for interface in now.interfaces:
            index = where.get(interface.name)
            if index is None:
                items.append(_interface_row(interface))
                continue
            old_interface = before.interfaces[index]
            static = _static(interface)
            rates = _rates(interface)
            derived = _interface_rates(old_interface.counters, interface.counters, elapsed or 1.0)
            items.append([
                index,
                None if static == _static(old_interface) else static,
                [a - b for a, b in zip(_counter_values(interface.counters),
                                       _counter_values(old_interface.counters), strict=True)],
                None if derived == rates else list(rates),
                _history_code(old_interface.rx_history, interface.rx_history, interface.rx_bytes_per_s),
                _history_code(old_interface.tx_history, interface.tx_history, interface.tx_bytes_per_s),
            ])  # fmt: skip
        if elapsed is not None:
            body["e"] = elapsed
        body["x"] = items
    if now.appeared:
        body["a"] = now.appeared
    if now.disappeared:
        body["g"] = now.disappeared
    if now.warnings:
        body["w"] = now.warnings
    return body


def _decode_static(value: object) -> dict[str, Any]:
    index, up, running, mtu, flags, speed, mac, ipv4, ipv6, operstate = _list(value, 10)
    return {
        "index": _int(index), "up": _bool(up), "running": _bool(running), "mtu": _int(mtu), "flags": _str(flags),
        "speed_mbps": None if speed is None else _int(speed), "mac": _str(mac), "ipv4": _strs(ipv4),
        "ipv6": _strs(ipv6), "operstate": _str(operstate),
    }  # fmt: skip


def _decode_counters(value: object) -> InterfaceCounters:
    return InterfaceCounters(*(_int(v) for v in _list(value, len(_COUNTERS))))


def _decode_interface_row(row: list[Any]) -> Interface:
    name, *static, counters, rx, tx, rxp, txp, rx_history, tx_history, operstate = _list(row, 18)
    fields = _decode_static([*static, operstate])
    return Interface(
        name=_str(name), counters=_decode_counters(counters), rx_bytes_per_s=_float(rx), tx_bytes_per_s=_float(tx),
        rx_packets_per_s=_float(rxp), tx_packets_per_s=_float(txp), rx_history=_floats(rx_history),
        tx_history=_floats(tx_history), **fields,
    )  # fmt: skip


def _decode_history(code: object, before: list[float], rate: float) -> list[float]:
    if type(code) is int:
        if code == -1:
            return list(before)
        if not 0 <= code <= len(before):
            raise _Bad("a history drops more samples than it had")
        return [*before[code:], rate]
    return _floats(code)


def _decode_interfaces(body: object, before: InterfaceSnapshot | None) -> InterfaceSnapshot:
    body = _object(body)
    change = "d" in body
    if change and before is None:
        raise _Bad("interfaces are given as a change with nothing before them")
    elapsed = _float(body.get("e", 1.0))
    if elapsed <= 0:
        raise _Bad("a sample's elapsed time is not positive")
    interfaces: list[Interface] = []
    for item in _list(body["x"]):
        if type(item) is list and item and type(item[0]) is str:
            interfaces.append(_decode_interface_row(item))
            continue
        if not change or before is None:
            raise _Bad("an interface is given as a change with nothing before it")
        index, static, changes, rates, rx_history, tx_history = _list(item, 6)
        index = _int(index)
        if not 0 <= index < len(before.interfaces):
            raise _Bad("an interface change refers to no interface")
        old = before.interfaces[index]
        fields = _decode_static(_static(old) if static is None else static)
        counters = InterfaceCounters(*(
            a + _int(b) for a, b in zip(_counter_values(old.counters), _list(changes, len(_COUNTERS)), strict=True)
        ))  # fmt: skip
        if rates is None:
            rx, tx, rxp, txp = _interface_rates(old.counters, counters, elapsed)
        else:
            rx, tx, rxp, txp = (_float(rate) for rate in _list(rates, 4))
        interfaces.append(Interface(
            name=old.name, counters=counters, rx_bytes_per_s=rx, tx_bytes_per_s=tx, rx_packets_per_s=rxp,
            tx_packets_per_s=txp, rx_history=_decode_history(rx_history, old.rx_history, rx),
            tx_history=_decode_history(tx_history, old.tx_history, tx), **fields,
        ))  # fmt: skip
    return InterfaceSnapshot(
        taken_at=_float(body["t"]), interfaces=interfaces, appeared=_strs(body.get("a", [])),
        disappeared=_strs(body.get("g", [])), warnings=_strs(body.get("w", [])),
    )  # fmt: skip


def _same_counters(before: StatsSnapshot, now: StatsSnapshot) -> bool:
    return len(before.counters) == len(now.counters) and all(
        a.group == b.group and a.name == b.name and a.label == b.label and a.is_gauge == b.is_gauge
        for a, b in zip(before.counters, now.counters, strict=True)
    )


def _expected_delta(change: int, gauge: bool) -> int:
    # As ProtocolStatsCollector computes it: a running count that went down (a reset) moved by 0.
    return change if gauge or change >= 0 else 0


def _statistics_entry(before: StatsSnapshot | None, now: StatsSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if before is None or not _same_counters(before, now):
        body["c"] = [[c.group, c.name, c.value, c.delta, c.rate, c.label, c.is_gauge] for c in now.counters]
    else:
        body["d"] = 1
        elapsed = _divisor([(c.delta, c.rate) for c in now.counters if c.delta and c.rate])
        moved: list[int] = []
        deltas: list[Any] = []
        rates: list[Any] = []
        last = -1
        for index, (old, new) in enumerate(zip(before.counters, now.counters, strict=True)):
            change = new.value - old.value
            if change:
                moved += [index - last - 1, change]
                last = index
            if new.delta != _expected_delta(change, new.is_gauge):
                deltas += [index, new.delta]
            if new.rate != (new.delta / elapsed if new.delta and elapsed else 0.0):
                rates += [index, new.rate]
        if elapsed is not None:
            body["e"] = elapsed
        if moved:
            body["v"] = moved
        if deltas:
            body["x"] = deltas
        if rates:
            body["q"] = rates
    if now.warnings:
        body["w"] = now.warnings
    return body


def _pairs(value: object) -> Iterator[tuple[object, object]]:
    flat = _list(value)
    if len(flat) % 2:
        raise _Bad("a list of pairs has an odd length")
    return zip(flat[::2], flat[1::2], strict=True)


def _decode_statistics(body: object, before: StatsSnapshot | None) -> StatsSnapshot:
    body = _object(body)
    taken_at = _float(body["t"])
    warnings = _strs(body.get("w", []))
    if "d" not in body:
        counters = []
        for row in _list(body["c"]):
            group, name, value, delta, rate, label, gauge = _list(row, 7)
            counters.append(ProtocolCounter(
                _str(group), _str(name), _int(value), _int(delta), _float(rate), _str(label), _bool(gauge)
            ))  # fmt: skip
        return StatsSnapshot(taken_at=taken_at, counters=counters, warnings=warnings)
    if before is None:
        raise _Bad("statistics are given as a change with nothing before them")
    old = before.counters
    changes: dict[int, int] = {}
    index = -1
    for skip, change in _pairs(body.get("v", [])):
        index += _int(skip) + 1
        if _int(skip) < 0 or index >= len(old):
            raise _Bad("a counter change refers to no counter")
        changes[index] = _int(change)
    deltas = {_int(i): _int(d) for i, d in _pairs(body.get("x", []))}
    rates = {_int(i): _float(r) for i, r in _pairs(body.get("q", []))}
    elapsed = _float(body["e"]) if "e" in body else None
    if elapsed is not None and elapsed <= 0:
        raise _Bad("a sample's elapsed time is not positive")
    counters = []
    for index, counter in enumerate(old):
        change = changes.get(index, 0)
        value = counter.value + change
        delta = deltas.get(index)
        if delta is None:
            delta = _expected_delta(change, counter.is_gauge)
        rate = rates.get(index)
        if rate is None:
            rate = delta / elapsed if delta and elapsed else 0.0
        if (value, delta, rate) == (counter.value, counter.delta, counter.rate):
            counters.append(counter)  # frozen: safe to share
        else:
            counters.append(ProtocolCounter(counter.group, counter.name, value, delta, rate, counter.label,
                                            counter.is_gauge))  # fmt: skip
    return StatsSnapshot(taken_at=taken_at, counters=counters, warnings=warnings)


def _multicast_entry(before: MulticastSnapshot | None, now: MulticastSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at}
    if before is not None and before.memberships == now.memberships:
        body["d"] = 1
    else:
        body["g"] = [[m.interface, m.family, m.group, m.users] for m in now.memberships]
    if now.warnings:
        body["w"] = now.warnings
    return body


def _decode_multicast(body: object, before: MulticastSnapshot | None) -> MulticastSnapshot:
    body = _object(body)
    if "d" in body:
        if before is None:
            raise _Bad("multicast groups are given as unchanged with nothing before them")
        memberships = list(before.memberships)  # frozen: safe to share
    else:
        memberships = []
        for row in _list(body["g"]):
            interface, family, group, users = _list(row, 4)
            memberships.append(Membership(_str(interface), _int(family), _str(group), _int(users)))
    warnings = _strs(body.get("w", []))
    return MulticastSnapshot(taken_at=_float(body["t"]), memberships=memberships, warnings=warnings)


def _route_row(r: Route) -> list[Any]:
    return [r.family, r.destination, r.gateway, r.interface, r.flags, r.metric, r.protocol, r.scope, r.table,
            r.preferred_source, r.type, r.nexthop]  # fmt: skip


_ROUTE_TYPES = (int, str, str, str, str, int, str, str, str, str, str, int)


def _decode_route(row: object) -> Route:
    # The common case checked in one go: a million routes decode in seconds, not tens of them.
    if type(row) is list and tuple(map(type, row)) == _ROUTE_TYPES:
        return Route(*row)
    family, destination, gateway, interface, flags, metric, protocol, scope, table, source, kind, hop = _list(
        row, 12
    )
    return Route(
        _int(family), _str(destination), _str(gateway), _str(interface), _str(flags), _int(metric),
        _str(protocol), _str(scope), _str(table), _str(source), _str(kind), _int(hop),
    )  # fmt: skip


def _routes_keyframe(now: RouteSnapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"t": now.taken_at, "s": now.source, "r": [_route_row(r) for r in now.routes]}
    if now.warnings:
        body["w"] = now.warnings
    return body


def _routes_delta(before: RouteSnapshot, now: RouteSnapshot) -> tuple[dict[str, Any], bool] | None:
    """The change from `before` to `now` and whether any route changed; None when a whole table is smaller."""
    body: dict[str, Any] = {"t": now.taken_at}
    if now.source != before.source:
        body["s"] = now.source
    if now.warnings:
        body["w"] = now.warnings
    if now.routes == before.routes:
        return body, False
    where: dict[Route, int] = {}
    for old_position, old_route in enumerate(before.routes):
        where.setdefault(old_route, old_position)
    kept = bytearray(len(before.routes))
    inserted: list[Any] = []
    last_kept = last_inserted = -1
    for position, route in enumerate(now.routes):
        index = where.get(route)
        if index is not None and index > last_kept:
            kept[index] = 1
            last_kept = index
        else:  # new, changed, or out of its old order: inserted here (an old copy is then removed)
            inserted += [position - last_inserted - 1, _route_row(route)]
            last_inserted = position
    removed: list[int] = []
    last = -1
    for index, flag in enumerate(kept):
        if not flag:
            removed.append(index - last - 1)
            last = index
    if len(removed) + len(inserted) // 2 > len(now.routes) // 2 + 16:
        return None
    body["x"], body["a"] = removed, inserted
    return body, True


def _decode_routes(body: object, before: RouteSnapshot | None) -> RouteSnapshot:
    body = _object(body)
    taken_at, warnings = _float(body["t"]), _strs(body.get("w", []))
    if before is None:
        return RouteSnapshot(taken_at, [_decode_route(row) for row in _list(body["r"])], _str(body["s"]), warnings)
    old = before.routes
    # Slices, not a loop over every route: applying a change to a million routes takes milliseconds.
    kept: list[Route] = []
    start = index = 0
    for skip in _list(body.get("x", [])):
        index = start + _int(skip)
        if _int(skip) < 0 or index >= len(old):
            raise _Bad("a removed route refers to no route")
        kept.extend(old[start:index])
        start = index + 1
    kept.extend(old[start:])
    routes: list[Route] = []
    taken = 0
    position = -1
    for skip, row in _pairs(body.get("a", [])):
        position += _int(skip) + 1
        count = position - len(routes)
        if _int(skip) < 0 or taken + count > len(kept):
            raise _Bad("an inserted route lies past the end of the table")
        routes.extend(kept[taken : taken + count])
        taken += count
        routes.append(_decode_route(row))
    routes.extend(kept[taken:])
    source = _str(body["s"]) if "s" in body else before.source
    return RouteSnapshot(taken_at, routes, source, warnings)


def _own_warnings(data: ViewData) -> list[str]:
    """The ViewData's warnings that are not its parts' (SystemViews appends those after its own)."""
    parts: list[str] = []
    for part in (data.interfaces, data.routes, data.statistics, data.multicast):
        if part is not None:
            parts.extend(part.warnings)
    if parts and data.warnings[len(data.warnings) - len(parts) :] == parts:
        return data.warnings[: len(data.warnings) - len(parts)]
    seen = set(parts)
    return [warning for warning in data.warnings if warning not in seen]


@dataclass(slots=True)
class _ViewState:
    """Views 2-5 as of one frame: what the writer last recorded, or what a reader decoded."""

    interfaces: InterfaceSnapshot | None = None
    statistics: StatsSnapshot | None = None
    multicast: MulticastSnapshot | None = None
    warnings: list[str] = field(default_factory=list)  # the ViewData's own (see _own_warnings)
    conntrack: ConntrackSnapshot | None = None  # recorded while the NAT view was shown (table_codecs.py)
    unix: UnixRows | None = None  # recorded while view 1 showed unix sockets


def _decode_views(body: dict[str, Any], before: _ViewState | None) -> _ViewState:
    """A views frame applied to `before` (None: a keyframe, which stands alone)."""
    old = before or _ViewState()
    return _ViewState(
        _decode_interfaces(body["i"], old.interfaces) if "i" in body else old.interfaces,
        _decode_statistics(body["s"], old.statistics) if "s" in body else old.statistics,
        _decode_multicast(body["m"], old.multicast) if "m" in body else old.multicast,
        _strs(body.get("w", [])),
        decode_conntrack(body["n"], old.conntrack) if "n" in body else old.conntrack,
        decode_unix(body["u"], old.unix) if "u" in body else old.unix,
    )
