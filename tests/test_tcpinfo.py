"""struct tcp_info parsing: against bytes laid out by ctypes from the kernel header's declaration, and against real
loopback connections as getsockopt(TCP_INFO) and `ss -tinm` report them."""

from __future__ import annotations

import contextlib
import ctypes
import random
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest

from netscope.collectors.sockdiag import SockDiagReader
from netscope.collectors.tcpinfo import TCP_INFO_MIN_LEN, TcpInfo, parse_tcp_info

u8, u32, u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_uint64


class KernelTcpInfo(ctypes.Structure):
    """struct tcp_info as declared in include/uapi/linux/tcp.h (Linux 5.4 to 6.1: through tcpi_snd_wnd), copied
    field by field; ctypes lays it out by the C rules, independently of netscope's offset table."""

    _fields_ = [
        ("tcpi_state", u8), ("tcpi_ca_state", u8), ("tcpi_retransmits", u8), ("tcpi_probes", u8),
        ("tcpi_backoff", u8), ("tcpi_options", u8), ("tcpi_snd_wscale", u8, 4), ("tcpi_rcv_wscale", u8, 4),
        ("tcpi_delivery_rate_app_limited", u8, 1), ("tcpi_fastopen_client_fail", u8, 2),
        ("tcpi_rto", u32), ("tcpi_ato", u32), ("tcpi_snd_mss", u32), ("tcpi_rcv_mss", u32),
        ("tcpi_unacked", u32), ("tcpi_sacked", u32), ("tcpi_lost", u32), ("tcpi_retrans", u32),
        ("tcpi_fackets", u32),
        ("tcpi_last_data_sent", u32), ("tcpi_last_ack_sent", u32), ("tcpi_last_data_recv", u32),
        ("tcpi_last_ack_recv", u32),
        ("tcpi_pmtu", u32), ("tcpi_rcv_ssthresh", u32), ("tcpi_rtt", u32), ("tcpi_rttvar", u32),
        ("tcpi_snd_ssthresh", u32), ("tcpi_snd_cwnd", u32), ("tcpi_advmss", u32), ("tcpi_reordering", u32),
        ("tcpi_rcv_rtt", u32), ("tcpi_rcv_space", u32),
        ("tcpi_total_retrans", u32),
        ("tcpi_pacing_rate", u64), ("tcpi_max_pacing_rate", u64), ("tcpi_bytes_acked", u64),
        ("tcpi_bytes_received", u64), ("tcpi_segs_out", u32), ("tcpi_segs_in", u32),
        ("tcpi_notsent_bytes", u32), ("tcpi_min_rtt", u32), ("tcpi_data_segs_in", u32),
        ("tcpi_data_segs_out", u32),
        ("tcpi_delivery_rate", u64),
        ("tcpi_busy_time", u64), ("tcpi_rwnd_limited", u64), ("tcpi_sndbuf_limited", u64),
        ("tcpi_delivered", u32), ("tcpi_delivered_ce", u32),
        ("tcpi_bytes_sent", u64), ("tcpi_bytes_retrans", u64), ("tcpi_dsack_dups", u32), ("tcpi_reord_seen", u32),
        ("tcpi_rcv_ooopack", u32),
        ("tcpi_snd_wnd", u32),
    ]


# TcpInfo field -> the kernel's field it must come from.
KERNEL_NAME = {
    "retransmits": "tcpi_retransmits", "rto_us": "tcpi_rto", "snd_mss": "tcpi_snd_mss", "lost": "tcpi_lost",
    "rtt_us": "tcpi_rtt", "rttvar_us": "tcpi_rttvar", "snd_cwnd": "tcpi_snd_cwnd",
    "total_retrans": "tcpi_total_retrans", "bytes_acked": "tcpi_bytes_acked",
    "bytes_received": "tcpi_bytes_received", "notsent_bytes": "tcpi_notsent_bytes", "min_rtt_us": "tcpi_min_rtt",
    "delivery_rate": "tcpi_delivery_rate", "bytes_sent": "tcpi_bytes_sent", "bytes_retrans": "tcpi_bytes_retrans",
    "snd_wnd": "tcpi_snd_wnd",
}
# struct sock_diag's SK_MEMINFO_* order: rmem_alloc, rcvbuf, wmem_alloc, sndbuf, fwd_alloc, wmem_queued, optmem,
# backlog, drops.
MEMINFO_INDEX = {"recv_buffer_used": 0, "recv_buffer": 1, "send_buffer": 3, "send_buffer_used": 5}


def filled(rng: random.Random) -> KernelTcpInfo:
    """A struct with a different random value in every field (bitfields too), so a wrong offset shows."""
    info = KernelTcpInfo()
    for name, ctype, *bits in KernelTcpInfo._fields_:
        width = bits[0] if bits else ctypes.sizeof(ctype) * 8
        setattr(info, name, rng.randrange(1, 1 << width))
    return info


def expected_from(info: KernelTcpInfo, length: int, meminfo: list[int] | None) -> dict[str, int | None]:
    expected: dict[str, int | None] = {}
    for ours, theirs in KERNEL_NAME.items():
        descriptor = getattr(KernelTcpInfo, theirs)
        fits = descriptor.offset + descriptor.size <= length
        expected[ours] = getattr(info, theirs) if fits else None
    for ours, index in MEMINFO_INDEX.items():
        expected[ours] = meminfo[index] if meminfo is not None else None
    return expected


def as_dict(info: TcpInfo) -> dict[str, int | None]:
    return {name: getattr(info, name) for name in TcpInfo.__dataclass_fields__}


def test_parses_the_kernel_layout_at_every_length() -> None:
    rng = random.Random()
    kernel = filled(rng)
    raw = bytes(kernel)
    assert len(raw) == ctypes.sizeof(KernelTcpInfo) == 232
    meminfo = [rng.randrange(1 << 32) for _ in range(9)]
    packed_meminfo = struct.pack("=9I", *meminfo)
    newer = raw + bytes(rng.randrange(256) for _ in range(48))  # a later kernel's longer struct: the rest ignored
    assert as_dict(parse_tcp_info(newer, packed_meminfo)) == expected_from(kernel, len(raw), meminfo)
    # Each length an older kernel has sent: 4.1 (136), 4.2 (144), 4.6 (160), 4.9 (168), 4.10 (192), 4.18 (200),
    # 4.19 (224), 5.4 (228, 232). What lies past the end is None, never a number read from elsewhere.
    for length in (136, 144, 160, 168, 192, 200, 224, 228, 232):
        parsed = parse_tcp_info(memoryview(raw)[:length], memoryview(packed_meminfo))
        assert as_dict(parsed) == expected_from(kernel, length, meminfo), length
    assert parse_tcp_info(raw[:160], None).bytes_sent is None and parse_tcp_info(raw[:168], None).delivery_rate
    assert as_dict(parse_tcp_info(raw, None)) == expected_from(kernel, len(raw), None)
    assert as_dict(parse_tcp_info(raw, packed_meminfo[:20])) == expected_from(kernel, len(raw), None)  # too short


def test_refuses_a_struct_without_the_byte_counters() -> None:
    raw = bytes(filled(random.Random()))
    for length in (0, 104, TCP_INFO_MIN_LEN - 1):
        with pytest.raises(ValueError, match="too short"):
            parse_tcp_info(raw[:length], None)
    parse_tcp_info(raw[:TCP_INFO_MIN_LEN], None)


def test_min_rtt_without_a_sample_is_unknown() -> None:
    kernel = filled(random.Random())
    kernel.tcpi_min_rtt = 0xFFFFFFFF  # what the kernel reports before the first RTT sample
    assert parse_tcp_info(bytes(kernel), None).min_rtt_us is None
    kernel.tcpi_min_rtt = 0
    assert parse_tcp_info(bytes(kernel), None).min_rtt_us == 0


# --- Real connections ---


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected (client, server) pair on loopback, in this process."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
        client = stack.enter_context(socket.create_connection(listener.getsockname()))
        server = stack.enter_context(listener.accept()[0])
        yield client, server


def key_of(sock: socket.socket) -> tuple[str, str, int, str, int, int]:
    local, remote = sock.getsockname(), sock.getpeername()
    return ("tcp", local[0], local[1], remote[0], remote[1], 0)


def own_info(sock: socket.socket) -> TcpInfo:
    return parse_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1024), None)


def receive_exactly(sock: socket.socket, size: int) -> None:
    while size:
        size -= len(sock.recv(min(size, 1 << 16)))


def settled(sock: socket.socket, timeout: float = 5.0) -> TcpInfo:
    """Wait until the connection's tcp_info stops changing (the last ACKs in), and return it."""
    deadline = time.monotonic() + timeout
    last = own_info(sock)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = own_info(sock)
        if now == last:
            return now
        last = now
    raise AssertionError("the connection's tcp_info never settled")


def test_sock_diag_matches_getsockopt(connection: tuple[socket.socket, socket.socket]) -> None:
    client, server = connection
    size = random.randrange(50_000, 500_000)
    client.sendall(random.randbytes(size))
    receive_exactly(server, size)
    for _attempt in range(10):
        mine = {key_of(client): settled(client), key_of(server): settled(server)}
        with SockDiagReader() as reader:
            reader.read(tcp_info=True)
            through_diag = {key: reader.last_tcp_info.get(key) for key in mine}
        # getsockopt has no socket memory: compare everything else, which is all still on an idle connection.
        stripped = {
            key: info if info is None else TcpInfo(**{**as_dict(info), **dict.fromkeys(MEMINFO_INDEX)})
            for key, info in through_diag.items()
        }
        if stripped == mine:
            break
    else:
        raise AssertionError(f"sock_diag {through_diag} and getsockopt {mine} never agreed")
    sent, received = mine[key_of(client)], mine[key_of(server)]
    assert sent.bytes_sent == size and sent.bytes_acked == size + 1  # the SYN counts as one acknowledged byte
    assert received.bytes_received == size and received.bytes_acked == 0
    assert sent.rtt_us > 0 and sent.snd_cwnd > 0 and sent.snd_mss > 0 and sent.min_rtt_us is not None
    for info in through_diag.values():
        assert info is not None
        assert info.recv_buffer and info.send_buffer  # the limits are never 0
        assert info.recv_buffer_used == 0 and info.send_buffer_used == 0  # all read, all acknowledged


SS_FIELD = re.compile(r"(?<![\w_])([a-z_]+):(\S+)")


def ss_info(local: tuple[str, int], remote: tuple[str, int]) -> dict[str, str]:
    """`ss -tinm`'s fields for one connection: name -> text (skmem's parts as skmem_r, skmem_rb ...)."""
    result = subprocess.run(
        ["ss", "-tinmH", "state", "all", "src", f"{local[0]}:{local[1]}", "dst", f"{remote[0]}:{remote[1]}"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    fields = dict(SS_FIELD.findall(result.stdout))
    skmem = re.search(r"skmem:\(([^)]*)\)", result.stdout)
    assert skmem is not None, result.stdout
    for part in skmem.group(1).split(","):
        name, value = re.fullmatch(r"([a-z]+)(\d+)", part).groups()  # type: ignore[union-attr]
        fields[f"skmem_{name}"] = value
    return fields


def compare_with_ss(info: TcpInfo, ss: dict[str, str]) -> None:
    # ss prints a counter only when it is not 0, and times in ms with "%g" (exact for these sizes).
    def number(name: str) -> int:
        return int(ss.get(name, "0"))

    rtt, rttvar = ss["rtt"].split("/")
    assert (info.rtt_us, info.rttvar_us) == (round(float(rtt) * 1000), round(float(rttvar) * 1000))
    assert info.min_rtt_us == round(float(ss["minrtt"]) * 1000)
    assert (info.snd_mss, info.snd_cwnd) == (number("mss"), number("cwnd"))
    assert (info.bytes_acked, info.bytes_received) == (number("bytes_acked"), number("bytes_received"))
    assert (info.bytes_sent, info.notsent_bytes, info.lost) == (
        number("bytes_sent"), number("notsent"), number("lost")
    )
    assert (info.bytes_retrans, info.snd_wnd) == (number("bytes_retrans"), number("snd_wnd"))
    assert info.total_retrans == int(ss.get("retrans", "0/0").split("/")[1])  # retrans:now/total
    assert (info.recv_buffer_used, info.recv_buffer) == (number("skmem_r"), number("skmem_rb"))
    assert (info.send_buffer_used, info.send_buffer) == (number("skmem_w"), number("skmem_tb"))


def test_sock_diag_matches_ss() -> None:
    if shutil.which("ss") is None:
        pytest.skip("needs iproute2's `ss`")
    with contextlib.ExitStack() as stack:
        # A receiver with a small buffer that reads nothing, and a sender that writes until it cannot: unread data
        # on one side (rmem), unsent and unacknowledged data on the other (wmem_queued, notsent).
        listener = stack.enter_context(socket.socket())
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sender = stack.enter_context(socket.create_connection(listener.getsockname()))
        receiver = stack.enter_context(listener.accept()[0])
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        sender.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            for _ in range(10_000):
                sender.send(b"q" * 4096)
        ends = [(sender, key_of(sender)), (receiver, key_of(receiver))]
        for _attempt in range(20):
            time.sleep(0.2)  # zero-window probes may still move the counters now and then: retry
            with SockDiagReader() as reader:
                reader.read(tcp_info=True)
                found = {key: reader.last_tcp_info[key] for _sock, key in ends}
            try:
                for sock, key in ends:
                    compare_with_ss(found[key], ss_info(sock.getsockname(), sock.getpeername()))
                    with SockDiagReader() as again:
                        again.read(tcp_info=True)
                        assert again.last_tcp_info[key] == found[key]  # unchanged meanwhile: a fair comparison
            except AssertionError:
                continue
            break
        else:
            for sock, key in ends:  # the last attempt again, to fail with its message
                compare_with_ss(found[key], ss_info(sock.getsockname(), sock.getpeername()))
        blocked, full = found[key_of(sender)], found[key_of(receiver)]
        assert blocked.notsent_bytes and blocked.send_buffer_used and full.recv_buffer_used
