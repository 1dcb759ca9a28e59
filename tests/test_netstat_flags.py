"""netstat's command line as people type it (`netscope -tn 2`, `-c`, `-I=lo`, `-A inet`, `-v`...): the real entry
point in a subprocess, against real loopback sockets."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from support import Peer

NETSCOPE = [sys.executable, "-m", "netscope"]
HOST = "127.0.98.1"  # an address of our own, so that the counts below are exact on a busy machine


def netscope(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=timeout)


def rows(output: str, port: int) -> list[str]:
    return [line for line in output.splitlines() if f"{HOST}:{port}" in line]


def tables(output: str) -> list[str]:
    """The output cut at each table's first header line."""
    return ["Active" + part for part in output.split("Active")[1:]]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen(8)
    yield server
    server.close()


def test_a_trailing_interval_repeats_the_table_with_what_changed(
    listener: socket.socket, spawn_peer: Callable[..., Peer]
) -> None:
    port = listener.getsockname()[1]
    process = subprocess.Popen([*NETSCOPE, "-tn", "0.3", "--filter", f"ip:{HOST}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Active Internet connections")
        client = socket.create_connection((HOST, port))  # a change after the first table
        peer, _ = listener.accept()
        seen = ""
        deadline = time.monotonic() + 20
        # Until the connection's table and one more after it: the table repeats, not just once.
        while time.monotonic() < deadline and (seen.count("ESTABLISHED") < 2
                                               or seen.count("Active Internet connections") < 2):
            ready, _, _ = select.select([process.stdout], [], [], 1)
            if ready:
                seen += process.stdout.readline()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    repeated = tables(first + seen + out)
    assert len(repeated) >= 3
    assert len(rows(repeated[0], port)) == 1  # the listener alone
    last = [table for table in repeated if table.count("ESTABLISHED") == 2][-1]
    assert len(rows(last, port)) == 3  # listener and both ends of the connection
    client.close()
    peer.close()


def test_c_repeats_every_interval_and_with_json_prints_one_array_each_time(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = netscope("-c", "--interval", "0.5", "--duration", "1.8", "--json", "--filter", f"ip:{HOST} listen")
    assert result.returncode == 0, result.stderr
    decoder, text, arrays = json.JSONDecoder(), result.stdout, []
    position = 0
    while position < len(text.rstrip()):
        array, position = decoder.raw_decode(text, position)
        arrays.append(array)
        position = len(text) - len(text[position:].lstrip())
    assert len(arrays) >= 3
    for array in arrays:
        assert [(r["local_port"], r["state"]) for r in array] == [(port, "LISTEN")]


def test_c_with_i_repeats_the_interface_table_of_one_interface() -> None:
    result = netscope("-i", "-I=lo", "2", "--duration", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Kernel Interface table") == 2
    body = [line for line in result.stdout.splitlines() if line and not line.startswith(("Kernel", "Iface"))]
    assert [line.split()[0] for line in body] == ["lo", "lo"]


def test_i_names_one_interface_and_a_missing_one_is_named_with_those_there_are() -> None:
    result = netscope("-I", "lo", "--json")  # -I implies -i
    assert result.returncode == 0, result.stderr
    assert [record["name"] for record in json.loads(result.stdout)] == ["lo"]
    result = netscope("-i", "--interface=nosuch0")
    assert result.returncode == 1
    assert "no interface named 'nosuch0'" in result.stderr and "lo" in result.stderr
    result = netscope("-r", "-I", "lo")
    assert result.returncode == 2 and "-I picks an interface for -i" in result.stderr


def test_a_family_picks_ipv4_or_ipv6(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    six = socket.socket(socket.AF_INET6)
    six.bind(("::1", 0))
    six.listen(1)
    port6 = six.getsockname()[1]
    try:
        inet = json.loads(netscope("-tln", "-A", "inet", "--json").stdout)
        inet6 = json.loads(netscope("-tln", "--protocol=inet6", "--json").stdout)
        both = json.loads(netscope("-tln", "-A", "inet,inet6", "--json").stdout)
    finally:
        six.close()
    assert {r["proto"] for r in inet} == {"tcp"} and {r["proto"] for r in inet6} == {"tcp6"}
    assert port in {r["local_port"] for r in inet} and port6 not in {r["local_port"] for r in inet}
    assert port6 in {r["local_port"] for r in inet6} and port not in {r["local_port"] for r in inet6}
    assert {port, port6} <= {r["local_port"] for r in both}
    bad = netscope("-A", "ipx")
    assert bad.returncode == 2
    assert "families inet, inet6" in bad.stderr and "'ipx'" in bad.stderr and "usage:" not in bad.stderr


@pytest.mark.parametrize(("flag", "why"), [
    ("-C", "route cache was removed in Linux 3.6"),
    ("--cache", "route cache was removed in Linux 3.6"),
    ("-N", "hardware names"),
    ("-Z", "SELinux"),
    ("--sctp", "ss --sctp"),
    ("-U", "UDP-Lite"),
    ("--rfcomm", "Bluetooth"),
])  # fmt: skip
def test_flags_linux_gives_no_meaning_are_refused_with_why(flag: str, why: str) -> None:
    result = netscope("-tn", flag)
    assert result.returncode == 2
    assert why in result.stderr and "is netstat's" in result.stderr
    assert "usage:" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("args", "says"), [
    (["-c", "--csv"], "CSV has no room"),
    (["-c", "--watch"], "--watch already repeats"),
    (["-tn", "2", "--interval", "3"], "two intervals"),
    (["-tn", "0"], "INTERVAL"),
    (["-tn", "soon"], "not a number of seconds"),
    (["--duration", "5"], "--duration stops --watch, -c"),
    (["-o", "--count"], "-o adds the Timer column"),
    (["-o", "--fold"], "-o adds the Timer column"),
])  # fmt: skip
def test_repeats_that_cannot_mean_anything_are_usage_errors(args: list[str], says: str) -> None:
    result = netscope(*args)
    assert result.returncode == 2, result.stdout
    assert says in result.stderr


def test_numeric_users_and_verbose(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = netscope("-tlne", "--numeric-users", "-v", "--filter", f"ip:{HOST} :{port}")
    assert result.returncode == 0, result.stderr
    [row] = rows(result.stdout, port)
    assert row.split()[6] == str(os.getuid())  # User, as a number
    named = netscope("-tlne", "--filter", f"ip:{HOST} :{port}").stdout
    assert rows(named, port)[0].split()[6] == "root" if os.getuid() == 0 else True
    # The kernel was asked for the filter's sockets alone: TCP listeners (-tl) on this address and port.
    summary = next(line for line in result.stderr.splitlines() if line.startswith("netscope: read "))
    assert summary.startswith("netscope: read 1 TCP and UDP sockets from netlink sock_diag, asking the kernel "
                              "for tcp (state mask 0x0400, a "), summary
    assert "udp" not in summary and summary.endswith(" ms")
    everything = netscope("-v", "--once")
    summary = next(line for line in everything.stderr.splitlines() if line.startswith("netscope: read "))
    assert "asking" not in summary and "and their owners" in summary
    total = len(json.loads(netscope("--json").stdout))
    assert abs(int(summary.split()[2]) - total) < 50  # the machine's own sockets come and go meanwhile


def test_numeric_hosts_and_ports_keep_numbers_beside_names() -> None:
    server = socket.socket()
    try:
        server.bind(("127.0.0.1", 8080))  # http-alt in /etc/services
    except OSError:
        pytest.skip("127.0.0.1:8080 is taken on this machine")
    server.listen(1)
    try:
        names = netscope("-tl", "--names", "--filter", "ip:127.0.0.1 :8080").stdout
        hosts = netscope("-tl", "--names", "--numeric-hosts", "--filter", "ip:127.0.0.1 :8080").stdout
        ports = netscope("-tl", "--names", "--numeric-ports", "--filter", "ip:127.0.0.1 :8080").stdout
    finally:
        server.close()
    assert "localhost:http-alt" in names
    assert "127.0.0.1:http-alt" in hosts
    assert "localhost:8080" in ports


def test_version_answers_to_netstat_s_capital_v() -> None:
    result = netscope("-V")
    assert result.returncode == 0 and result.stdout.startswith("netscope ")
