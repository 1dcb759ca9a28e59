"""Parsing /proc/net/{tcp,tcp6,udp,udp6}: captured kernel lines, hand-made edge cases, and live sockets."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netscope.collectors.model import Socket
from netscope.collectors.procnet import hex_to_address, parse_proc_net, read_all_sockets, read_proc_net

# --- Lines captured from this kind of machine's /proc/net files (x86-64, little-endian), trailing blanks kept. ---

TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    "                                                     "
)
TCP6_HEADER = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode"
)
UDP_HEADER = (
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref "
    "pointer drops            "
)
UDP6_HEADER = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode ref pointer drops"
)

CAPTURED_TCP = "\n".join(
    [
        TCP_HEADER,
        # 127.0.0.1:58949 LISTEN
        "   0: 0100007F:E645 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5073 1 "
        "000000005b7db495 100 0 0 10 0                      ",
        # 127.0.0.1:60856 -> 127.0.0.1:57071 ESTABLISHED
        "   2: 0100007F:EDB8 0100007F:DEEF 01 00000000:00000000 00:00000000 00000000     0        0 5077 1 "
        "00000000fd8b230e 20 0 0 11 -1                      ",
        # 127.0.0.1:42607 LISTEN with two connections waiting to be accepted (rx_queue = accept backlog)
        "   0: 0100007F:A66F 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 8737 3 "
        "000000005b7db495 100 0 0 10 0                      ",
        # TIME_WAIT: a shorter line, inode 0 (no owner)
        "   2: 0100007F:A456 0100007F:A66F 06 00000000:00000000 03:0000175C 00000000     0        0 0 3 "
        "00000000e24869dc                                      ",
        "",
    ]
)

CAPTURED_TCP6 = "\n".join(
    [
        TCP6_HEADER,
        # [::]:57071 LISTEN (dual-stack)
        "   0: 00000000000000000000000000000000:DEEF 00000000000000000000000000000000:0000 0A 00000000:00000000 "
        "00:00000000 00000000     0        0 5076 1 00000000ea04734f 100 0 0 10 0",
        # [::1]:51743 LISTEN
        "   1: 00000000000000000000000001000000:CA1F 00000000000000000000000000000000:0000 0A 00000000:00000000 "
        "00:00000000 00000000     0        0 5074 1 00000000f8473333 100 0 0 10 0",
        # [fd00::2]:36015 LISTEN
        "   2: 000000FD000000000000000002000000:8CAF 00000000000000000000000000000000:0000 0A 00000000:00000000 "
        "00:00000000 00000000     0        0 5075 1 00000000517f2c73 100 0 0 10 0",
        # [fd00::2]:46922 -> [fd00::2]:36015 ESTABLISHED, 7 bytes unread
        "   4: 000000FD000000000000000002000000:B74A 000000FD000000000000000002000000:8CAF 01 00000000:00000007 "
        "00:00000000 00000000     0        0 5079 2 0000000032f414eb 20 4 30 10 -1",
        # [::ffff:127.0.0.1]:57071 <- 127.0.0.1:60856 accepted on the dual-stack listener, 100 bytes unread
        "   5: 0000000000000000FFFF00000100007F:DEEF 0000000000000000FFFF00000100007F:EDB8 01 00000000:00000064 "
        "00:00000000 00000000     0        0 5078 1 000000007792aea5 20 4 30 10 -1",
    ]
)

CAPTURED_UDP = "\n".join(
    [
        UDP_HEADER,
        # 127.0.0.1:35671 bound, not connected; note "sl" runs into the colon once it has 5 digits
        "10187: 0100007F:8B57 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5081 2 "
        "000000000ea72f7b 0          ",
    ]
)

CAPTURED_UDP6 = "\n".join(
    [
        UDP6_HEADER,
        # [::1]:53591 connect()ed to [::1]:9
        "11723: 00000000000000000000000001000000:D157 00000000000000000000000001000000:0009 01 00000000:00000000 "
        "00:00000000 00000000     0        0 5082 2 00000000c74c3f59 0",
    ]
)


def by_inode(sockets: list[Socket]) -> dict[int, Socket]:
    return {s.inode: s for s in sockets if s.inode}


def test_captured_tcp_lines() -> None:
    socks = parse_proc_net(CAPTURED_TCP, "tcp")
    assert len(socks) == 4
    listen, est, backlog, time_wait = socks
    assert (listen.proto, listen.local_ip, listen.local_port, listen.remote_ip, listen.remote_port) == (
        "tcp",
        "127.0.0.1",
        58949,
        "0.0.0.0",
        0,
    )
    assert (listen.state, listen.inode, listen.uid, listen.recv_q, listen.send_q) == ("LISTEN", 5073, 0, 0, 0)
    assert (listen.pid, listen.program, listen.user) == (None, "", "")
    assert (est.local_ip, est.local_port, est.remote_ip, est.remote_port, est.state, est.inode) == (
        "127.0.0.1",
        60856,
        "127.0.0.1",
        57071,
        "ESTABLISHED",
        5077,
    )
    assert (backlog.local_port, backlog.state, backlog.recv_q, backlog.send_q) == (42607, "LISTEN", 2, 0)
    assert (time_wait.state, time_wait.inode, time_wait.local_port, time_wait.remote_port) == (
        "TIME_WAIT",
        0,
        42070,
        42607,
    )


def test_captured_tcp6_lines() -> None:
    socks = parse_proc_net(CAPTURED_TCP6, "tcp6")
    got = {(s.local_ip, s.local_port, s.remote_ip, s.remote_port, s.state, s.recv_q, s.inode) for s in socks}
    assert got == {
        ("::", 57071, "::", 0, "LISTEN", 0, 5076),
        ("::1", 51743, "::", 0, "LISTEN", 0, 5074),
        ("fd00::2", 36015, "::", 0, "LISTEN", 0, 5075),
        ("fd00::2", 46922, "fd00::2", 36015, "ESTABLISHED", 7, 5079),
        ("::ffff:127.0.0.1", 57071, "::ffff:127.0.0.1", 60856, "ESTABLISHED", 100, 5078),
    }
    assert all(s.proto == "tcp6" and s.family == 6 for s in socks)


def test_captured_udp_lines() -> None:
    (udp,) = parse_proc_net(CAPTURED_UDP, "udp")
    assert (udp.local_ip, udp.local_port, udp.state, udp.inode, udp.is_listening) == (
        "127.0.0.1",
        35671,
        "UNCONN",
        5081,
        True,
    )
    (udp6,) = parse_proc_net(CAPTURED_UDP6, "udp6")
    assert (udp6.local_ip, udp6.local_port, udp6.remote_ip, udp6.remote_port, udp6.state) == (
        "::1",
        53591,
        "::1",
        9,
        "ESTABLISHED",
    )


# Hand-encoded as the kernel prints them: four 32-bit words, each %08X of a little-endian load.
@pytest.mark.parametrize(
    ("hex_addr", "expected"),
    [
        ("0100007F", "127.0.0.1"),
        ("00000000", "0.0.0.0"),
        ("0101A8C0", "192.168.1.1"),
        ("00000000000000000000000001000000", "::1"),
        ("00000000000000000000000000000000", "::"),
        ("0000000000000000FFFF00000100007F", "::ffff:127.0.0.1"),
        ("B80D01200000A3852E8A000034737003", "2001:db8:85a3::8a2e:370:7334"),
        ("000080FE00000000FF00FC00010000FE", "fe80::fc:ff:fe00:1"),
        ("B80D0120000000000000000001000000", "2001:db8::1"),
    ],
)
def test_hex_to_address(hex_addr: str, expected: str) -> None:
    assert hex_to_address(hex_addr) == expected
    # And via the cache, a second time.
    assert hex_to_address(hex_addr) == expected


def test_hand_written_ipv6_line() -> None:
    line = (
        "   0: B80D01200000A3852E8A000034737003:01BB 000080FE00000000FF00FC00010000FE:C350 01 0000000A:00000014 "
        "00:00000000 00000000  1000        0 424242 1 0000000000000000 20 4 30 10 -1"
    )
    (sock,) = parse_proc_net(TCP6_HEADER + "\n" + line + "\n", "tcp6")
    assert (sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port) == (
        "2001:db8:85a3::8a2e:370:7334",
        443,
        "fe80::fc:ff:fe00:1",
        50000,
    )
    assert (sock.send_q, sock.recv_q, sock.uid, sock.inode, sock.state) == (10, 20, 1000, 424242, "ESTABLISHED")


def test_state_names_for_tcp_and_udp() -> None:
    def state_of(proto: str, st: str) -> str:
        line = f"   0: 0100007F:0050 0100007F:0051 {st} 00000000:00000000 00:00000000 00000000     0        0 1 1"
        (sock,) = parse_proc_net("header\n" + line, proto)
        return sock.state

    assert state_of("tcp", "07") == "CLOSE"
    assert state_of("tcp", "08") == "CLOSE_WAIT"
    assert state_of("tcp", "0C") == "NEW_SYN_RECV"
    assert state_of("udp", "07") == "UNCONN"
    assert state_of("udp", "01") == "ESTABLISHED"
    # A state number this code does not know is shown, not dropped.
    assert state_of("tcp", "0D") == "UNKNOWN(13)"


GOOD_LINE = (
    "   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 "
    "0000000000000000 100 0 0 10 0"
)


@pytest.mark.parametrize(
    "bad_line",
    [
        "garbage",
        "   0: 0100007F:0050 00000000:0000 0A",  # truncated: too few fields
        GOOD_LINE[:60],  # cut in the middle of the uid column
        GOOD_LINE.replace("0100007F:0050", "0100007G:0050"),  # bad hex in the address
        GOOD_LINE.replace("0100007F:0050", "0100007F:00ZZ"),  # bad hex in the port
        GOOD_LINE.replace("0100007F:0050", "0100007F:50"),  # short port
        GOOD_LINE.replace("0100007F:0050", "100007F:00500"),  # colon in the wrong place
        GOOD_LINE.replace("0100007F:0050", "00000000000000000000000001000000:0050"),  # IPv6 address in a v4 file
        GOOD_LINE.replace("00000000:00000000", "0000000:000000000"),  # queues split wrongly
        GOOD_LINE.replace("00000000:00000000", "0000000X:00000000"),  # bad hex queue
        GOOD_LINE.replace(" 111 ", " 11x "),  # non-numeric inode
        GOOD_LINE.replace("     0        0", "     u        0"),  # non-numeric uid
        GOOD_LINE.replace(" 0A ", " ZZ "),  # non-hex state
    ],
)
def test_malformed_lines_are_skipped(bad_line: str) -> None:
    text = "\n".join([TCP_HEADER, GOOD_LINE, bad_line, GOOD_LINE.replace(" 111 ", " 222 ")])
    socks = parse_proc_net(text, "tcp")
    assert [s.inode for s in socks] == [111, 222]


def test_empty_and_header_only() -> None:
    assert parse_proc_net("", "tcp") == []
    assert parse_proc_net(TCP_HEADER, "tcp") == []
    assert parse_proc_net(TCP_HEADER + "\n", "udp6") == []
    # The first line is always the header, even if it looks like data.
    assert parse_proc_net(GOOD_LINE, "tcp") == []


def test_ipv4_line_in_v6_file_is_skipped() -> None:
    assert parse_proc_net(TCP_HEADER + "\n" + GOOD_LINE, "tcp6") == []


def test_unknown_protocol_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="sctp"):
        parse_proc_net(TCP_HEADER, "sctp")


def test_parse_many_lines_matches_ipaddress_module() -> None:
    # Cross-check the word-order decoding against the standard library on many addresses.
    lines = [TCP6_HEADER]
    expected = []
    for i in range(500):
        packed = bytes((i * 7 + k * 13) % 256 for k in range(16))
        words = "".join(packed[j : j + 4][::-1].hex().upper() for j in range(0, 16, 4))
        lines.append(
            f"{i:4d}: {words}:{i:04X} 00000000000000000000000000000000:0000 0A 00000000:00000000 "
            f"00:00000000 00000000     0        0 {i + 1} 1 0000000000000000 100 0 0 10 0"
        )
        expected.append((str(ipaddress.IPv6Address(packed)), i))
    socks = parse_proc_net("\n".join(lines), "tcp6")
    assert [(s.local_ip, s.local_port) for s in socks] == expected


# --- Missing files and a fake /proc made of real files ---


def test_missing_files_give_warnings(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "tcp").write_text(CAPTURED_TCP)
    (net / "udp").write_text(CAPTURED_UDP)
    sockets, warnings = read_all_sockets(str(tmp_path))
    assert {s.inode for s in sockets} == {5073, 5077, 8737, 0, 5081}
    assert len(warnings) == 2
    assert any("IPv6" in w and f"{tmp_path}/net/tcp6 does not exist" in w for w in warnings)
    assert any("IPv6" in w and f"{tmp_path}/net/udp6 does not exist" in w for w in warnings)
    assert read_proc_net("tcp6", str(tmp_path)) == []
    assert len(read_proc_net("tcp", str(tmp_path))) == 4


def test_all_four_files_present_gives_no_warning(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    for name, text in (
        ("tcp", CAPTURED_TCP),
        ("tcp6", CAPTURED_TCP6),
        ("udp", CAPTURED_UDP),
        ("udp6", CAPTURED_UDP6),
    ):
        (net / name).write_text(text)
    sockets, warnings = read_all_sockets(str(tmp_path))
    assert warnings == []
    assert len(sockets) == 4 + 5 + 1 + 1
    assert {s.proto for s in sockets} == {"tcp", "tcp6", "udp", "udp6"}


# --- Live sockets of this process, read back from the real /proc ---


@pytest.fixture
def sockets_to_close() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for s in opened:
            s.close()


def ino(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def find(proto: str, inode: int) -> Socket:
    matches = [s for s in read_proc_net(proto) if s.inode == inode]
    assert len(matches) == 1, f"inode {inode} not found exactly once in /proc/net/{proto}"
    return matches[0]


def poll(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Retry `check` until it holds or `timeout` passes: the kernel updates queues asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def ipv6_socket(kind: int = socket.SOCK_STREAM) -> socket.socket:
    if not socket.has_ipv6 or not os.path.exists("/proc/net/tcp6"):
        pytest.skip("IPv6 is not available in this kernel")
    try:
        s = socket.socket(socket.AF_INET6, kind)
        s.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"cannot bind to ::1 ({exc})")
    return s


def test_live_listen_ipv4(sockets_to_close: list[socket.socket]) -> None:
    srv = socket.socket()
    sockets_to_close.append(srv)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    sock = find("tcp", ino(srv))
    assert (sock.local_ip, sock.local_port, sock.state) == ("127.0.0.1", srv.getsockname()[1], "LISTEN")
    assert (sock.remote_ip, sock.remote_port) == ("0.0.0.0", 0)
    assert sock.uid == os.geteuid()


def test_live_listen_ipv6(sockets_to_close: list[socket.socket]) -> None:
    srv = ipv6_socket()
    sockets_to_close.append(srv)
    srv.listen()
    sock = find("tcp6", ino(srv))
    assert (sock.local_ip, sock.local_port, sock.state) == ("::1", srv.getsockname()[1], "LISTEN")


def test_live_established_both_ways(sockets_to_close: list[socket.socket]) -> None:
    srv = socket.socket()
    sockets_to_close.append(srv)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    client = socket.create_connection(srv.getsockname(), timeout=5)
    sockets_to_close.append(client)
    server_side, _ = srv.accept()
    sockets_to_close.append(server_side)
    c = find("tcp", ino(client))
    s = find("tcp", ino(server_side))
    assert c.state == s.state == "ESTABLISHED"
    assert (c.local_ip, c.local_port) == (s.remote_ip, s.remote_port) == client.getsockname()
    assert (s.local_ip, s.local_port) == (c.remote_ip, c.remote_port) == srv.getsockname()


def test_live_unread_data_is_recv_q(sockets_to_close: list[socket.socket]) -> None:
    srv = socket.socket()
    sockets_to_close.append(srv)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    client = socket.create_connection(srv.getsockname(), timeout=5)
    sockets_to_close.append(client)
    receiver, _ = srv.accept()
    sockets_to_close.append(receiver)
    client.sendall(b"x" * 1234)
    assert poll(lambda: find("tcp", ino(receiver)).recv_q == 1234), find("tcp", ino(receiver))
    assert find("tcp", ino(client)).recv_q == 0


def test_live_listen_backlog_is_recv_q(sockets_to_close: list[socket.socket]) -> None:
    # Like netstat: for a LISTEN socket the kernel's rx_queue is the number of connections not yet accepted.
    srv = socket.socket()
    sockets_to_close.append(srv)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    for _ in range(3):
        sockets_to_close.append(socket.create_connection(srv.getsockname(), timeout=5))
    assert poll(lambda: find("tcp", ino(srv)).recv_q == 3), find("tcp", ino(srv))


def test_live_ipv6_established_and_recv_q(sockets_to_close: list[socket.socket]) -> None:
    srv = ipv6_socket()
    sockets_to_close.append(srv)
    srv.listen()
    client = socket.create_connection(srv.getsockname()[:2], timeout=5)
    sockets_to_close.append(client)
    receiver, _ = srv.accept()
    sockets_to_close.append(receiver)
    client.sendall(b"y" * 77)
    assert poll(lambda: find("tcp6", ino(receiver)).recv_q == 77)
    sock = find("tcp6", ino(receiver))
    assert (sock.state, sock.local_ip, sock.remote_ip, sock.remote_port) == (
        "ESTABLISHED",
        "::1",
        "::1",
        client.getsockname()[1],
    )


def test_live_udp_unconnected_and_connected(sockets_to_close: list[socket.socket]) -> None:
    unconnected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets_to_close.append(unconnected)
    unconnected.bind(("127.0.0.1", 0))
    sock = find("udp", ino(unconnected))
    assert (sock.local_port, sock.state, sock.remote_port) == (unconnected.getsockname()[1], "UNCONN", 0)
    assert sock.is_listening

    connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets_to_close.append(connected)
    connected.bind(("127.0.0.1", 0))
    connected.connect(unconnected.getsockname())
    sock = find("udp", ino(connected))
    assert (sock.state, sock.remote_port) == ("ESTABLISHED", unconnected.getsockname()[1])


def test_live_udp6_unconnected(sockets_to_close: list[socket.socket]) -> None:
    u = ipv6_socket(socket.SOCK_DGRAM)
    sockets_to_close.append(u)
    sock = find("udp6", ino(u))
    assert (sock.local_ip, sock.local_port, sock.state) == ("::1", u.getsockname()[1], "UNCONN")


def test_read_all_sockets_live(sockets_to_close: list[socket.socket]) -> None:
    srv = socket.socket()
    sockets_to_close.append(srv)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    sockets, warnings = read_all_sockets()
    assert ino(srv) in {s.inode for s in sockets}
    assert all(isinstance(w, str) and w for w in warnings)
