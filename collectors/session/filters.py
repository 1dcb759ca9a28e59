"""The filter language typed at the `/` prompt and given as `netscope --filter '...'`.

The language is the GRAMMAR table at the end of this module (the help screen and the README are made from it).
Below, the finer points of each term that the table leaves out. One module however long: the parser and each
term's compiled predicate change together.

A filter is a list of terms separated by spaces; a socket is shown when it matches **every** term. An empty filter
shows everything. Inside one term a comma means "any of", and a `!` in front of a term negates it.

    :80                local or remote port 80; the same as `port:80` or a bare `80`. Ranges: `:8000-8100`
    lport:80           local port (alias `sport:`);  `rport:5432` remote port (alias `dport:`)
    established        a state, bare or as `state:established`. Case, `_` and `-` do not matter (`time-wait`,
                       `timewait`), and an unambiguous prefix is enough (`estab`, `time`). An exact name wins
                       over a prefix (`close` is CLOSE); an ambiguous prefix (`fin`, `clos`, `syn`) is an error
                       that lists the candidates, except `fin_wait`, which means both FIN_WAIT1 and FIN_WAIT2.
                       `syn_recv` also matches NEW_SYN_RECV. A UDP socket with no peer is in state UNCONN.
    listen, -l         listening sockets, as `netstat -l` lists them: TCP LISTEN and unconnected UDP. (A bare word
                       that resolves to LISTEN, such as `lis`, means the same; `state:listen` is TCP LISTEN only.)
    tcp, udp, ...      a protocol, bare or as `proto:`: `tcp` is tcp and tcp6, `udp` is udp and udp6, `tcp4`/`udp4`
                       are IPv4 only, `tcp6`/`udp6` IPv6 only; `proto:4` / `proto:6` select by address family;
                       `unix` is every unix socket (`u_str`, `u_dgr`, `u_seq` one type), shown once `u` chose them
    path:/run/x.sock   a unix socket whose path, or whose peer's path, contains this (case counts). Port terms
                       never match a unix socket: its "ports" are inodes
    pid:1234           the owning process id
    proc:nginx         the program name contains this, ignoring case (alias `program:`)
    user:www-data      the owner's user name (exact), or a numeric uid (`user:0`)
    container:web      the owner's container or service contains this, ignoring case (`docker:3f2a`, `nginx`);
                       `container:host` is the sockets of processes on the host itself (no container or service)
    ip:10.0.0.0/8      the local or remote address is in this network or is this address (`ip:10.0.0.5`,
                       `ip:fe80::/10`, `ip:::1`); `lip:` and `rip:` test one end. An IPv4 address or network also
                       matches IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5`). Host bits are ignored
                       (`10.0.0.1/8` is `10.0.0.0/8`). A bare address or network (`10.0.0.5`, `fe80::/10`) is the
                       same as `ip:`.
    10.0.0.5:443       an endpoint: this address and this port at the same end, local or remote, as netstat and
                       ss print them. IPv6 in brackets (`[::1]:8080`); a network or a port range works
                       (`10.0.0.0/8:8000-8100`); `lip:10.0.0.5:443` and `rip:` test one end. One port per
                       endpoint: `10.0.0.5:80,443` is an error (write `10.0.0.5:80,10.0.0.5:443`)
    a,b                any of: `state:syn_recv,syn_sent`, `:80,443`, `established,listen`
    !term              not: `!ip:127.0.0.0/8`, `!:22`, `!listen`
    "..."              double quotes keep spaces inside one term: `proc:"Web Content"`

Examples: `:80 established`, `state:syn_recv,syn_sent !ip:127.0.0.0/8`, `proc:postgres rport:5432`.

Anything else (an unknown word or key, a bad port, address or network, an empty value such as `state:`, a lone
`!`) is an error that says what is wrong and what is accepted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from netscope.collectors.model import ALL_STATE_NAMES, Socket, is_unix
from netscope.collectors.sockdiag_query import (
    BOTH,
    LOCAL,
    OPAQUE,
    REMOTE,
    AnyOf,
    Condition,
    Endpoint,
    KernelQuery,
    Listening,
    Networks,
    Not,
    Ports,
    Protos,
    States,
    kernel_query,
)
from netscope.collectors.unix_sockets import UNIX_PROTOS

Predicate = Callable[[Socket], bool]
# A compiled term: its predicate, a rough cost (so that cheap terms run first and short-circuit the expensive
# ones), and what it says in terms the kernel's socket dump can test (sockdiag_query.py).
Compiled = tuple[Predicate, int, Condition]

_CHEAP, _CACHED, _SUBSTRING = 1, 2, 3

# Per-term result caches are dropped when they grow past this: bounded memory on a machine whose peers churn.
_CACHE_LIMIT = 200_000


class FilterError(ValueError):
    """A malformed filter. The message says, in plain words, what is wrong and what is accepted."""

    def __init__(self, message: str, term: str) -> None:
        super().__init__(message)
        self.message = message
        self.term = term  # the offending term as typed (with its `!`, if any)


def _match_all(sock: Socket) -> bool:
    return True


@dataclass(frozen=True)
class Filter:
    """A parsed filter. Build it with `parse_filter`; `Filter()` matches everything."""

    text: str = ""  # the normalized source text: the terms joined by single spaces
    _match: Predicate = field(default=_match_all, repr=False, compare=False)
    conditions: tuple[Condition, ...] = field(default=(), repr=False, compare=False)

    def matches(self, sock: Socket) -> bool:
        return self._match(sock)

    def kernel_query(self) -> KernelQuery:
        """What to ask the kernel's TCP/UDP dumps for, so that it skips what this filter would drop. Its answer
        is exactly this filter's sockets when the query is `exact`, a superset otherwise: apply `matches` to it."""
        return kernel_query(self.conditions)

    @property
    def is_empty(self) -> bool:
        return not self.text


def parse_filter(text: str) -> Filter:
    """Parse filter text into a `Filter`; raise `FilterError` on any malformed input."""
    terms = _split_terms(text)
    compiled = [_compile_term(term) for term in terms]
    # sorted() is stable, so terms of equal cost keep the order they were typed in.
    compiled.sort(key=lambda c: c[1])
    return Filter(" ".join(_quote(t) for t in terms), _all_of([pred for pred, _, _ in compiled]),
                  tuple(condition for _, _, condition in compiled))


# --- terms -----------------------------------------------------------------------------------------------------


def _split_terms(text: str) -> list[str]:
    """Split on whitespace; double quotes keep spaces inside a term and are removed."""
    terms: list[str] = []
    buf: list[str] = []
    started = False  # a term has begun (it may be "" if it was only quotes)
    in_quote = False
    start = 0
    for i, ch in enumerate(text):
        if ch == '"':
            in_quote = not in_quote
        elif ch.isspace() and not in_quote:
            if started:
                terms.append("".join(buf))
                buf, started = [], False
            continue
        else:
            buf.append(ch)
        if not started:
            started, start = True, i
    if in_quote:
        rest = text[start:]
        raise FilterError(f"unclosed quote in '{rest}' — end it with another \"", rest)
    if started:
        terms.append("".join(buf))
    return terms


def _quote(term: str) -> str:
    return f'"{term}"' if not term or any(ch.isspace() for ch in term) else term


def _compile_term(raw: str) -> Compiled:
    if not raw:
        raise FilterError('an empty term ("") — remove it or put something between the quotes', raw)
    if not raw.startswith("!"):
        return _compile_positive(raw, raw)
    term = raw[1:]
    if not term:
        raise FilterError(
            "a lone '!' — put it directly before the term it negates, with no space: !:22, !ip:127.0.0.0/8", raw
        )
    if term.startswith("!"):
        raise FilterError(f"'{raw}' has more than one '!' — a single '!' negates a term", raw)
    inner, cost, condition = _compile_positive(term, raw)
    return (lambda sock: not inner(sock)), cost, Not(condition)


def _compile_positive(term: str, raw: str) -> Compiled:
    keyed = _compile_keyed(term, raw)
    if keyed is not None:
        return keyed
    # Bare words joined by commas, each of which may itself be `key:value` (`80,lport:443`) or an IPv6 address.
    alternatives = term.split(",")
    if len(alternatives) == 1:
        return _compile_single(term, raw)
    if not all(alternatives):
        raise FilterError(f"'{raw}' has an empty item between commas — remove the extra comma", raw)
    _no_bare_port_after_an_endpoint(alternatives, raw)
    return _one_of([_compile_single(alt, raw) for alt in alternatives])


def _compile_keyed(word: str, raw: str) -> Compiled | None:
    """`key:value` with a known key, or `:port`; None for anything else. The value may hold commas."""
    key, sep, value = word.partition(":")
    if not sep:
        return None
    handler = _KEYS.get(key.lower())
    if handler is None and not key and not value.startswith(":"):
        # `:80` is a port; `::1` is an IPv6 address.
        handler = _KEYS["port"]
    return None if handler is None else handler(value, raw)


def _compile_single(word: str, raw: str) -> Compiled:
    """One comma-free item: key:value, :port, an IPv6 address, or a bare word."""
    keyed = _compile_keyed(word, raw)
    if keyed is not None:
        return keyed
    endpoint = _endpoint_parts(word, raw)
    if endpoint is not None:
        return _endpoint_term(*endpoint, raw, BOTH)
    key, sep, _ = word.partition(":")
    if sep:
        # Not a known key nor an endpoint, so it can only be an IPv6 address or network (`::1`, `fe80::/10`).
        if word.startswith(":") or _looks_like_ipv6(word):
            return _ip_term_from([word], raw, BOTH)
        if key and len(key) <= 4 and _looks_like_ipv6(key):
            # `fe80::zz`: say both readings, since we cannot tell a mistyped address from a mistyped key.
            raise FilterError(
                f"{_quoted(word, raw)} is not an IPv6 address, and '{key}' is not a key — keys are {_KEY_LIST}",
                raw,
            )
        raise FilterError(f"unknown key '{key}' in {_quoted(word, raw)} — keys are {_KEY_LIST}", raw)
    return _compile_bare(word, raw)


def _compile_bare(word: str, raw: str) -> Compiled:
    lower = word.lower()
    if lower == "-l":
        return _is_listening, _CHEAP, Listening()
    if word.startswith("-"):
        raise FilterError(
            f"unknown option {_quoted(word, raw)} — the only option is -l (listening); to negate a term put '!' "
            "before it",
            raw,
        )
    if word[0].isdigit():
        if all(ch in _PORT_CHARS for ch in word):
            # A bare number is a port: `80` is the same as `:80`.
            return _port_term(word, raw, BOTH)
        if all(ch in _IPV4_CHARS for ch in word):
            return _ip_term_from([word], raw, BOTH)
    if lower in _PROTOS:
        return _proto_compiled(_PROTOS[lower])
    states = _resolve_state(word, raw)
    if states == ("LISTEN",):
        # Bare `listen` (or a prefix of it) means what `netstat -l` lists, which includes unconnected UDP.
        return _is_listening, _CHEAP, Listening()
    if states:
        return _state_compiled(states)
    raise FilterError(
        f"unknown word {_quoted(word, raw)} — expected a state ({_STATE_LIST_LOWER}), a port (80, 8000-8100), "
        f"a protocol (tcp, udp, tcp4, udp4, tcp6, udp6, unix), listen or -l, an IP address or network, "
        f"or key:value with a key among {_KEY_LIST}",
        raw,
    )


def _quoted(part: str, raw: str) -> str:
    """Quote the offending part, and the term around it when that says more."""
    return f"'{part}'" if part == raw else f"'{part}' in '{raw}'"


def _alternatives(value: str, raw: str, example: str) -> list[str]:
    """The comma-separated items of a key's value, none empty."""
    if not value:
        raise FilterError(f"'{raw}' has nothing after the ':' — give a value, e.g. {example}", raw)
    items = value.split(",")
    if not all(items):
        raise FilterError(f"'{raw}' has an empty item between commas — remove the extra comma", raw)
    return items


def _all_of(preds: list[Predicate]) -> Predicate:
    if not preds:
        return _match_all
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda sock: first(sock) and second(sock)
    frozen = tuple(preds)

    def every(sock: Socket) -> bool:
        return all(pred(sock) for pred in frozen)

    return every


def _any_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    frozen = tuple(preds)

    def some(sock: Socket) -> bool:
        return any(pred(sock) for pred in frozen)

    return some


# --- ports -----------------------------------------------------------------------------------------------------

_PORT_CHARS = frozenset("0123456789-")
# Ranges up to this wide become a set of ports: one hash lookup beats comparing against bounds.
_EXPAND_RANGE = 4096


def _parse_port(text: str, raw: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise FilterError(
            f"{_quoted(text, raw)} is not a port number — ports are 0 to 65535, e.g. :80, :80,443 or :8000-8100",
            raw,
        )
    # The length check comes first so that a huge digit string never reaches int().
    if len(text) > 5 or int(text) > 65535:
        raise FilterError(f"port {_quoted(text, raw)} is out of range — ports are 0 to 65535", raw)
    return int(text)


def _parse_ports(value: str, raw: str) -> tuple[set[int], list[tuple[int, int]]]:
    """The ports a value lists: (single ports, with small ranges spread out; the wide ranges)."""
    singles: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for item in _alternatives(value, raw, ":80"):
        low_text, dash, high_text = item.partition("-")
        if dash and not (low_text and high_text):
            # ":-1" and ":80-": a dash with no number on one side is a negative number or half a range.
            raise FilterError(
                f"{_quoted(item, raw)} is not a port or a range of ports — ports are 0 to 65535; write a range "
                "with both ends, e.g. :8000-8100", raw)
        low = _parse_port(low_text, raw)
        high = _parse_port(high_text, raw) if dash else low
        if high < low:
            raise FilterError(f"port range {_quoted(item, raw)} is backwards — write the low port first", raw)
        if high - low <= _EXPAND_RANGE:
            singles.update(range(low, high + 1))
        else:
            ranges.append((low, high))
    return singles, ranges


def _port_term(value: str, raw: str, end: str) -> Compiled:
    singles, ranges = _parse_ports(value, raw)
    return _port_pred(frozenset(singles), tuple(ranges), end), _CHEAP, Ports(end, _runs(singles, ranges))


def _runs(singles: set[int], ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The ports as the fewest inclusive ranges, for the kernel's filter program."""
    runs: list[tuple[int, int]] = []
    for port in sorted(singles):
        if runs and runs[-1][1] == port - 1:
            runs[-1] = (runs[-1][0], port)
        else:
            runs.append((port, port))
    return (*runs, *ranges)


def _port_test(ports: frozenset[int], ranges: tuple[tuple[int, int], ...]) -> Callable[[int], bool]:
    if not ranges:
        return ports.__contains__

    def wanted(port: int) -> bool:
        return port in ports or any(low <= port <= high for low, high in ranges)

    return wanted


def _port_pred(ports: frozenset[int], ranges: tuple[tuple[int, int], ...], end: str) -> Predicate:
    # A unix socket's "ports" are inodes (as ss places them): never a port. Tested last, on the few that match.
    if ranges:
        wanted = _port_test(ports, ranges)
        if end == LOCAL:
            return lambda sock: wanted(sock.local_port) and not is_unix(sock.proto)
        if end == REMOTE:
            return lambda sock: wanted(sock.remote_port) and not is_unix(sock.proto)
        return lambda sock: (wanted(sock.local_port) or wanted(sock.remote_port)) and not is_unix(sock.proto)
    if end == LOCAL:
        return lambda sock: sock.local_port in ports and not is_unix(sock.proto)
    if end == REMOTE:
        return lambda sock: sock.remote_port in ports and not is_unix(sock.proto)
    return lambda sock: (sock.local_port in ports or sock.remote_port in ports) and not is_unix(sock.proto)


# --- states ----------------------------------------------------------------------------------------------------


def _squash(word: str) -> str:
    # Case, `_` and `-` do not matter: `time-wait`, `TIME_WAIT` and `timewait` are the same state.
    return word.upper().replace("-", "").replace("_", "")


_SQUASHED_STATES: dict[str, str] = {_squash(name): name for name in ALL_STATE_NAMES}
# Stems that name a whole family rather than being an ambiguous prefix: `fin_wait` is "either FIN_WAIT".
_STATE_FAMILIES: dict[str, tuple[str, ...]] = {"FINWAIT": ("FIN_WAIT1", "FIN_WAIT2")}
# The kernel reports a half-open connection still in the request queue as NEW_SYN_RECV; people mean it too.
_STATE_EXTRAS: dict[str, tuple[str, ...]] = {"SYN_RECV": ("NEW_SYN_RECV",)}
_STATE_LIST = ", ".join(ALL_STATE_NAMES)
_STATE_LIST_LOWER = ", ".join(name.lower() for name in ALL_STATE_NAMES)


def _resolve_state(word: str, raw: str) -> tuple[str, ...]:
    """The states a word names: an exact name, a family stem, or an unambiguous prefix; () if none."""
    squashed = _squash(word)
    if not squashed:
        return ()
    exact = _SQUASHED_STATES.get(squashed)
    if exact is not None:
        return (exact,)
    family = _STATE_FAMILIES.get(squashed)
    if family is not None:
        return family
    candidates = tuple(name for key, name in _SQUASHED_STATES.items() if key.startswith(squashed))
    if len(candidates) > 1:
        raise FilterError(
            f"ambiguous state {_quoted(word, raw)} — it could be {', '.join(candidates[:-1])} or "
            f"{candidates[-1]}; type more of the name",
            raw,
        )
    return candidates


def _state_term(value: str, raw: str) -> Compiled:
    states: list[str] = []
    for item in _alternatives(value, raw, "state:established"):
        found = _resolve_state(item, raw)
        if not found:
            raise FilterError(f"unknown state {_quoted(item, raw)} — states are {_STATE_LIST}", raw)
        states.extend(found)
    return _state_compiled(states)


def _state_compiled(states: Iterable[str]) -> Compiled:
    wanted = set(states)
    for state in tuple(wanted):
        wanted.update(_STATE_EXTRAS.get(state, ()))
    frozen = frozenset(wanted)
    return (lambda sock: sock.state in frozen), _CHEAP, States(frozen)


def _is_listening(sock: Socket) -> bool:
    return sock.is_listening


# --- protocol, process, user -----------------------------------------------------------------------------------

_PROTOS: dict[str, tuple[str, ...]] = {
    "tcp": ("tcp", "tcp6"),
    "udp": ("udp", "udp6"),
    "tcp4": ("tcp",),
    "udp4": ("udp",),
    "tcp6": ("tcp6",),
    "udp6": ("udp6",),
    "4": ("tcp", "udp"),
    "6": ("tcp6", "udp6"),
    # Unix sockets, shown in the Connections view when `u` chooses them: ss's names for the three types.
    "unix": tuple(UNIX_PROTOS.values()),
    **{name: (name,) for name in UNIX_PROTOS.values()},
}


def _proto_term(value: str, raw: str) -> Compiled:
    protos: set[str] = set()
    for item in _alternatives(value, raw, "proto:tcp"):
        found = _PROTOS.get(item.lower())
        if found is None:
            raise FilterError(
                f"unknown protocol {_quoted(item, raw)} — protocols are tcp, udp, tcp4, udp4, tcp6, udp6, 4, "
                "6, unix, u_str, u_dgr and u_seq; separate several with commas",
                raw,
            )
        protos.update(found)
    return _proto_compiled(protos)


def _proto_compiled(protos: Iterable[str]) -> Compiled:
    frozen = frozenset(protos)
    return (lambda sock: sock.proto in frozen), _CHEAP, Protos(frozen)


def _pid_term(value: str, raw: str) -> Compiled:
    pids: set[int] = set()
    for item in _alternatives(value, raw, "pid:1234"):
        # Linux PIDs fit in 22 bits; the length check keeps a huge digit string away from int().
        if not (item.isascii() and item.isdigit()) or len(item) > 10:
            raise FilterError(f"{_quoted(item, raw)} is not a process id — write a number, e.g. pid:1234", raw)
        pids.add(int(item))
    frozen = frozenset(pids)
    # A socket whose owner is unknown has pid None, which is in no set of numbers.
    return (lambda sock: sock.pid in frozen), _CHEAP, OPAQUE


def _user_term(value: str, raw: str) -> Compiled:
    names = frozenset(_alternatives(value, raw, "user:www-data"))
    uids = frozenset(int(name) for name in names if name.isascii() and name.isdigit() and len(name) <= 10)
    if uids:
        return (lambda sock: sock.user in names or sock.uid in uids), _CHEAP, OPAQUE
    return (lambda sock: sock.user in names), _CHEAP, OPAQUE


def _contains_any(needles: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a name contains any of the (lower-case) needles, ignoring case. Few distinct program or container
    names exist, so caching the answer per name beats lower-casing every socket's."""
    cache: dict[str, bool] = {}

    def contains(name: str) -> bool:
        found = cache.get(name)
        if found is None:
            lowered = name.lower()
            found = any(needle in lowered for needle in needles)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[name] = found
        return found

    return contains


def _proc_term(value: str, raw: str) -> Compiled:
    contains = _contains_any(tuple(item.lower() for item in _alternatives(value, raw, "proc:nginx")))
    return (lambda sock: contains(sock.program)), _SUBSTRING, OPAQUE


def _path_term(value: str, raw: str) -> Compiled:
    needles = tuple(_alternatives(value, raw, "path:/run/docker.sock"))

    def pred(sock: Socket) -> bool:
        return is_unix(sock.proto) and any(n in sock.local_ip or n in sock.remote_ip for n in needles)

    # Only unix sockets have a path: for the kernel's TCP and UDP dumps, this term rules every socket out.
    return pred, _SUBSTRING, Protos(frozenset(UNIX_PROTOS.values()))


# --- addresses -------------------------------------------------------------------------------------------------

# (IP version, network as an int, netmask as an int): testing `addr & mask == network` needs no objects.
_Network = tuple[int, int, int]
_IPV4_CHARS = frozenset("0123456789./")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:./%")
_MAPPED_PREFIX = 0xFFFF  # ::ffff:0:0/96 holds the IPv4-mapped addresses


def _looks_like_ipv6(word: str) -> bool:
    return all(ch in _IPV6_CHARS for ch in word)


def _parse_network(text: str, raw: str) -> _Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except (ValueError, TypeError):
        raise FilterError(_network_problem(text, raw), raw) from None
    network, mask = int(net.network_address), int(net.netmask)
    if net.version == 6 and net.prefixlen >= 96 and network >> 32 == _MAPPED_PREFIX:
        # An IPv4-mapped IPv6 network is the IPv4 network it maps; addresses are compared in both forms.
        return 4, network & 0xFFFFFFFF, mask & 0xFFFFFFFF
    return net.version, network, mask


def _network_problem(text: str, raw: str) -> str:
    """Say precisely why `text` is not an address or network."""
    address, slash, prefix = text.partition("/")
    accepted = "expected an address or network such as 10.0.0.5, 10.0.0.0/8, ::1 or fe80::/10"
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        return f"{_quoted(address, raw)} is not an IP address — {accepted}"
    longest = 32 if version == 4 else 128
    if slash and not (prefix.isascii() and prefix.isdigit() and len(prefix) <= 3 and int(prefix) <= longest):
        return f"bad prefix length '/{prefix}' in '{raw}' — an IPv{version} prefix is /0 to /{longest}"
    return f"{_quoted(text, raw)} is not an IP address or network — {accepted}"


@lru_cache(maxsize=1 << 17)
def _address_forms(text: str) -> tuple[tuple[int, int], ...]:
    """A socket address as (version, int) pairs: itself, plus its IPv4 form if it is IPv4-mapped IPv6.

    Cached because the same few addresses recur in every snapshot; an unparsable address matches nothing.
    """
    try:
        address = ipaddress.ip_address(text)
    except (ValueError, TypeError):
        return ()
    forms = [(address.version, int(address))]
    if address.version == 6 and address.ipv4_mapped is not None:
        forms.append((4, int(address.ipv4_mapped)))
    return tuple(forms)


def _address_test(networks: tuple[_Network, ...]) -> Callable[[str], bool]:
    """Whether an address (as a socket shows it) is in any of `networks`, cached per address."""
    cache: dict[str, bool] = {}

    def contains(address: str) -> bool:
        found = cache.get(address)
        if found is None:
            found = any(
                version == net_version and value & mask == network
                for version, value in _address_forms(address)
                for net_version, network, mask in networks
            )
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[address] = found
        return found

    return contains


def _ip_term_from(items: list[str], raw: str, end: str) -> Compiled:
    networks = tuple(_parse_network(item, raw) for item in items)
    contains = _address_test(networks)
    condition = Networks(end, tuple((version, network, mask.bit_count()) for version, network, mask in networks))
    if end == LOCAL:
        return (lambda sock: contains(sock.local_ip)), _CACHED, condition
    if end == REMOTE:
        return (lambda sock: contains(sock.remote_ip)), _CACHED, condition
    return (lambda sock: contains(sock.local_ip) or contains(sock.remote_ip)), _CACHED, condition


def _ip_term(end: str) -> Callable[[str, str], Compiled]:
    def handler(value: str, raw: str) -> Compiled:
        items = _alternatives(value, raw, "ip:10.0.0.0/8")
        _no_bare_port_after_an_endpoint(items, raw)
        endpoints = [_endpoint_parts(item, raw) for item in items]
        if not any(endpoints):
            return _ip_term_from(items, raw, end)
        # `lip:10.0.0.5:443,10.0.0.6`: each item on its own, any of them.
        compiled = [_endpoint_term(*parts, raw, end) if parts else _ip_term_from([item], raw, end)
                    for item, parts in zip(items, endpoints, strict=True)]
        return _one_of(compiled)

    return handler


# --- endpoints: an address and a port at the same end, as netstat and ss print them ------------------------------


def _endpoint_parts(text: str, raw: str) -> tuple[str, str] | None:
    """(address or network, ports) of an endpoint: `10.0.0.5:443`, `10.0.0.0/8:8000-8100`, `[::1]:8080`,
    `[fe80::/10]:22`; None for anything else. An IPv6 address needs its brackets only with a port: without them
    `::1:443` is an address."""
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise FilterError(f"{_quoted(text, raw)} has a '[' and no ']' — write an IPv6 endpoint as [::1]:8080",
                              raw)
        if not rest.startswith(":"):
            raise FilterError(f"{_quoted(text, raw)} needs ':' and a port after ']' — e.g. [::1]:8080, or the "
                              "address alone without brackets (::1)", raw)
        return address, rest[1:]
    address, colon, ports = text.rpartition(":")
    if colon and address[:1].isdigit() and all(ch in _IPV4_CHARS for ch in address):
        return address, ports
    return None


def _endpoint_term(address: str, ports: str, raw: str, end: str) -> Compiled:
    if not ports:
        raise FilterError(f"'{raw}' has nothing after the last ':' — give a port, e.g. 10.0.0.5:443", raw)
    network = _parse_network(address, raw)
    singles, ranges = _parse_ports(ports, raw)
    contains, wanted = _address_test((network,)), _port_test(frozenset(singles), tuple(ranges))
    version, number, mask = network
    condition = Endpoint(end, (version, number, mask.bit_count()), _runs(singles, ranges))
    if end == LOCAL:
        pred: Predicate = lambda sock: wanted(sock.local_port) and contains(sock.local_ip)  # noqa: E731
    elif end == REMOTE:
        pred = lambda sock: wanted(sock.remote_port) and contains(sock.remote_ip)  # noqa: E731
    else:
        pred = lambda sock: ((wanted(sock.local_port) and contains(sock.local_ip))  # noqa: E731
                             or (wanted(sock.remote_port) and contains(sock.remote_ip)))
    # A unix socket's "ports" are inodes and its addresses paths: never an endpoint.
    return (lambda sock: pred(sock) and not is_unix(sock.proto)), _CACHED, condition


def _no_bare_port_after_an_endpoint(items: list[str], raw: str) -> None:
    """`10.0.0.5:80,443` reads as two ports of one address, but each item after a comma stands alone: refuse it
    rather than match port 443 at any address, or take 443 for an address."""
    for earlier, later in pairwise(items):
        parts = _endpoint_parts(earlier, raw)
        if parts is not None and later and all(ch in _PORT_CHARS for ch in later):
            address = earlier[: -len(parts[1]) - 1]
            raise FilterError(
                f"'{later}' after the endpoint {earlier} in '{raw}' is no port of it: each item between commas "
                f"stands alone — repeat the address for another port ({earlier},{address}:{later})", raw)


def _one_of(compiled: list[Compiled]) -> Compiled:
    return (_any_of([pred for pred, _, _ in compiled]), max(cost for _, cost, _ in compiled),
            AnyOf(tuple(condition for _, _, condition in compiled)))


def _ports_for(end: str) -> Callable[[str, str], Compiled]:
    def handler(value: str, raw: str) -> Compiled:
        return _port_term(value, raw, end)

    return handler


def _container_term(value: str, raw: str) -> Compiled:
    needles = tuple(item.lower() for item in _alternatives(value, raw, "container:web"))
    host = "host" in needles
    contains = _contains_any(needles)

    def pred(sock: Socket) -> bool:
        name = sock.container
        if not name:  # on the host, if a process owns it at all
            return host and sock.pid is not None
        return contains(name)

    return pred, _SUBSTRING, OPAQUE


# --- the grammar, in one table -----------------------------------------------------------------------------------

Handler = Callable[[str, str], Compiled]


@dataclass(frozen=True)
class Term:
    """One row of the filter language: how it is written (backticks around code, as the README shows it), what it
    matches, and the `key:` words that introduce it with the parser of each (none: bare words only)."""

    written: str
    meaning: str
    keys: dict[str, Handler] = field(default_factory=dict)
    # Terms of one kind say the same thing of a socket: a one-key filter (`o`, `t`, `p`) replaces a term of its
    # kind rather than adding a second, contradictory one.
    kind: str = ""


# The one description of the language: the parser's keys, the help screen (`?`) and the README's "Filter language"
# table (tests/test_filters.py checks the README against it) all come from here.
GRAMMAR: tuple[Term, ...] = (
    Term("`:80`, `80`, `:8000-8100`", "local or remote port", {"port": _ports_for(BOTH)}, kind="port"),
    Term("`lport:80`, `rport:5432`", "local / remote port (`sport:` and `dport:` too)",
         {"lport": _ports_for(LOCAL), "sport": _ports_for(LOCAL), "rport": _ports_for(REMOTE),
          "dport": _ports_for(REMOTE)}, kind="port"),
    Term("`established`, `state:time_wait`, `estab`",
         "a state (case-insensitive; an unambiguous prefix is enough; `syn_recv,syn_sent` any of)",
         {"state": _state_term}, kind="state"),
    Term("`listen`, `-l`", "listening sockets, as `netstat -l` lists them (TCP LISTEN and unconnected UDP)",
         kind="state"),
    Term("`pid:1234`", "the owning process", {"pid": _pid_term}, kind="pid"),
    Term("`proc:nginx`", "the program name contains this (any case; `program:` too)",
         {"proc": _proc_term, "program": _proc_term}, kind="proc"),
    Term("`user:www-data`, `user:0`", "the owner's user name or uid", {"user": _user_term}, kind="user"),
    Term("`container:web`, `container:host`",
         "the owner's container or service contains this (any case); `host`: owned by a process of the host "
         "itself",
         {"container": _container_term}, kind="container"),
    Term("`proto:tcp`, `udp`, `tcp6`, `udp6`, `proto:4`, `proto:6`, `unix`",
         "protocol / address family (`tcp` includes tcp6; `unix` is u_str, u_dgr and u_seq, shown after `u`)",
         {"proto": _proto_term}, kind="proto"),
    Term("`path:/run/docker.sock`, `path:@`",
         "a unix socket's path or its peer's contains this (exact case; `@` starts an abstract name)",
         {"path": _path_term}, kind="path"),
    Term("`ip:10.0.0.5`, `ip:10.0.0.0/8`, `lip:`, `rip:`",
         "either end's address or network (IPv4 also matches `::ffff:` mapped addresses)",
         {"ip": _ip_term(BOTH), "lip": _ip_term(LOCAL), "rip": _ip_term(REMOTE)}, kind="ip"),
    Term("`10.0.0.5:443`, `[::1]:8080`, `10.0.0.0/8:443`, `rip:10.0.0.5:5432`",
         "an endpoint, as netstat prints it: this address (or network) with this port (or range) at one end",
         kind="ip"),
)
# How terms combine, said once for the help screen and the README.
GRAMMAR_RULES = (
    'Space-separated terms, all must match; a comma inside a term means "any of"; `!` in front negates.'
)
GRAMMAR_EXAMPLES = (
    "`:80 established`", "`state:syn_recv,syn_sent !ip:127.0.0.0/8`", "`proc:postgres rport:5432`",
)

_KEYS: dict[str, Handler] = {key: handler for term in GRAMMAR for key, handler in term.keys.items()}
_KEY_LIST = ", ".join("/".join(term.keys) + (" (or just :80)" if "port" in term.keys else "")
                      for term in GRAMMAR if term.keys)
_KEY_KINDS: dict[str, str] = {key: term.kind for term in GRAMMAR for key in term.keys}


# --- one-key filters ---------------------------------------------------------------------------------------------


def term_kind(term: str) -> str:
    """What a (valid) term says of a socket: a GRAMMAR kind ("port", "state" ...), `!` in front for a negated term
    (which a one-key filter never replaces: `!:22` and `:80` say different things)."""
    if term.startswith("!"):
        return "!" + term_kind(term[1:])
    first = term.split(",", 1)[0]
    key, sep, value = first.partition(":")
    if sep and key.lower() in _KEY_KINDS:
        return _KEY_KINDS[key.lower()]
    if sep and not key and not value.startswith(":"):
        return "port"
    if sep or (first[:1].isdigit() and not all(ch in _PORT_CHARS for ch in first)):
        return "ip"
    if first[:1].isdigit():
        return "port"
    lower = first.lower()
    if lower in _PROTOS:
        return "proto"
    return "state"  # a state word, `listen`, `-l`: everything else a valid bare word can be


def narrowed(text: str, term: str) -> str:
    """The filter `text` with `term` added, replacing a term of the same kind: `:80` then `established` is
    `:80 established`; `established` on top of that gives the same, `time_wait` swaps the state. Raises
    FilterError if `text` does not parse."""
    parse_filter(term)  # a term from a row is always valid; this makes sure
    kind = term_kind(term)
    kept = [old for old in _split_terms(text) if term_kind(old) != kind]
    return " ".join(_quote(t) for t in (*kept, term))


def without_last_term(text: str) -> str:
    """The filter `text` with its last term taken away."""
    return " ".join(_quote(t) for t in _split_terms(text)[:-1])


def filter_terms(text: str) -> list[str]:
    """The terms of a filter as written (quoted where they hold spaces), for showing them one by one."""
    return [_quote(term) for term in _split_terms(text)]
