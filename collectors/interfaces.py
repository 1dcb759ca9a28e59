"""Network interfaces (`netstat -i`, `netstat -e`): state, MTU, flags, addresses, counters, rates and history."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field

import psutil

# Samples of RX/TX rate kept per interface: at the default 1 s interval, the last five minutes.
HISTORY_LENGTH = 300


@dataclass(slots=True)
class InterfaceCounters:
    """Totals since the interface was created, as /proc/net/dev gives them. RX-OVR/TX-OVR are the fifo columns."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    rx_fifo: int = 0  # netstat's RX-OVR
    rx_frame: int = 0
    rx_multicast: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0
    tx_fifo: int = 0  # netstat's TX-OVR
    tx_collisions: int = 0
    tx_carrier: int = 0


@dataclass(slots=True)
class Interface:
    name: str
    index: int  # ifindex, 0 if unknown
    up: bool  # administratively up (IFF_UP)
    running: bool  # IFF_RUNNING: the link has carrier
    mtu: int
    flags: str  # netstat -i's letters, e.g. "BMRU", "LRU"
    speed_mbps: int | None  # None when the driver does not say (virtual interfaces, link down)
    mac: str  # "" if none
    ipv4: list[str]  # "192.0.2.2/24"
    ipv6: list[str]  # "fe80::1/64"
    counters: InterfaceCounters
    # Per second over the last interval; 0.0 on the first sample and whenever a counter went backwards.
    rx_bytes_per_s: float = 0.0
    tx_bytes_per_s: float = 0.0
    rx_packets_per_s: float = 0.0
    tx_packets_per_s: float = 0.0
    # Bytes per second, oldest first, at most HISTORY_LENGTH samples.
    rx_history: list[float] = field(default_factory=list)
    tx_history: list[float] = field(default_factory=list)
    # /sys/class/net/<if>/operstate (RFC 2863): "up", "down", "lowerlayerdown", "dormant", "unknown" ...; ""
    # when it could not be read. Added to the original fields: `running` alone cannot say why a link is not up.
    operstate: str = ""


@dataclass(slots=True)
class InterfaceSnapshot:
    taken_at: float
    interfaces: list[Interface]  # sorted by name
    appeared: list[str] = field(default_factory=list)  # names new since the previous sample
    disappeared: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- Flags -----------------------------------------------------------------------------------------------------
# IFF_* bits of <linux/if.h>, as /sys/class/net/<if>/flags gives them (hex, e.g. "0x1003").
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_DEBUG = 0x4
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_NOTRAILERS = 0x20
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
IFF_MASTER = 0x400
IFF_SLAVE = 0x800
IFF_MULTICAST = 0x1000
IFF_DYNAMIC = 0x8000

# netstat -i's "Flg" letters, in the order net-tools (2.10, lib/interface.c `ife_print_short`) prints them;
# checked against netstat -ia on a veth after `ip link set ... promisc on allmulticast on dynamic on arp off`,
# which prints "ABMdPORU":
#   A allmulti   B broadcast   D debug   L loopback   M multicast   d dynamic   P promisc   N notrailers
#   O noarp      P pointopoint (net-tools uses P for both)   s slave   m master   R running   U up
# netstat prints "[NO FLAGS]" for 0; we give "" so that a table column stays narrow.
FLAG_LETTERS: tuple[tuple[int, str], ...] = (
    (IFF_ALLMULTI, "A"),
    (IFF_BROADCAST, "B"),
    (IFF_DEBUG, "D"),
    (IFF_LOOPBACK, "L"),
    (IFF_MULTICAST, "M"),
    (IFF_DYNAMIC, "d"),
    (IFF_PROMISC, "P"),
    (IFF_NOTRAILERS, "N"),
    (IFF_NOARP, "O"),
    (IFF_POINTOPOINT, "P"),
    (IFF_SLAVE, "s"),
    (IFF_MASTER, "m"),
    (IFF_RUNNING, "R"),
    (IFF_UP, "U"),
)

# operstate values for which the kernel reports IFF_RUNNING (netif_oper_up(): IF_OPER_UP or IF_OPER_UNKNOWN).
_RUNNING_OPERSTATES = frozenset({"up", "unknown"})


def flag_letters(flags: int) -> str:
    """netstat -i's Flg column for the IFF_* bits `flags`, e.g. 0x1043 -> "BMRU"."""
    return "".join(letter for bit, letter in FLAG_LETTERS if flags & bit)


def interface_flags(sysfs_flags: int, operstate: str | None) -> int:
    """The flags SIOCGIFFLAGS (what netstat and ifconfig read) would give, from sysfs's `flags` and `operstate`.

    sysfs shows dev->flags, which never carries IFF_RUNNING: the kernel computes it when asked (dev_get_flags())
    as "up and operstate up or unknown". So derive it the same way; with no operstate, trust the bit as given.
    """
    if operstate is None:
        return sysfs_flags
    running = sysfs_flags & IFF_UP and operstate in _RUNNING_OPERSTATES
    return (sysfs_flags & ~IFF_RUNNING) | (IFF_RUNNING if running else 0)


# --- /proc/net/dev -----------------------------------------------------------------------------------------------
# After "name:", the kernel prints 16 numbers: 8 receive (bytes packets errs drop fifo frame compressed multicast)
# then 8 transmit (bytes packets errs drop fifo colls carrier compressed). Compressed is not kept.
_DEV_FIELDS = 16


def _valid_name(name: str) -> bool:
    # What the kernel's dev_valid_name() refuses can only come from a damaged file, and would escape /sys paths.
    return bool(name) and name not in (".", "..") and "/" not in name and len(name.split()) == 1


def parse_proc_net_dev(text: str, skipped: list[str] | None = None) -> dict[str, InterfaceCounters]:
    """Parse /proc/net/dev into counters by interface name. Never raises.

    The kernel prints "%6s:%8llu ..." so a long name or a big first number leaves no space after the colon
    ("eth0:123 ..."); interface names cannot contain ':' (nor '/' or spaces), so the first colon ends the name.
    The two header lines (they have '|' and no ':') and blank lines are passed over; any other line that does not
    parse is left out and, if `skipped` is given, appended to it. More than 16 numbers (a future kernel's extra
    columns) are accepted and the first 16 used.
    """
    result: dict[str, InterfaceCounters] = {}
    for line in text.splitlines():
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon:
            if line.strip() and "|" not in line and skipped is not None:
                skipped.append(line)
            continue
        fields = rest.split()
        if not _valid_name(name) or len(fields) < _DEV_FIELDS:
            if skipped is not None:
                skipped.append(line)
            continue
        try:
            v = [int(field) for field in fields[:_DEV_FIELDS]]
        except ValueError:
            v = []
        if not v or min(v) < 0:
            if skipped is not None:
                skipped.append(line)
            continue
        result[name] = InterfaceCounters(
            rx_bytes=v[0],
            rx_packets=v[1],
            rx_errors=v[2],
            rx_dropped=v[3],
            rx_fifo=v[4],
            rx_frame=v[5],
            rx_multicast=v[7],
            tx_bytes=v[8],
            tx_packets=v[9],
            tx_errors=v[10],
            tx_dropped=v[11],
            tx_fifo=v[12],
            tx_collisions=v[13],
            tx_carrier=v[14],
        )
    return result


# --- Addresses ---------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _prefix_length(netmask: str) -> int | None:
    """Prefix length of a netmask: "255.255.255.0" -> 24, "ffff:ffff:ffff:ffff::" -> 64; None if not a mask."""
    family = socket.AF_INET6 if ":" in netmask else socket.AF_INET
    try:
        packed = socket.inet_pton(family, netmask)
    except (OSError, ValueError):
        return None
    width = len(packed) * 8
    bits = int.from_bytes(packed, "big")
    ones = bin(bits).count("1")
    contiguous = ((1 << ones) - 1) << (width - ones)
    return ones if bits == contiguous else None


def _with_prefix(address: str, netmask: str | None) -> str:
    address = address.split("%", 1)[0]  # "fe80::1%eth0": the scope is the interface the row already names
    prefix = _prefix_length(netmask) if netmask else None
    return address if prefix is None else f"{address}/{prefix}"


def interface_addresses() -> dict[str, tuple[list[str], list[str]]]:
    """IPv4 and IPv6 addresses with prefix by interface name, from psutil (getifaddrs: this network namespace).

    getifaddrs names an IPv4 address by its label, which may be an old-style alias such as "eth0:1"; such an
    address belongs to the interface before the colon. May raise OSError.
    """
    result: dict[str, tuple[list[str], list[str]]] = {}
    for label, addresses in psutil.net_if_addrs().items():
        ipv4, ipv6 = result.setdefault(label.split(":", 1)[0], ([], []))
        for entry in addresses:
            if entry.family == socket.AF_INET:
                ipv4.append(_with_prefix(entry.address, entry.netmask))
            elif entry.family == socket.AF_INET6:
                ipv6.append(_with_prefix(entry.address, entry.netmask))
    return result


# --- Collector ---------------------------------------------------------------------------------------------------


class _Vanished(Exception):
    """The interface went away while its sysfs files were being read."""


@dataclass(slots=True)
class _SysInfo:
    index: int = 0
    mtu: int = 0
    flags: int = 0
    operstate: str = ""
    mac: str = ""
    speed_mbps: int | None = None


@dataclass(slots=True)
class _Track:
    """What the collector remembers about one interface between samples."""

    index: int
    counters: InterfaceCounters
    rx_history: deque[float]
    tx_history: deque[float]


def _rate(now: int, before: int, elapsed: float) -> float:
    # A counter that went backwards (driver reset, a 32-bit counter wrapping, re-creation under the same ifindex)
    # says nothing about this interval: report 0 rather than a negative or absurd number.
    return (now - before) / elapsed if now >= before else 0.0


class InterfaceCollector:
    """Samples the interfaces of this process's network namespace; rates come from the change since the last call.

    Decisions:
    - Rates are counter deltas over time.monotonic() between calls. The first sample of an interface (the first
      call, a new interface, or one re-created under the same name, i.e. with a new ifindex) has rates 0.0 and
      adds nothing to the history: there is no earlier value of *that* interface to subtract.
    - A counter lower than before on the same ifindex (driver reset, wrap) gives that counter's rate 0.0 for that
      sample; the history still gets the 0.0 so it stays one entry per interval.
    - A re-created interface is listed in `appeared` (it is a new device) and its history restarts; it is not
      listed in `disappeared`, which only names interfaces no longer present.
    - `appeared` is empty on the first call: everything is new then, which says nothing.
    - If /proc/net/dev cannot be read the snapshot is empty with a warning, and what the collector remembers is
      kept: one failed read is no evidence that interfaces went away, and the next rates still come out right
      because counters are totals.
    """

    def __init__(self, proc_root: str = "/proc", sys_root: str = "/sys", history_length: int = HISTORY_LENGTH):
        self.proc_root = proc_root
        self.sys_root = sys_root
        self.history_length = max(0, history_length)
        self._dev_path = f"{proc_root.rstrip('/')}/net/dev"
        self._sys_net = f"{sys_root.rstrip('/')}/class/net"
        self._tracks: dict[str, _Track] = {}
        self._last_time: float | None = None

    def collect(self) -> InterfaceSnapshot:
        taken_at = time.time()
        now = time.monotonic()
        warnings: list[str] = []
        try:
            with open(self._dev_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            warnings.append(f"Interfaces are not shown: {self._dev_path} does not exist (is /proc mounted?)")
            return InterfaceSnapshot(taken_at=taken_at, interfaces=[], warnings=warnings)
        except OSError as exc:
            warnings.append(f"Interfaces are not shown: cannot read {self._dev_path} ({exc.strerror or exc})")
            return InterfaceSnapshot(taken_at=taken_at, interfaces=[], warnings=warnings)

        skipped: list[str] = []
        counters = parse_proc_net_dev(text, skipped)
        if skipped:
            warnings.append(
                f"{len(skipped)} line(s) of {self._dev_path} could not be read and were left out,"
                f" e.g. {skipped[0].strip()[:80]!r}"
            )
        if not counters and not skipped:
            warnings.append(f"{self._dev_path} lists no interfaces")

        details = self._read_details(sorted(counters), warnings)
        try:
            addresses = interface_addresses()
        except OSError as exc:
            addresses = {}
            warnings.append(f"Interface addresses are not shown: {exc.strerror or exc}")

        first_call = self._last_time is None
        elapsed = 0.0 if self._last_time is None else now - self._last_time
        interfaces: list[Interface] = []
        tracks: dict[str, _Track] = {}
        appeared: list[str] = []
        for name, info in details:
            current = counters[name]
            track = self._tracks.get(name)
            if track is None or track.index != info.index:
                if not first_call:
                    appeared.append(name)
                track = _Track(
                    info.index, current, deque(maxlen=self.history_length), deque(maxlen=self.history_length)
                )
                rates = (0.0, 0.0, 0.0, 0.0)
            elif elapsed > 0:
                before = track.counters
                rates = (
                    _rate(current.rx_bytes, before.rx_bytes, elapsed),
                    _rate(current.tx_bytes, before.tx_bytes, elapsed),
                    _rate(current.rx_packets, before.rx_packets, elapsed),
                    _rate(current.tx_packets, before.tx_packets, elapsed),
                )
                track.rx_history.append(rates[0])
                track.tx_history.append(rates[1])
                track.counters = current
            else:  # same monotonic reading twice: no interval to divide by
                rates = (0.0, 0.0, 0.0, 0.0)
            tracks[name] = track
            addr4, addr6 = addresses.get(name, ([], []))
            interfaces.append(
                Interface(
                    name=name,
                    index=info.index,
                    up=bool(info.flags & IFF_UP),
                    running=bool(info.flags & IFF_RUNNING),
                    mtu=info.mtu,
                    flags=flag_letters(info.flags),
                    speed_mbps=info.speed_mbps,
                    mac=info.mac,
                    ipv4=addr4,
                    ipv6=addr6,
                    counters=current,
                    rx_bytes_per_s=rates[0],
                    tx_bytes_per_s=rates[1],
                    rx_packets_per_s=rates[2],
                    tx_packets_per_s=rates[3],
                    rx_history=list(track.rx_history),
                    tx_history=list(track.tx_history),
                    operstate=info.operstate,
                )
            )
        disappeared = sorted(name for name in self._tracks if name not in tracks)
        self._tracks = tracks
        self._last_time = now
        return InterfaceSnapshot(
            taken_at=taken_at, interfaces=interfaces, appeared=appeared, disappeared=disappeared, warnings=warnings
        )

    def _read_details(self, names: list[str], warnings: list[str]) -> list[tuple[str, _SysInfo]]:
        """sysfs details for each name, leaving out interfaces that vanished since /proc/net/dev was read."""
        if not os.path.isdir(self._sys_net):
            if names:
                warnings.append(
                    f"Interface state, MTU, flags, speed and MAC are not shown: {self._sys_net} does not exist"
                    " (is /sys mounted?)"
                )
            return [(name, _SysInfo()) for name in names]
        found: list[tuple[str, _SysInfo]] = []
        for name in names:
            with contextlib.suppress(_Vanished):
                found.append((name, self._read_sys(name, warnings)))
        if names and not found:
            # Every one missing at once is not a race: sysfs shows the namespace of whoever mounted it.
            warnings.append(
                f"None of the interfaces in {self._dev_path} is in {self._sys_net} (is /sys mounted from another"
                " network namespace?): state, MTU, flags, speed and MAC are not shown"
            )
            return [(name, _SysInfo()) for name in names]
        return found

    def _read_sys(self, name: str, warnings: list[str]) -> _SysInfo:
        base = f"{self._sys_net}/{name}"
        try:
            # One open of the directory, then short relative opens: the path walk through /sys/class/net's
            # symlink is paid once per interface instead of once per file (~40% of the time of collect()).
            dir_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise _Vanished from None  # gone since /proc/net/dev was read
        except OSError as exc:
            warnings.append(f"{name}: cannot read {base} ({exc.strerror or exc}): no state, MTU, flags or MAC")
            return _SysInfo()
        try:
            files = _SysFiles(name, base, dir_fd, warnings)
            info = _SysInfo()
            info.index = files.number("ifindex", 10)
            info.mtu = files.number("mtu", 10)
            operstate = files.text("operstate")
            info.operstate = operstate or ""
            info.flags = interface_flags(files.number("flags", 16), operstate)
            info.mac = files.text("address") or ""
            if info.flags & IFF_UP:  # the kernel refuses (EINVAL) the speed of an interface that is down
                info.speed_mbps = files.speed()
            return info
        finally:
            os.close(dir_fd)


class _SysFiles:
    """Reads the attribute files of one /sys/class/net/<name> directory, given as an open descriptor."""

    __slots__ = ("base", "dir_fd", "name", "warnings")

    def __init__(self, name: str, base: str, dir_fd: int, warnings: list[str]) -> None:
        self.name = name
        self.base = base
        self.dir_fd = dir_fd
        self.warnings = warnings

    def _read(self, attr: str) -> str:
        fd = os.open(attr, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        try:
            return os.read(fd, 4096).decode("utf-8", "replace").strip()
        finally:
            os.close(fd)

    def text(self, attr: str) -> str | None:
        """The file's stripped text; None, with a warning, if it cannot be read. Raises _Vanished."""
        try:
            return self._read(attr)
        except FileNotFoundError:
            # The kernel removes the files when the interface goes; only a damaged tree lacks one otherwise.
            if not os.path.isdir(self.base):
                raise _Vanished from None
            self.warnings.append(f"{self.name}: {self.base}/{attr} does not exist")
        except OSError as exc:
            # sysfs answers EINVAL (ENODEV on some kernels) for a device that is being unregistered.
            if exc.errno in (errno.EINVAL, errno.ENODEV):
                raise _Vanished from None
            self.warnings.append(f"{self.name}: cannot read {self.base}/{attr} ({exc.strerror or exc})")
        return None

    def number(self, attr: str, radix: int) -> int:
        """The file as an integer (flags are hex: "0x1003"); 0, with a warning, if unreadable."""
        text = self.text(attr)
        if text is None:
            return 0
        try:
            return int(text, radix)
        except ValueError:
            self.warnings.append(f"{self.name}: {self.base}/{attr} holds {text[:40]!r}, not a number")
            return 0

    def speed(self) -> int | None:
        # Virtual interfaces answer EINVAL, or -1 (SPEED_UNKNOWN) as do NICs without link: both mean "not known".
        try:
            speed = int(self._read("speed"))
        except (OSError, ValueError):
            return None
        return speed if speed > 0 else None
