"""The command line as scripts use it: the real `netscope` entry point in a subprocess, against real sockets."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Peer

from netscope.app.printed.formats import FIELDS, socket_json, socket_record
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.model import Socket
from netscope.collectors.recording import NotARecording, RecordingReader

NETSCOPE = [sys.executable, "-m", "netscope"]
# A loopback address of our own: on a busy machine other loopback sockets use every port number somewhere
# (127.0.0.1:PORT's port is also some client's ephemeral port on another address), so `:PORT` alone would
# count them too. With `ip:` in the filter, the expected numbers are exact.
HOST = "127.0.99.1"


def netscope(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def load(spawn_peer: Callable[..., Peer]) -> tuple[Peer, list[Peer]]:
    """A server on HOST holding a connection from each of three client processes."""
    server = spawn_peer("server", "--host", HOST, "--name", "ns-cli-server")
    clients = [
        spawn_peer("client", str(server.port), "--host", HOST, "--name", f"ns-cli-client-{i}") for i in range(3)
    ]
    return server, clients


def ours(server: Peer) -> str:
    return f"ip:{HOST} :{server.port}"


def test_count_of_established_sockets(load: tuple[Peer, list[Peer]]) -> None:
    server, _ = load
    result = netscope("--once", "--filter", f"{ours(server)} established", "--count")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "6\n"  # three connections, both ends of each
    result = netscope("--once", "--filter", f"{ours(server)} listen", "--count")
    assert result.stdout == "1\n"


def test_the_direct_json_is_json_dumps_of_the_record_for_every_socket(load: tuple[Peer, list[Peer]]) -> None:
    # The fast path of --json (socket_json) against the general one, on this machine's real sockets (owned,
    # ownerless TIME_WAIT, UDP, IPv6 as there are) and on names a hostile process could choose.
    sockets = list(ConnectionCollector().collect().sockets.values())
    hostile = Socket("tcp6", "::1", 8080, "::ffff:10.0.0.1", 1, "NEW_SYN_RECV", 0, 5, 0, 4294967295)
    named = Socket("udp", "127.0.0.1", 53, "0.0.0.0", 0, "UNCONN", 2**31, 0, 2**40, 0, user='r"o\\o\nt',
                   pid=4194304, program="\x1b[31m\u202eéviL\"},{\t\U0001f600")  # fmt: skip
    for sock in [*sockets, hostile, named]:
        assert socket_json(sock) == json.dumps(socket_record(sock), ensure_ascii=True)
    assert len(sockets) >= 7


def test_json_is_valid_and_rows_are_the_sockets(load: tuple[Peer, list[Peer]]) -> None:
    server, clients = load
    producer = subprocess.Popen([*NETSCOPE, "--json", "--filter", ours(server)], stdout=subprocess.PIPE)
    tool = subprocess.run(
        [sys.executable, "-m", "json.tool"], stdin=producer.stdout, capture_output=True, text=True, timeout=120
    )
    assert producer.stdout is not None
    producer.stdout.close()
    assert producer.wait(timeout=120) == 0
    assert tool.returncode == 0, tool.stderr
    rows = json.loads(tool.stdout)
    assert all(list(row) == list(FIELDS) for row in rows)
    listening = [row for row in rows if row["state"] == "LISTEN"]
    assert listening == [{
        "proto": "tcp", "recv_q": 0, "send_q": 0, "local_address": HOST, "local_port": server.port,
        "remote_address": "0.0.0.0", "remote_port": 0, "state": "LISTEN", "pid": server.pid,
        "program": "ns-cli-server", "user": "root" if os.geteuid() == 0 else listening[0]["user"],
        "uid": os.geteuid(), "inode": listening[0]["inode"],
    }]  # fmt: skip
    assert listening[0]["inode"] > 0
    established = [row for row in rows if row["state"] == "ESTABLISHED"]
    client_side = sorted((row["pid"], row["program"]) for row in established if row["remote_port"] == server.port)
    server_side = [row for row in established if row["local_port"] == server.port]
    assert client_side == sorted((c.pid, f"ns-cli-client-{i}") for i, c in enumerate(clients))
    assert [(row["pid"], row["program"]) for row in server_side] == [(server.pid, "ns-cli-server")] * 3
    # Each client's local port is the remote port of one server-side socket.
    assert sorted(row["local_port"] for row in established if row["remote_port"] == server.port) == sorted(
        row["remote_port"] for row in server_side
    )
    assert len(rows) == 7


def test_csv_has_a_header_and_a_row_per_socket(load: tuple[Peer, list[Peer]]) -> None:
    server, _ = load
    result = netscope("--csv", "--filter", ours(server))
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == list(FIELDS)
    assert len(rows) == 8
    listener = next(row for row in rows[1:] if row[FIELDS.index("state")] == "LISTEN")
    assert listener[FIELDS.index("pid")] == str(server.pid)
    assert listener[FIELDS.index("program")] == "ns-cli-server"
    assert listener[FIELDS.index("local_address")] == HOST


def test_tlnp_lists_the_listener_with_its_owner(load: tuple[Peer, list[Peer]]) -> None:
    server, _ = load
    result = netscope("-tlnp")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Active Internet connections (only servers)"
    assert lines[1].split() == [
        "Proto", "Recv-Q", "Send-Q", "Local", "Address", "Foreign", "Address", "State", "PID/Program", "name",
    ]  # fmt: skip
    ours_line = [line for line in lines if f"{HOST}:{server.port} " in line]
    assert len(ours_line) == 1
    assert ours_line[0].split() == ["tcp", "0", "0", f"{HOST}:{server.port}", "0.0.0.0:*", "LISTEN",
                                    f"{server.pid}/ns-cli-server"]  # fmt: skip
    # -l lists servers only, -t TCP only.
    assert all(line.split()[5] == "LISTEN" for line in lines[2:]), result.stdout
    assert all(line.startswith("tcp") for line in lines[2:])
    # Without -l the connections are there too, and -e adds User and Inode before the owner.
    wide = netscope("-tnpe", "--filter", ours(server), "--no-header")
    rows = [line.split() for line in wide.stdout.splitlines()]
    assert len(rows) == 7 and sum(row[5] == "ESTABLISHED" for row in rows) == 6
    listener = next(row for row in rows if row[5] == "LISTEN")
    assert listener[6] == ("root" if os.geteuid() == 0 else listener[6]) and int(listener[7]) > 0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_families(load: tuple[Peer, list[Peer]], spawn_peer: Callable[..., Peer]) -> None:
    server, _ = load
    assert netscope("-4", "--filter", ours(server), "--count").stdout == "7\n"
    assert netscope("-6", "--filter", ours(server), "--count").stdout == "0\n"
    assert netscope("-4", "-6", "--filter", ours(server), "--count").stdout == "7\n"  # both, as netstat
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback here: the IPv6 half is not tested")
    server6 = spawn_peer("server", "--host", "::1", "--name", "ns-cli-server6")
    spawn_peer("client", str(server6.port), "--host", "::1")
    six = f"ip:::1 :{server6.port}"
    assert netscope("-6", "--filter", six, "--count").stdout == "3\n"
    assert netscope("-4", "--filter", six, "--count").stdout == "0\n"
    listing = netscope("-6tln", "--filter", six)
    assert f"[::1]:{server6.port} " in listing.stdout
    assert listing.stdout.splitlines()[2].startswith("tcp6 ")


def test_interfaces_view_lists_this_machines_interfaces() -> None:
    result = netscope("-i")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Kernel Interface table" and lines[1].split()[:3] == ["Iface", "MTU", "RX-OK"]
    by_name = {line.split()[0]: line.split() for line in lines[2:]}
    listed = {line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]}
    assert set(by_name) == listed
    assert "L" in by_name["lo"][-1] and by_name["lo"][1] == Path("/sys/class/net/lo/mtu").read_text().strip()


def test_route_view_shows_the_kernels_main_table() -> None:
    result = netscope("-r", "-4")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Kernel IP routing table"
    shown = {(row[0], row[2], row[-1]) for row in (line.split() for line in lines[2:])}
    # Every route of the main table, as /proc/net/route has it (destination, mask and device; hex, host order).
    expected = set()
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        dest, mask = (socket.inet_ntoa(int(h, 16).to_bytes(4, sys.byteorder)) for h in (fields[1], fields[7]))
        expected.add((dest, mask, fields[0]))
    assert expected and expected <= shown  # a default route, a connected one, or both: whatever this machine has
    both = netscope("-r").stdout
    assert "Kernel IPv6 routing table" in both or not Path("/proc/net/ipv6_route").exists()


def test_statistics_view_has_the_kernels_counters() -> None:
    before = _snmp("Tcp", "ActiveOpens")
    result = netscope("-s")
    after = _snmp("Tcp", "ActiveOpens")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Tcp:" in lines and "Ip:" in lines
    tcp = lines[lines.index("Tcp:") + 1 :]
    opened = next(line for line in tcp if line.endswith(" active connection openings"))
    assert before <= int(opened.split()[0]) <= after
    records = json.loads(netscope("-s", "--json").stdout)
    assert {"group": "Tcp", "name": "ActiveOpens"}.items() <= next(
        r for r in records if r["name"] == "ActiveOpens"
    ).items()


def _snmp(group: str, name: str) -> int:
    text = Path("/proc/net/snmp").read_text()
    lines = [line.split() for line in text.splitlines() if line.startswith(group + ":")]
    return int(lines[1][lines[0].index(name)])


def test_multicast_view_lists_the_groups() -> None:
    result = netscope("-g")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["IPv6/IPv4 Group Memberships", "Interface       RefCnt Group"]
    rows = {tuple(line.split()[::2]) for line in lines[3:]}
    # Every interface with IPv4 groups in /proc/net/igmp has joined 224.0.0.1 (all hosts): the kernel does so.
    found = re.findall(r"^\d+\s+(\S+)\s*:\s*(\d+)", Path("/proc/net/igmp").read_text(), re.MULTILINE)
    devices = [device for device, count in found if int(count) > 0]
    assert devices and all((device, "224.0.0.1") in rows for device in devices)


def test_bad_filter_is_a_usage_error() -> None:
    result = netscope("--once", "--filter", "state:nonsense")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "bad --filter: unknown state 'nonsense'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--no-ui"], ["-i", "--csv"], ["--watch", "--count"], ["--at", "12:00"], ["-x", "--watch"],
     ["--json", "--csv"], ["--record", "x.nsrec", "--once"], ["--cpu-limit", "150"], ["--cpu-limit", "nan"],
     ["--cpu-limit", "lots"]],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result
    assert "netscope: error:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.nsrec").exists()


def test_hostile_program_names_are_escaped(spawn_peer: Callable[..., Peer]) -> None:
    evil = "\x1b[31mX\x07\u202e"  # an escape sequence, a bell and a right-to-left override, 9 bytes < 15
    server = spawn_peer("server", "--host", HOST, "--name", evil)
    text = netscope("--once", "-e", "--filter", f"pid:{server.pid}")
    assert text.returncode == 0
    assert "\x1b" not in text.stdout and "\x07" not in text.stdout and "\u202e" not in text.stdout
    assert f"{server.pid}/\\x1b[31mX\\x07\\u202e" in text.stdout
    data = netscope("--json", "--filter", f"pid:{server.pid}")
    assert "\x1b" not in data.stdout and data.stdout.isascii()
    assert [row["program"] for row in json.loads(data.stdout)] == [evil]
    table = netscope("--csv", "--filter", f"pid:{server.pid}")
    assert "\x1b" not in table.stdout and "\\x1b[31mX" in table.stdout


def test_output_to_a_pipe_has_no_escape_codes(load: tuple[Peer, list[Peer]]) -> None:
    for args in (["--once"], ["-tulnpe"], ["-i"], ["-r"], ["-s"], ["-g"], ["--json"], ["--csv"]):
        result = netscope(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "\x1b" not in result.stdout and "\x1b" not in result.stderr, args


def test_watch_prints_a_line_per_interval_and_stops_on_sigterm(load: tuple[Peer, list[Peer]]) -> None:
    server, _ = load
    interval = 1.0
    process = subprocess.Popen(
        [*NETSCOPE, "--watch", "--interval", str(interval), "--filter", ours(server)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    arrivals = []
    lines = []
    for _ in range(4):
        lines.append(process.stdout.readline())
        arrivals.append(time.monotonic())
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and stderr == ""
    for line in lines:
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} ESTABLISHED 6 LISTEN 1 SYN_SENT 0 SYN_RECV 0 FIN_WAIT1 0 "
            r"FIN_WAIT2 0 TIME_WAIT 0 CLOSE_WAIT 0 LAST_ACK 0 CLOSING 0 UDP 0 total 7\n",
            line,
        ), line
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # On the interval's grid: a late line is followed by an early one, so the average is the interval.
    assert all(0.3 < gap < 2.5 for gap in gaps), gaps
    assert 0.8 < (arrivals[-1] - arrivals[0]) / 3 < 1.6, gaps


def test_watch_stops_on_ctrl_c_and_writes_json_lines(load: tuple[Peer, list[Peer]]) -> None:
    server, _ = load
    process = subprocess.Popen(
        [*NETSCOPE, "--watch", "--json", "--interval", "0.2", "--filter", ours(server)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    record = json.loads(process.stdout.readline())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in stderr
    assert record["counts"]["ESTABLISHED"] == 6 and record["total"] == 7


@pytest.mark.parametrize("args", [["--watch", "--interval", "0.1"], ["--once"], ["--json"], ["-s"]])
def test_a_closed_pipe_is_not_an_error(args: list[str]) -> None:
    process = subprocess.Popen([*NETSCOPE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline()  # `| head -1`
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr


def test_printed_output_does_not_load_textual() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "netscope", "--once", "--count"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "netscope.collectors.connections" in modules  # the import log is what we think it is
    assert not any(name.split(".")[0] in ("textual", "netscope.app.netscope_app") for name in modules)
    assert "netscope.app.netscope_app" not in modules


def test_record_headless_then_replay(load: tuple[Peer, list[Peer]], tmp_path: Path) -> None:
    server, clients = load
    path = tmp_path / "net.nsrec"
    recorder = subprocess.Popen(
        [*NETSCOPE, "--record", str(path), "--no-ui", "--interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and frames(path) < 3:
        time.sleep(0.1)
    clients[0].process.kill()  # one connection closes while recording
    clients[0].process.wait(timeout=10)
    time.sleep(1.0)
    recorder.send_signal(signal.SIGTERM)
    _, stderr = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, stderr
    assert f"to {path}" in stderr and "Traceback" not in stderr

    with RecordingReader(path) as reader:
        assert reader.complete and reader.damage is None and len(reader) >= 5
        first, last = reader.start_time, reader.end_time
    established = f"{ours(server)} established"
    replay = netscope("--replay", str(path), "--at", "+0", "--filter", established, "--count")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == "6\n"
    assert netscope("--replay", str(path), "--filter", established, "--count").stdout == "4\n"  # the last frame
    at = time.strftime("%H:%M:%S", time.localtime(first + 0.99))
    table = netscope("--replay", str(path), "--at", at, "-tnp", "--filter", ours(server))
    assert f"{server.pid}/ns-cli-server" in table.stdout and "as recorded at" in table.stdout.splitlines()[0]
    rows = json.loads(netscope("--replay", str(path), "--json", "--filter", ours(server)).stdout)
    programs = {row["program"] for row in rows if row["state"] == "ESTABLISHED"}
    assert programs >= {"ns-cli-server", "ns-cli-client-1"}
    watch = netscope("--replay", str(path), "--watch", "--filter", established).stdout.splitlines()
    assert len(watch) == frames(path)
    assert watch[0].split()[2] == "6" and watch[-1].split()[2] == "4"
    info = netscope("--replay", str(path), "--info").stdout
    assert "state      complete" in info and f"frames     {len(watch)}" in info
    early = netscope("--replay", str(path), "--at", f"@{first - 60}", "--count")
    assert early.returncode == 2 and "starts later" in early.stderr
    assert last > first


def frames(path: Path) -> int:
    """Whole frames in a recording, also while it is being written (0 before its header is)."""
    try:
        with RecordingReader(path) as reader:
            return len(reader)
    except (OSError, NotARecording):
        return 0


def test_replay_of_a_damaged_or_foreign_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello\n")
    result = netscope("--replay", str(bogus), "--once")
    assert result.returncode == 1 and "notes.txt is not a netscope recording" in result.stderr
    assert "Traceback" not in result.stderr
    missing = netscope("--replay", str(tmp_path / "nope.nsrec"), "--once")
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    # A recording cut mid-frame: the readable part prints, with the damage said on stderr.
    path = tmp_path / "cut.nsrec"
    netscope("--record", str(path), "--no-ui", "--interval", "0.2", "--duration", "1")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # into the last frame, past the end marker
    cut = netscope("--replay", str(path), "--count")
    assert cut.returncode == 0 and int(cut.stdout) > 0
    assert "recording truncated after frame" in cut.stderr
