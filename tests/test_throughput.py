"""Per-connection throughput: a real, paced loopback transfer of a known size, watched through ConnectionCollector
snapshots with tcp_info, and the tracker's bookkeeping (restarts, forgetting, groups)."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import Snapshot, Socket
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.session.throughput import ThroughputTracker
from netscope.collectors.tcpinfo import TcpInfo

SIZE = 8 << 20
SECONDS = 3.0

# Sends SIZE bytes to the first client, paced evenly over SECONDS against the clock (catching up when it falls
# behind), then holds the connection open until the client closes it.
PACED_SENDER = textwrap.dedent(
    """
    import socket, sys, time
    size, seconds = int(sys.argv[1]), float(sys.argv[2])
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    chunk = 64 << 10
    chunks = size // chunk
    start = time.monotonic()
    for index in range(chunks):
        delay = start + index * seconds / chunks - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        conn.sendall(b"x" * chunk)
    print("sent", flush=True)
    conn.recv(1)
    """
)


@pytest.fixture
def paced_sender() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", PACED_SENDER, str(SIZE), str(SECONDS)], stdout=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


class Receiver(threading.Thread):
    """Reads everything from `sock`, noting when the first and the last byte came (time.time(), as snapshots)."""

    def __init__(self, sock: socket.socket, size: int) -> None:
        super().__init__(daemon=True)
        self.sock, self.size = sock, size
        self.first = self.last = 0.0
        self.received = 0

    def run(self) -> None:
        while self.received < self.size:
            data = self.sock.recv(1 << 16)
            if not data:
                return
            if not self.received:
                self.first = time.time()
            self.received += len(data)
        self.last = time.time()


def test_rates_and_totals_of_a_real_transfer(paced_sender: subprocess.Popen[str]) -> None:
    assert paced_sender.stdout is not None
    port = int(paced_sender.stdout.readline())
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.connect(udp.getsockname())  # a connected UDP socket: ESTABLISHED, and still no tcp_info
    client = socket.create_connection(("127.0.0.1", port))
    try:
        local = client.getsockname()
        receiving = ("tcp", "127.0.0.1", local[1], "127.0.0.1", port, 0)
        sending = ("tcp", "127.0.0.1", port, "127.0.0.1", local[1], 0)
        receiver = Receiver(client, SIZE)
        collector = ConnectionCollector(interval=0.3, tcp_info=True)
        tracker = ThroughputTracker(history=100)
        samples: list[tuple[float, float, float | None, float | None]] = []  # from, to, send rate, recv rate
        receiver.start()
        last = collector.collect()
        tracker.update(last)
        deadline = time.monotonic() + 30
        while receiver.is_alive() or len(samples) < 2:
            assert time.monotonic() < deadline, "the transfer never finished"
            time.sleep(0.3)
            snapshot = collector.collect()
            tracker.update(snapshot)
            sent, received = tracker.get(sending), tracker.get(receiving)
            assert sent is not None and received is not None
            samples.append((last.taken_at, snapshot.taken_at, sent.send_rate, received.recv_rate))
            last = snapshot
        receiver.join()
        assert receiver.received == SIZE

        # Totals, once done: the kernel's counters against what was sent (the server's end counts no SYN).
        time.sleep(0.3)
        final = collector.collect()
        tracker.update(final)
        sender_info, receiver_info = final.tcp_info[sending], final.tcp_info[receiving]
        assert SIZE <= sender_info.bytes_acked <= SIZE + 1
        assert sender_info.bytes_sent == SIZE + sender_info.bytes_retrans  # (a tail loss probe resends a little)
        assert receiver_info.bytes_received == SIZE and receiver_info.bytes_acked == 1  # its SYN only
        sender_socket = final.sockets[sending]
        assert sender_socket.pid == paced_sender.pid and final.sockets[receiving].pid is not None

        # Rates: the samples whose interval lies inside the transfer, against its pace as the receiver saw it.
        pace = SIZE / (receiver.last - receiver.first)
        inside = [s for s in samples if s[0] >= receiver.first and s[1] <= receiver.last]
        assert len(inside) >= 3, f"too few samples inside a {receiver.last - receiver.first:.1f} s transfer"
        send_rates = [s[2] for s in inside]
        recv_rates = [s[3] for s in inside]
        assert None not in send_rates and None not in recv_rates
        for rates in (send_rates, recv_rates):
            assert abs(statistics.median(rates) - pace) < 0.3 * pace, (rates, pace)  # type: ignore[type-var]
        done = tracker.get(sending)
        assert done is not None and done.send_rate == 0.0 and done.bytes_sent == sender_info.bytes_acked
        history = tracker.history(sending)
        assert [rate for rate, _ in history] == [s[2] for s in samples] + [0.0]  # the final collect's too
        assert all(recv == 0.0 for _, recv in history)

        # Groups: the sender's process, and the peer address; their filters select their connections.
        (group,) = [g for g in tracker.by_process(final) if g.filter_text == f"pid:{paced_sender.pid}"]
        assert group.connections == 1 and group.bytes_sent == sender_info.bytes_acked
        assert group.key == f"{sender_socket.program} ({paced_sender.pid})"
        assert parse_filter(group.filter_text).matches(sender_socket)
        (host,) = [g for g in tracker.by_remote_host(final) if g.key == "127.0.0.1"]
        assert host.filter_text == "rip:127.0.0.1" and parse_filter(host.filter_text).matches(sender_socket)
        assert host.connections >= 2 and host.bytes_received >= SIZE

        # No tcp_info for UDP or listeners; none at all from /proc.
        udp_key = ("udp", "127.0.0.1", udp.getsockname()[1], "127.0.0.1", udp.getsockname()[1], 0)
        assert final.sockets[udp_key].state == "ESTABLISHED" and udp_key not in final.tcp_info
        assert not [k for k in final.tcp_info if final.sockets[k].state == "LISTEN" or not final.sockets[k].is_tcp]
        from_proc = ConnectionCollector(reader="proc", tcp_info=True).collect()
        assert sending in from_proc.sockets and from_proc.tcp_info == {}
        assert ConnectionCollector().collect().tcp_info == {}  # off by default
    finally:
        client.close()
        udp.close()


# --- The tracker's bookkeeping, on made-up snapshots ---


def info(sent: int, received: int) -> TcpInfo:
    return TcpInfo(
        retransmits=0, rto_us=200_000, snd_mss=1448, lost=0, rtt_us=100, rttvar_us=50, snd_cwnd=10,
        total_retrans=0, bytes_acked=sent, bytes_received=received, notsent_bytes=0, min_rtt_us=90,
        delivery_rate=0, bytes_sent=sent, bytes_retrans=0, snd_wnd=65536, send_buffer_used=0, send_buffer=87040,
        recv_buffer_used=0, recv_buffer=131072,
    )


def connection(port: int, pid: int | None, remote: str = "10.0.0.5") -> Socket:
    proto = "tcp6" if ":" in remote else "tcp"
    local = "::ffff:10.0.0.1" if remote.startswith("::ffff:") else "10.0.0.1"
    return Socket(proto, local, port, remote, 443, "ESTABLISHED", 0, 0, port, 0, "root", pid, f"prog{pid}")


def snapshot(at: float, *counters: tuple[Socket, int, int]) -> Snapshot:
    """A snapshot of these connections, each with its bytes acknowledged and received."""
    return Snapshot(at, {s.key: s for s, *_ in counters}, tcp_info={s.key: info(t, r) for s, t, r in counters})


def test_tracker_restarts_forgets_and_groups() -> None:
    a, b, c = connection(1001, 7), connection(1002, 7), connection(1003, None, "::ffff:10.0.0.5")
    tracker = ThroughputTracker(history=3)
    tracker.update(snapshot(100.0, (a, 1, 0), (b, 1, 500)))
    first = tracker.get(a.key)
    assert first is not None and (first.send_rate, first.recv_rate) == (None, None) and not tracker.history(a.key)
    tracker.update(snapshot(102.0, (a, 4001, 1000), (b, 1, 500), (c, 10, 10)))
    now = tracker.get(a.key)
    assert now is not None and (now.bytes_sent, now.bytes_received) == (4001, 1000)
    assert (now.send_rate, now.recv_rate) == (2000.0, 500.0) and tracker.history(a.key) == [(2000.0, 500.0)]
    assert tracker.history(b.key) == [(0.0, 0.0)]

    # The same snapshot twice (no time passed) measures nothing and breaks nothing.
    tracker.update(snapshot(102.0, (a, 4001, 1000), (b, 1, 500), (c, 10, 10)))
    assert tracker.history(a.key) == [(2000.0, 500.0)]

    # Groups: one per process (c's owner unknown: left out), one per host (c's mapped address is the same host).
    (process,) = tracker.by_process(snapshot(102.0, (a, 4001, 1000), (b, 1, 500), (c, 10, 10)))
    assert (process.key, process.filter_text, process.connections) == ("prog7 (7)", "pid:7", 2)
    assert (process.bytes_sent, process.bytes_received) == (4002, 1500)
    (host,) = tracker.by_remote_host(snapshot(102.0, (a, 4001, 1000), (b, 1, 500), (c, 10, 10)))
    assert (host.key, host.filter_text, host.connections) == ("10.0.0.5", "rip:10.0.0.5", 3)
    assert parse_filter(host.filter_text).matches(c) and parse_filter(process.filter_text).matches(a)

    # A counter going backwards: a new connection on the same 4-tuple, which starts over.
    tracker.update(snapshot(103.0, (a, 100, 50), (b, 1001, 500)))
    reused = tracker.get(a.key)
    assert reused is not None and reused.send_rate is None and tracker.history(a.key) == []
    assert tracker.get(c.key) is None and tracker.history(c.key) == []  # gone: forgotten
    # History keeps the last `history` samples.
    tracker.update(snapshot(104.0, (b, 1041, 500)))
    assert tracker.history(b.key) == [(0.0, 0.0), (1000.0, 0.0), (40.0, 0.0)]
    for second in range(5, 8):
        tracker.update(snapshot(100.0 + second, (b, 1001 + 10 * second, 500)))
    assert tracker.history(b.key) == [(10.0, 0.0)] * 3
    # Counters present but rates unknown until the second sample: counted, adding 0 to the sums.
    fresh = connection(2000, 8, "10.0.0.9")
    groups = ThroughputTracker().by_remote_host(snapshot(1.0, (fresh, 5, 6)))
    assert [(g.key, g.connections, g.send_rate, g.bytes_sent) for g in groups] == [("10.0.0.9", 1, 0.0, 5)]
    # Busiest first.
    tracker.update(snapshot(108.0, (a, 100, 50), (b, 1081, 500), (fresh, 5, 6)))
    tracker.update(snapshot(109.0, (a, 100, 50), (b, 1081, 500), (fresh, 50_005, 6)))
    latest = snapshot(109.0, (a, 100, 50), (b, 1081, 500), (fresh, 50_005, 6))
    assert [g.key for g in tracker.by_process(latest)] == ["prog8 (8)", "prog7 (7)"]
