"""Reading the kernel's socket tables from /proc/net/{tcp,tcp6,udp,udp6}.

These files describe the network namespace of the process that reads them. Owners (pid, program, user name) are
not in them: the caller fills those in from an owner scan (see `netscope.collectors.processes`).

At scale this parses ~100,000 lines a second, so the per-line path is plain `str.split` and dict lookups: no
regex, and hex addresses are converted once and cached (the same few local and remote addresses repeat a lot).
"""

from __future__ import annotations

import socket
import sys

from netscope.collectors.model import PROTOCOLS, TCP_STATES, Socket

# The kernel prints the state as two hex digits ("0A"); map that text straight to netstat's name.
_TCP_STATE_BY_HEX: dict[str, str] = {f"{num:02X}": name for num, name in TCP_STATES.items()}
# UDP reuses TCP's numbers: TCP_CLOSE (7) is an unconnected socket, TCP_ESTABLISHED (1) one connect()ed to a peer.
_UDP_STATE_BY_HEX: dict[str, str] = {**_TCP_STATE_BY_HEX, "07": "UNCONN", "01": "ESTABLISHED"}

# Hex address text -> printable address. Bounded so that a long run seeing many distinct peers cannot grow it
# forever; when full it is simply cleared (rebuilding it costs one conversion per distinct address).
_ADDRESS_CACHE: dict[str, str] = {}
_ADDRESS_CACHE_MAX = 65_536

# The kernel prints addresses as native 32-bit words, so the byte order of this machine decides the decoding.
_LITTLE_ENDIAN = sys.byteorder == "little"

_HEX_LEN_BY_PROTO: dict[str, int] = {"tcp": 8, "udp": 8, "tcp6": 32, "udp6": 32}

# Columns of a /proc/net line after str.split(); TIME_WAIT and NEW_SYN_RECV lines are shorter than the others,
# so only the columns up to the inode are required.
_F_LOCAL, _F_REMOTE, _F_STATE, _F_QUEUES, _F_UID, _F_INODE = 1, 2, 3, 4, 7, 9
_MIN_FIELDS = _F_INODE + 1


def hex_to_address(hex_addr: str) -> str:
    """Convert the kernel's hex address (8 chars for IPv4, 32 for IPv6) to its printable form.

    The kernel prints the raw 32-bit words of the address with %08X, i.e. each word in host byte order. On a
    little-endian machine that means every 4-byte group is reversed: 127.0.0.1 is "0100007F", and ::1 is
    "00000000000000000000000001000000". Raises ValueError on bad input.
    """
    cached = _ADDRESS_CACHE.get(hex_addr)
    if cached is not None:
        return cached
    raw = bytes.fromhex(hex_addr)  # ValueError on non-hex text
    if len(hex_addr) == 8:
        text = socket.inet_ntop(socket.AF_INET, _host_words_to_network(raw))
    elif len(hex_addr) == 32:
        text = socket.inet_ntop(socket.AF_INET6, _host_words_to_network(raw))
    else:
        raise ValueError(f"address {hex_addr!r} is neither 8 nor 32 hex digits")
    if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_MAX:
        _ADDRESS_CACHE.clear()
    _ADDRESS_CACHE[hex_addr] = text
    return text


def _host_words_to_network(raw: bytes) -> bytes:
    """Reorder each 32-bit word from this machine's byte order to network (big-endian) order."""
    if _LITTLE_ENDIAN:
        return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return raw


def parse_proc_net(text: str, proto: str) -> list[Socket]:
    """Parse the text of one /proc/net/{tcp,tcp6,udp,udp6} file into sockets.

    The header line is skipped. Malformed lines (too few fields, bad hex, wrong address length, truncated) are
    skipped silently: the file can change while it is read and a half line must never crash the UI.
    Owner fields are left empty (pid=None, program="", user=""); the caller fills them.
    """
    if proto not in _HEX_LEN_BY_PROTO:
        raise ValueError(f"unknown protocol {proto!r}; expected one of {', '.join(PROTOCOLS)}")
    hex_len = _HEX_LEN_BY_PROTO[proto]
    addr_len = hex_len + 5  # "ADDR:PORT", the port always 4 hex digits
    port_start = hex_len + 1
    states = _TCP_STATE_BY_HEX if proto.startswith("tcp") else _UDP_STATE_BY_HEX
    cache = _ADDRESS_CACHE
    convert = hex_to_address
    out: list[Socket] = []
    append = out.append
    for line in text.split("\n")[1:]:
        # Only the first 10 columns matter; maxsplit spares building strings for the rest.
        fields = line.split(None, _MIN_FIELDS)
        if len(fields) < _MIN_FIELDS:
            continue  # blank or truncated line
        local = fields[_F_LOCAL]
        remote = fields[_F_REMOTE]
        # Checking lengths and the colon position also rejects truncated addresses and IPv4 text in a v6 file.
        if len(local) != addr_len or len(remote) != addr_len or local[hex_len] != ":" or remote[hex_len] != ":":
            continue
        state = states.get(fields[_F_STATE])
        try:
            if state is None:
                # A state newer than this code: show the row with its number rather than hide it.
                state = f"UNKNOWN({int(fields[_F_STATE], 16)})"
            lhex = local[:hex_len]
            rhex = remote[:hex_len]
            local_ip = cache.get(lhex) or convert(lhex)
            remote_ip = cache.get(rhex) or convert(rhex)
            local_port = int(local[port_start:], 16)
            remote_port = int(remote[port_start:], 16)
            queues = fields[_F_QUEUES]
            if queues == "00000000:00000000":  # by far the most common value: skip two int() calls
                send_q = recv_q = 0
            elif len(queues) == 17 and queues[8] == ":":
                send_q = int(queues[:8], 16)
                recv_q = int(queues[9:], 16)
            else:
                continue
            uid = int(fields[_F_UID])
            inode = int(fields[_F_INODE])
        except ValueError:
            continue
        append(Socket(proto, local_ip, local_port, remote_ip, remote_port, state, recv_q, send_q, inode, uid))
    return out


def _proc_net_path(proto: str, proc_root: str) -> str:
    return f"{proc_root.rstrip('/')}/net/{proto}"


def read_proc_net(proto: str, proc_root: str = "/proc") -> list[Socket]:
    """Read and parse `{proc_root}/net/{proto}`; a missing file gives [] (use `read_all_sockets` to learn why)."""
    sockets, _warning = _read_one(proto, proc_root)
    return sockets


def _read_one(proto: str, proc_root: str) -> tuple[list[Socket], str | None]:
    path = _proc_net_path(proto, proc_root)
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return [], _missing_warning(proto, path)
    except OSError as exc:
        return [], f"{_PROTO_WORDS[proto]} sockets are not shown: cannot read {path} ({exc.strerror or exc})"
    return parse_proc_net(text, proto), None


_PROTO_WORDS: dict[str, str] = {"tcp": "TCP", "udp": "UDP", "tcp6": "IPv6 TCP", "udp6": "IPv6 UDP"}


def _missing_warning(proto: str, path: str) -> str:
    hint = "IPv6 disabled in this kernel?" if proto.endswith("6") else "is /proc mounted?"
    return f"{_PROTO_WORDS[proto]} sockets are not shown: {path} does not exist ({hint})"


def read_all_sockets(proc_root: str = "/proc") -> tuple[list[Socket], list[str]]:
    """Read all four tables. Returns the sockets and plain-words warnings about tables that could not be read."""
    sockets: list[Socket] = []
    warnings: list[str] = []
    for proto in PROTOCOLS:
        found, warning = _read_one(proto, proc_root)
        sockets.extend(found)
        if warning is not None:
            warnings.append(warning)
    return sockets, warnings
