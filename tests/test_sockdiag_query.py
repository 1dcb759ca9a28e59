"""Kernel-side filtering: the sockets the kernel returns for a filter's query are the ones the filter matches.

Real sockets in every state test_sockdiag's load makes (IPv4, IPv6, v4-mapped, UDP, TIME_WAIT, CLOSE_WAIT,
FIN_WAIT2, another user's listener and a half-open connection to it). For each filter, one read asks the kernel
with the filter's query and keeps everything it returns; another reads every socket and applies the filter in
Python. On this test's own sockets the two must be the same set. Nothing is filtered in Python on the kernel's
side, so a query that asks for too much or too little fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import test_sockdiag
from test_sockdiag import Load, Row, row

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.session.filters import parse_filter
from netscope.collectors.sockdiag import SockDiagReader
from netscope.collectors.sockdiag_query import EVERYTHING, KernelQuery

loopback_load = test_sockdiag.loopback_load  # the fixture, shared
NETSCOPE = [sys.executable, "-m", "netscope"]


def both_ways(reader: SockDiagReader, text: str, load: Load) -> tuple[set[Row], set[Row]]:
    """(what the kernel returned for the query, what the filter matches among every socket), on our sockets."""
    flt = parse_filter(text)
    for _attempt in range(5):  # a socket of ours changing between the two reads (a timer firing) is retried
        asked = load.ours({row(s) for s in reader.read(dumps=flt.kernel_query().dumps)})
        matched = load.ours({row(s) for s in reader.read() if flt.matches(s)})
        if asked == matched:
            break
    return asked, matched


def filters_for(load: Load) -> list[str]:
    port4, port6 = load.expected["listen4"][2], load.expected["listen6"][2]
    low, high = sorted((port4, port6))
    udp_port = load.expected["udp6"][2]
    return [
        f":{port4}", f"lport:{port4}", f"rport:{port4}", f"sport:{port6}", f":{port4},{port6}",
        f"{port4}", f":{low}-{high}", f":{port4},{low}-{high}", ":1-65535", ":1024-65535", f"!:{port4}",
        f"!lport:{port4} tcp", f"!:{port4},{port6}",
        "established", "time_wait", "close_wait", "fin_wait", "fin_wait2", "syn_recv", "state:new_syn_recv",
        "listen", "-l", "state:listen", "state:unconn", "unconn", "!listen", "!established", "close",
        "state:established,close_wait", "established,listen", "!established,time_wait",
        "tcp", "udp", "tcp4", "tcp6", "udp6", "proto:4", "proto:6", "!tcp", "unix", "path:/run",
        "ip:127.0.0.1", "ip:127.0.0.0/8", "127.0.0.1", "lip:127.0.0.1", "rip:127.0.0.1", "ip:::1", "::1",
        "rip:::1", "ip:::ffff:127.0.0.1", "ip:::ffff:127.0.0.0/104", "ip:::/0", "ip:0.0.0.0/0", "ip:10.0.0.0/8",
        "!ip:127.0.0.0/8", "ip:127.0.0.1,::1", "!ip:::1",
        f"established :{port4}", f"established,listen :{port4}", f"tcp6 :{port6} established",
        f"udp :{udp_port}", f"udp6 :{udp_port} !established", f"!established tcp :{port4}",
        f"listen !ip:::1 :{low}-{high}", f"time_wait rport:{port4} lip:127.0.0.1",
        # Endpoints: the address and the port at one end (the v4-mapped sockets too), one port or a range.
        f"127.0.0.1:{port4}", f"[::1]:{port6}", f"127.0.0.0/8:{low}-{high}", f"lip:127.0.0.1:{port4}",
        f"rip:127.0.0.1:{port4}", f"rip:[::1]:{port6}", f"!127.0.0.1:{port4}", f"127.0.0.1:{port4},[::1]:{port6}",
        f"established 127.0.0.1:{port4}", f"[::ffff:127.0.0.1]:{port6}", f"127.0.0.1:{port6}",
    ]


def test_the_kernel_returns_exactly_what_each_filter_matches(loopback_load: Load) -> None:
    narrowed = 0
    with SockDiagReader() as reader:
        reader.probe()  # as the collector does: the two TCP dumps made one where they ask alike
        assert reader.both_families
        everything = load_rows = loopback_load.ours({row(s) for s in reader.read()})
        assert len(load_rows) > 600
        for text in filters_for(loopback_load):
            query = parse_filter(text).kernel_query()
            assert query.exact, text
            asked, matched = both_ways(reader, text, loopback_load)
            assert asked == matched, (text, query.describe(), asked ^ matched)
            narrowed += len(asked) < len(everything)
    assert narrowed > 40  # most filters pick a few of the sockets, not all


@pytest.mark.skipif(os.geteuid() != 0, reason="the half-open connection is made to another user's listener")
def test_a_half_open_connection_asked_for_alone_still_gets_its_listeners_user(loopback_load: Load) -> None:
    """sock_diag says uid 0 for a request socket; the reader takes its listener's. A query for SYN_RECV alone
    does not return the listener, so the reader asks for the listeners apart."""
    expected = loopback_load.expected["syn_recv"]
    with SockDiagReader() as reader:
        asked, matched = both_ways(reader, f"syn_recv :{expected[2]}", loopback_load)
    assert asked == matched == {expected}


def test_terms_only_an_owner_can_tell_make_an_inexact_query_the_filter_completes(loopback_load: Load) -> None:
    port4 = loopback_load.expected["listen4"][2]
    flt = parse_filter(f"established :{port4} pid:{os.getpid()}")
    query = flt.kernel_query()
    assert not query.exact and query.narrows  # the port and state went to the kernel, the pid could not
    assert parse_filter(f"established,:{port4}").kernel_query() == KernelQuery(EVERYTHING.dumps, exact=False)
    full, narrow = ConnectionCollector(), ConnectionCollector(query=query)
    try:
        every = {s.key: s for s in full.collect().sockets.values() if flt.matches(s)}
        picked = {s.key: s for s in narrow.collect().sockets.values() if flt.matches(s)}
    finally:
        full.close()
        narrow.close()
    assert len(every) > 200
    assert picked.keys() == every.keys()
    assert {(s.pid, s.program) for s in picked.values()} == {(os.getpid(), every[next(iter(every))].program)}


def test_a_filter_that_rules_out_every_dump_asks_for_none() -> None:
    for text in ("unix", "path:/run/x.sock", "state:new_syn_recv udp", "tcp udp", "listen established"):
        assert parse_filter(text).kernel_query().dumps == (), text
    assert parse_filter("").kernel_query() == EVERYTHING
    # An IPv6 address rules out the IPv4 dumps; an IPv4 one keeps the IPv6 dumps (v4-mapped addresses).
    families = {dump.family for dump in parse_filter("ip:::1").kernel_query().dumps}
    assert families == {socket.AF_INET6}
    families = {dump.family for dump in parse_filter("ip:127.0.0.1").kernel_query().dumps}
    assert families == {socket.AF_INET, socket.AF_INET6}


def test_a_program_too_long_for_the_kernel_is_left_to_python(loopback_load: Load) -> None:
    """Thousands of separate ports make a program longer than a netlink attribute: not sent, not exact."""
    port4 = loopback_load.expected["listen4"][2]
    text = ":" + ",".join(str(port) for port in range(2, 20_000, 2)) + f",{port4}"
    query = parse_filter(text).kernel_query()
    assert not query.exact
    assert all(not dump.bytecode for dump in query.dumps)
    with SockDiagReader() as reader:
        asked = reader.read(dumps=query.dumps)
    flt = parse_filter(text)
    assert {row(s) for s in asked if flt.matches(s)} >= {loopback_load.expected["listen4"]}


def test_a_printed_count_asks_the_kernel_and_reads_owners_only_if_needed(loopback_load: Load) -> None:
    """`netscope --count --filter ...`, the `netstat -nap | grep :80 | grep ESTABLISHED | wc -l` of this tool."""
    port4 = loopback_load.expected["listen4"][2]
    for text, how in ((f":{port4} established", "(no owners: a count)"),
                      (f":{port4} established pid:{os.getpid()}", "and their owners")):
        collector = ConnectionCollector()
        try:
            expected = len([s for s in collector.collect().sockets.values() if parse_filter(text).matches(s)])
        finally:
            collector.close()
        assert expected > 400  # both ends of 200 connections, and a few more
        result = subprocess.run([*NETSCOPE, "--once", "--count", "-v", "--filter", text],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert int(result.stdout) == expected, text
        assert "asking the kernel for tcp (state mask 0x0002, a 28-byte filter program)" in result.stderr
        assert how in result.stderr, result.stderr
