"""netstat -o's Timer column (`netscope -tno`): real TCP sockets with keepalive, in TIME_WAIT and in
retransmission to a peer that stopped answering (a network namespace whose link went down), checked against
the kernel's own numbers in /proc/net/tcp and against netstat itself where it is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from support import VethPair

from netscope.collectors.timers import Timer, read_proc_timers, read_timers, timer_text

NETSCOPE = [sys.executable, "-m", "netscope"]
HOST = "127.0.97.1"
TIMER = re.compile(r"(off|on|keepalive|timewait|probe) \((\d+\.\d\d)/(\d+)/(\d+)\)$")


def netscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=60)


def timer_column(output: str, local: str, remote: str) -> tuple[str, float, int, int]:
    [line] = [line for line in output.splitlines() if line.split()[3:5] == [local, remote]]
    found = TIMER.search(line)
    assert found, line
    return found[1], float(found[2]), int(found[3]), int(found[4])


@pytest.fixture
def keepalive_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """An ESTABLISHED loopback connection whose client has keepalive after 600 s of quiet."""
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen(1)
    client = socket.socket()
    client.bind((HOST, 0))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 600)
    client.connect(server.getsockname())
    accepted, _ = server.accept()
    yield client, accepted
    for sock in (client, accepted, server):
        sock.close()


def endpoint(sock: socket.socket, peer: bool = False) -> str:
    host, port = sock.getpeername() if peer else sock.getsockname()
    return f"{host}:{port}"


def test_keepalive_and_plain_connections_as_netstat_prints_them(
    keepalive_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, accepted = keepalive_pair
    result = netscope("-tno", "--filter", f"ip:{HOST}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].endswith("PID/Program name     Timer")
    kind, seconds, retransmits, probes = timer_column(result.stdout, endpoint(client), endpoint(client, True))
    assert (kind, retransmits, probes) == ("keepalive", 0, 0) and 590 < seconds <= 600
    assert timer_column(result.stdout, endpoint(accepted), endpoint(accepted, True)) == ("off", 0.0, 0, 0)
    if shutil.which("netstat"):  # the tool people compare with: same kind and counters, seconds a moment apart
        theirs = subprocess.run(["netstat", "-tno"], capture_output=True, text=True, timeout=60).stdout
        their_kind, their_seconds, *their_counts = timer_column(theirs, endpoint(client), endpoint(client, True))
        assert (their_kind, *their_counts) == ("keepalive", 0, 0)
        assert abs(their_seconds - seconds) < 30


def test_time_wait_counts_down_from_sixty_seconds(keepalive_pair: tuple[socket.socket, socket.socket]) -> None:
    client, accepted = keepalive_pair
    local, remote = endpoint(client), endpoint(client, True)
    client.close()  # the side that closes first waits
    accepted.close()
    time.sleep(0.2)
    records = json.loads(netscope("-to", "--json", "--filter", f"ip:{HOST} time_wait").stdout)
    [record] = [r for r in records if f"{r['local_address']}:{r['local_port']}" == local]
    assert f"{record['remote_address']}:{record['remote_port']}" == remote
    assert record["timer"] == "timewait" and 50 < record["timer_seconds"] <= 60
    assert (record["retransmits"], record["probes"]) == (0, 0)


def test_netlink_and_proc_net_give_the_same_timers(keepalive_pair: tuple[socket.socket, socket.socket]) -> None:
    client, _ = keepalive_pair
    netlink, source = read_timers()
    proc = read_proc_timers()
    assert source == "netlink"
    port = client.getpeername()[1]
    ours = {key for key in netlink if key[1] == HOST and port in (key[2], key[4]) and key[5]}
    assert len(ours) == 3 and ours <= set(proc)  # the listener and both ends (not earlier tests' TIME_WAIT)
    for key in ours:
        mine, kernel = netlink[key], proc[key]
        assert (mine.kind, mine.retransmits, mine.probes) == (kernel.kind, kernel.retransmits, kernel.probes)
        assert abs(mine.seconds - kernel.seconds) < 1  # /proc counts in ticks, read a moment later
    assert timer_text(Timer("keepalive", 7179.884, 0, 0)) == "keepalive (7179.88/0/0)"
    assert timer_text(None) == "off (0.00/0/0)"  # UDP, as netstat prints it


PEER = (
    "import socket, sys, time\n"
    "s = socket.socket()\n"
    "s.bind((sys.argv[1], 0))\n"
    "s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "time.sleep(60)\n"
)


def test_retransmissions_to_a_peer_that_stopped_answering(veth_pair: VethPair) -> None:
    peer = subprocess.Popen(["ip", "netns", "exec", veth_pair.namespace, sys.executable, "-c", PEER,
                             veth_pair.peer_address], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert peer.stdout is not None
        port = int(peer.stdout.readline())
        client = socket.create_connection((veth_pair.peer_address, port), timeout=10)
        down = ["ip", "-n", veth_pair.namespace, "link", "set", veth_pair.peer_interface, "down"]
        subprocess.run(down, check=True, timeout=30)
        client.send(b"x" * 1000)  # never acknowledged: the retransmission timer runs, with backoff
        time.sleep(2.5)
        result = netscope("-tno", "--filter", f"ip:{veth_pair.peer_address}")
        proc = read_proc_timers()
        local, inode = endpoint(client), os.fstat(client.fileno()).st_ino
        # Closed with a reset: no FIN_WAIT1 left retransmitting in this namespace for minutes after the test.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    finally:
        peer.kill()
        peer.wait(timeout=10)
    kind, seconds, retransmits, probes = timer_column(result.stdout, local, f"{veth_pair.peer_address}:{port}")
    assert kind == "on" and retransmits >= 2 and probes == 0 and seconds > 0
    host, local_port = local.rsplit(":", 1)
    kernel = proc[("tcp", host, int(local_port), veth_pair.peer_address, port, inode)]
    assert kernel.kind == "on" and abs(kernel.retransmits - retransmits) <= 1
    assert " 1000 " in result.stdout  # Send-Q: the bytes not acknowledged


async def test_details_show_the_timer_and_tcp_internals_without_choosing_a_column(
    keepalive_pair: tuple[socket.socket, socket.socket],
) -> None:
    from support import wait_for

    from netscope.app.netscope_app import NetscopeApp
    from netscope.app.screens.details import DetailsScreen

    client, accepted = keepalive_pair
    local_port = client.getsockname()[1]
    app = NetscopeApp(interval=0.2, filter_text=f"ip:{HOST} lport:{local_port}")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        await wait_for(pilot, lambda: "keepalive (" in str(screen.tcp_info.render()))
        text = str(screen.tcp_info.render())
        assert re.search(r"Timer\s+keepalive \(\d+\.\d\d/0/0\)", text) and "rtt " in text and "cwnd " in text
        assert "choose a tcp_info column" not in text
        # Both ends closed, the client first: it goes to TIME_WAIT, and the next second's lookup says so. (Alone,
        # its close can leave it in FIN_WAIT2 under the keepalive timer when the peer's ACK races the close.)
        client.close()
        accepted.close()
        await wait_for(pilot, lambda: "timewait (" in str(screen.tcp_info.render()))


# --- the Timer column of the live table ------------------------------------------------------------------------


def test_the_live_collector_reads_timers_with_tcp_info(
    keepalive_pair: tuple[socket.socket, socket.socket],
) -> None:
    from netscope.collectors.connections import ConnectionCollector

    client, accepted = keepalive_pair
    kernel, _ = read_timers()
    snapshot = ConnectionCollector(tcp_info=True).collect()
    mine = {key: timer for key, timer in snapshot.timers.items() if key[1] == HOST}
    [(client_key, keepalive)] = [(key, timer) for key, timer in mine.items() if key[2] == client.getsockname()[1]]
    assert (keepalive.kind, keepalive.retransmits) == (2, 0)  # keepalive, no probes yet
    [theirs] = [timer for key, timer in kernel.items() if key[:5] == client_key[:5]]
    assert abs((keepalive.deadline - snapshot.taken_at) - theirs.seconds) < 2
    server_end = (accepted.getsockname()[1], client.getsockname()[1])
    assert not any((key[2], key[4]) == server_end for key in mine)  # its timer is off: not listed
    assert ConnectionCollector(tcp_info=False).collect().timers == {}  # read only with tcp_info


async def test_the_timer_column_counts_down_and_sorts_by_time_left(
    keepalive_pair: tuple[socket.socket, socket.socket],
) -> None:
    from support import wait_for

    from netscope.app.netscope_app import NetscopeApp

    _, accepted = keepalive_pair
    listener = socket.create_server((HOST, 0))  # and a connection left in TIME_WAIT: its client closes first
    closing = socket.create_connection(listener.getsockname())
    closing_port = closing.getsockname()[1]
    closed, _ = listener.accept()
    closing.close()
    closed.close()
    ports = f"{accepted.getsockname()[1]},{listener.getsockname()[1]}"
    # Its own sockets' port pairs: a TIME_WAIT an earlier test left on a port the kernel has given out again
    # matches the filter too, and is no part of this test.
    own = {(closing_port, listener.getsockname()[1]), (listener.getsockname()[1], 0), *(
        (sock.getsockname()[1], sock.getpeername()[1]) for sock in keepalive_pair), (accepted.getsockname()[1], 0)}
    app = NetscopeApp(interval=0.2, filter_text=f"ip:{HOST} :{ports}", save_config=False)
    async with app.run_test(size=(200, 45)) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1)
        app.connections.show_metric_columns(["timer"])
        app.table.sort_by("timer")
        last_cell = re.compile(r"((?:timewait|keepalive|on|probe) \S+(?: ×\d+)?|-)\s*$")  # the Timer, shown last

        def timers() -> list[str]:
            return [found[1] if (found := last_cell.search(app.table.row_text(index))) else ""
                    for index, row in enumerate(app.table.rows) if (row.local_port, row.remote_port) in own]

        await wait_for(pilot, lambda: any(text.startswith("timewait") for text in timers()))
        shown = timers()
        # Soonest first: TIME_WAIT's minute, then keepalive's ten, then the sockets with none.
        assert shown[0].startswith("timewait") and shown[1].startswith("keepalive 9m"), shown
        assert len(shown) == 5 and all(text == "-" for text in shown[2:]), shown  # two listeners, one end off
        assert app.session.tcp_wanted  # choosing Timer reads tcp_info (and the timers with it)
    listener.close()
