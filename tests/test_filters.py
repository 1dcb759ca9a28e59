"""The filter language: every kind of term, negation, commas, prefixes, addresses and the errors."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from netscope.collectors.model import ALL_STATE_NAMES, Socket
from netscope.collectors.session import filters
from netscope.collectors.session.filters import GRAMMAR, GRAMMAR_RULES, Filter, FilterError, parse_filter


def sock(
    proto: str = "tcp",
    local: str = "10.0.0.1",
    lport: int = 40000,
    remote: str = "192.168.1.9",
    rport: int = 443,
    state: str = "ESTABLISHED",
    *,
    uid: int = 1000,
    user: str = "alice",
    pid: int | None = 4242,
    program: str = "firefox",
) -> Socket:
    return Socket(
        proto=proto,
        local_ip=local,
        local_port=lport,
        remote_ip=remote,
        remote_port=rport,
        state=state,
        recv_q=0,
        send_q=0,
        inode=123,
        uid=uid,
        user=user,
        pid=pid,
        program=program,
    )


def listener(proto: str = "tcp", port: int = 80, **kwargs: object) -> Socket:
    any_ip = "::" if proto.endswith("6") else "0.0.0.0"
    state = "LISTEN" if proto.startswith("tcp") else "UNCONN"
    return sock(proto, any_ip, port, any_ip, 0, state, **kwargs)  # type: ignore[arg-type]


def matches(text: str, socket: Socket) -> bool:
    return parse_filter(text).matches(socket)


def error(text: str) -> FilterError:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    return info.value


# --- empty filter, normalization, the Filter object --------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\t \n"])
def test_empty_filter_matches_everything(text: str) -> None:
    flt = parse_filter(text)
    assert flt.is_empty
    assert flt.text == ""
    assert flt.matches(sock())
    assert flt.matches(listener("udp6"))


def test_default_filter_matches_everything() -> None:
    assert Filter().is_empty
    assert Filter().matches(sock(state="TIME_WAIT", pid=None))


def test_text_is_normalized_and_filter_is_not_empty() -> None:
    flt = parse_filter("  :80   established\t!ip:127.0.0.0/8 ")
    assert flt.text == ":80 established !ip:127.0.0.0/8"
    assert not flt.is_empty


def test_filters_compare_by_text_and_are_frozen() -> None:
    assert parse_filter(":80  tcp") == parse_filter(":80 tcp")
    assert parse_filter(":80") != parse_filter(":81")
    flt = parse_filter(":80")
    with pytest.raises(dataclasses.FrozenInstanceError):
        flt.text = ":81"  # type: ignore[misc]


def test_matches_returns_real_bools() -> None:
    for text in [":80", "estab", "ip:10.0.0.0/8", "proc:fire", "!tcp", "80,443", "tcp :443 user:alice pid:4242"]:
        flt = parse_filter(text)
        assert flt.matches(sock()) in (True, False)
        assert type(flt.matches(sock())) is bool


# --- ports -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [":80", "port:80", "80", "PORT:80"])
def test_port_matches_either_end(text: str) -> None:
    assert matches(text, sock(lport=80, rport=50000))
    assert matches(text, sock(lport=50000, rport=80))
    assert not matches(text, sock(lport=8080, rport=443))


@pytest.mark.parametrize("key", ["lport", "sport"])
def test_local_port(key: str) -> None:
    assert matches(f"{key}:80", sock(lport=80, rport=1))
    assert not matches(f"{key}:80", sock(lport=1, rport=80))


@pytest.mark.parametrize("key", ["rport", "dport"])
def test_remote_port(key: str) -> None:
    assert matches(f"{key}:5432", sock(lport=1, rport=5432))
    assert not matches(f"{key}:5432", sock(lport=5432, rport=1))


def test_port_commas_mean_any_of() -> None:
    flt = parse_filter(":80,443")
    assert flt.matches(sock(lport=1, rport=80))
    assert flt.matches(sock(lport=443, rport=1))
    assert not flt.matches(sock(lport=8443, rport=1))


@pytest.mark.parametrize("text", [":8000-8100", "8000-8100", "lport:8000-8100"])
def test_small_port_range_is_inclusive(text: str) -> None:
    for port in (8000, 8050, 8100):
        assert matches(text, sock(lport=port, rport=1))
    for port in (7999, 8101):
        assert not matches(text, sock(lport=port, rport=1))


def test_wide_port_ranges_are_inclusive() -> None:
    # Ranges wider than filters._EXPAND_RANGE are compared against their bounds instead of becoming a set.
    remote = parse_filter("rport:1024-65535")
    for port in (1024, 30000, 65535):
        assert remote.matches(sock(lport=1, rport=port)), port
    assert not remote.matches(sock(lport=2000, rport=1023))
    local = parse_filter("sport:10-60000,5")
    for port in (5, 10, 60000):
        assert local.matches(sock(lport=port, rport=1)), port
    for port in (6, 9, 60001):
        assert not local.matches(sock(lport=port, rport=1)), port
    both = parse_filter(":1000-60000")
    assert both.matches(sock(lport=1, rport=59999))
    assert not both.matches(sock(lport=999, rport=60001))


def test_port_zero_and_max_are_valid() -> None:
    assert matches("rport:0", listener())
    assert matches(":65535", sock(lport=65535))


# --- states ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "state:established",
        "state:ESTABLISHED",
        "established",
        "Established",
        "estab",
        "state:est",
        "e",
        "state:established,time_wait",
    ],
)
def test_established(text: str) -> None:
    assert matches(text, sock(state="ESTABLISHED"))
    assert not matches(text, sock(state="SYN_SENT"))


@pytest.mark.parametrize("text", ["time_wait", "time-wait", "timewait", "TIME-WAIT", "time", "state:tim", "t"])
def test_time_wait_spellings_and_prefixes(text: str) -> None:
    assert matches(text, sock(state="TIME_WAIT"))
    assert not matches(text, sock(state="ESTABLISHED"))


def test_every_state_name_is_accepted_exactly() -> None:
    for name in ALL_STATE_NAMES:
        if name == "LISTEN":
            continue  # bare listen means listening; covered below
        assert matches(name.lower(), sock(state=name)), name
        assert matches(f"state:{name}", sock(state=name)), name


def test_syn_recv_includes_new_syn_recv() -> None:
    for text in ["syn_recv", "state:syn_recv", "synrecv", "syn-r"]:
        assert matches(text, sock(state="SYN_RECV")), text
        assert matches(text, sock(state="NEW_SYN_RECV")), text
        assert not matches(text, sock(state="SYN_SENT")), text


def test_new_syn_recv_alone_does_not_include_syn_recv() -> None:
    assert matches("new_syn_recv", sock(state="NEW_SYN_RECV"))
    assert not matches("new_syn_recv", sock(state="SYN_RECV"))


def test_exact_name_wins_over_prefix() -> None:
    flt = parse_filter("close")
    assert flt.matches(sock(state="CLOSE"))
    assert not flt.matches(sock(state="CLOSE_WAIT"))
    assert not flt.matches(sock(state="CLOSING"))
    assert matches("closew", sock(state="CLOSE_WAIT"))
    assert matches("closi", sock(state="CLOSING"))


@pytest.mark.parametrize("text", ["fin_wait", "state:fin-wait", "finwait", "FIN_WAIT"])
def test_fin_wait_stem_means_both(text: str) -> None:
    assert matches(text, sock(state="FIN_WAIT1"))
    assert matches(text, sock(state="FIN_WAIT2"))
    assert not matches(text, sock(state="TIME_WAIT"))


def test_fin_wait_with_digit_is_one_state() -> None:
    assert matches("fin_wait2", sock(state="FIN_WAIT2"))
    assert not matches("fin_wait2", sock(state="FIN_WAIT1"))
    assert matches("fin-wait-1", sock(state="FIN_WAIT1"))


@pytest.mark.parametrize(
    ("text", "candidates"),
    [
        ("fin", ["FIN_WAIT1", "FIN_WAIT2"]),
        ("state:fin", ["FIN_WAIT1", "FIN_WAIT2"]),
        ("clos", ["CLOSE", "CLOSE_WAIT", "CLOSING"]),
        ("syn", ["SYN_SENT", "SYN_RECV"]),
        ("l", ["LAST_ACK", "LISTEN"]),
    ],
)
def test_ambiguous_prefix_lists_candidates(text: str, candidates: list[str]) -> None:
    err = error(text)
    assert "ambiguous state" in str(err)
    for name in candidates:
        assert name in str(err)
    assert err.term == text


def test_unknown_state_lists_states() -> None:
    err = error("state:estabx")
    assert str(err).startswith("unknown state 'estabx' in 'state:estabx'")
    assert "ESTABLISHED" in str(err) and "UNCONN" in str(err)
    assert err.term == "state:estabx"


def test_udp_unconn() -> None:
    assert matches("unconn", listener("udp"))
    assert matches("state:unconn", listener("udp6"))
    assert not matches("unconn", sock())


# --- listening ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["listen", "LISTEN", "-l", "-L", "lis", "listen,-l"])
def test_bare_listen_is_netstat_l(text: str) -> None:
    assert matches(text, listener("tcp"))
    assert matches(text, listener("tcp6"))
    assert matches(text, listener("udp"))  # unconnected UDP counts, as with netstat -l
    assert not matches(text, sock(state="ESTABLISHED"))
    assert not matches(text, sock("udp", state="ESTABLISHED"))  # connected UDP is not listening


def test_bare_listen_agrees_with_is_listening() -> None:
    flt = parse_filter("listen")
    for candidate in [listener("tcp"), listener("udp6"), sock(), sock("udp", state="ESTABLISHED")]:
        assert flt.matches(candidate) == candidate.is_listening


def test_state_listen_is_tcp_listen_only() -> None:
    assert matches("state:listen", listener("tcp"))
    assert not matches("state:listen", listener("udp"))


def test_not_listening() -> None:
    assert matches("!listen", sock())
    assert not matches("!-l", listener("udp"))


# --- protocols ---------------------------------------------------------------------------------------------------

ALL_PROTOS = ("tcp", "tcp6", "udp", "udp6")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proto:tcp", {"tcp", "tcp6"}),
        ("tcp", {"tcp", "tcp6"}),
        ("TCP", {"tcp", "tcp6"}),
        ("proto:udp", {"udp", "udp6"}),
        ("udp", {"udp", "udp6"}),
        ("proto:tcp6", {"tcp6"}),
        ("tcp6", {"tcp6"}),
        ("udp6", {"udp6"}),
        ("proto:tcp4", {"tcp"}),
        ("udp4", {"udp"}),
        ("proto:4", {"tcp", "udp"}),
        ("proto:6", {"tcp6", "udp6"}),
        ("proto:tcp4,udp6", {"tcp", "udp6"}),
        ("tcp4,udp4", {"tcp", "udp"}),
    ],
)
def test_protocols(text: str, expected: set[str]) -> None:
    flt = parse_filter(text)
    assert {proto for proto in ALL_PROTOS if flt.matches(sock(proto))} == expected


def test_bad_protocol() -> None:
    err = error("proto:sctp")
    assert "unknown protocol 'sctp'" in str(err) and "tcp6" in str(err)
    assert "commas" in str(error("proto:tcp|udp"))


# --- pid, program, user ------------------------------------------------------------------------------------------


def test_pid() -> None:
    assert matches("pid:4242", sock(pid=4242))
    assert not matches("pid:4242", sock(pid=42))
    assert not matches("pid:4242", sock(pid=None))
    assert matches("pid:1,2,4242", sock(pid=4242))


def test_negated_pid_matches_unknown_owner() -> None:
    # An unknown owner is "not pid 1": negation is plain boolean not.
    assert matches("!pid:1", sock(pid=None))


@pytest.mark.parametrize("text", ["proc:nginx", "proc:NGINX", "program:gin", "proc:ngi", "proc:postgres,nginx"])
def test_program_contains_ignoring_case(text: str) -> None:
    assert matches(text, sock(program="nginx"))
    assert matches(text, sock(program="Nginx-Worker"))
    assert not matches(text, sock(program="apache2"))
    assert not matches(text, sock(program=""))


def test_quoted_program_with_space() -> None:
    flt = parse_filter('proc:"Web Content"')
    assert flt.matches(sock(program="Isolated Web Content"))
    assert not flt.matches(sock(program="Web"))
    assert flt.text == '"proc:Web Content"'
    assert parse_filter(flt.text) == flt


def test_unclosed_quote() -> None:
    err = error('proc:"Web Content')
    assert "unclosed quote" in str(err)
    assert err.term == 'proc:"Web Content'


def test_empty_quoted_term() -> None:
    assert "empty term" in str(error('tcp ""'))


def test_user_name_is_exact() -> None:
    assert matches("user:www-data", sock(user="www-data", uid=33))
    assert not matches("user:www", sock(user="www-data", uid=33))
    assert not matches("user:WWW-DATA", sock(user="www-data", uid=33))


def test_user_uid() -> None:
    assert matches("user:0", sock(user="root", uid=0))
    assert matches("user:33", sock(user="", uid=33))  # no name known, the uid still matches
    assert not matches("user:0", sock(user="alice", uid=1000))
    assert matches("user:root,1000", sock(user="alice", uid=1000))


# --- addresses ---------------------------------------------------------------------------------------------------


def test_ip_exact_either_end() -> None:
    assert matches("ip:10.0.0.5", sock(local="10.0.0.5"))
    assert matches("ip:10.0.0.5", sock(remote="10.0.0.5"))
    assert not matches("ip:10.0.0.5", sock(local="10.0.0.6", remote="10.0.0.50"))


def test_ip_cidr() -> None:
    flt = parse_filter("ip:10.0.0.0/8")
    assert flt.matches(sock(local="192.168.0.1", remote="10.255.1.2"))
    assert not flt.matches(sock(local="192.168.0.1", remote="11.0.0.1"))


def test_ip_host_bits_are_ignored() -> None:
    assert matches("ip:10.0.0.1/8", sock(local="10.9.9.9", remote="1.1.1.1"))


def test_lip_and_rip() -> None:
    local_ten = sock(local="10.0.0.1", remote="8.8.8.8")
    assert matches("lip:10.0.0.0/8", local_ten)
    assert not matches("rip:10.0.0.0/8", local_ten)
    assert matches("rip:8.8.8.8", local_ten)
    assert not matches("lip:8.8.8.8", local_ten)


def test_ipv6_address_and_network() -> None:
    loop6 = sock("tcp6", "::1", 5432, "::1", 50000)
    assert matches("ip:::1", loop6)
    assert matches("ip:0:0:0:0:0:0:0:1", loop6)
    assert matches("::1", loop6)
    assert not matches("ip:::2", loop6)
    link = sock("udp6", "fe80::1c2b:3ff:fe4d:5e6f", 546, "fe80::1", 547)
    assert matches("ip:fe80::/10", link)
    assert matches("fe80::/10", link)
    assert matches("rip:fe80::1", link)
    assert not matches("ip:2001:db8::/32", link)


def test_ipv4_network_matches_mapped_ipv6() -> None:
    mapped = sock("tcp6", "::ffff:10.0.0.5", 80, "::ffff:192.168.1.9", 50000)
    assert matches("ip:10.0.0.0/8", mapped)
    assert matches("ip:10.0.0.5", mapped)
    assert matches("rip:192.168.1.0/24", mapped)
    assert not matches("lip:192.168.1.0/24", mapped)
    assert not matches("ip:172.16.0.0/12", mapped)
    # The IPv6 spelling of the address and of the whole mapped range match too.
    assert matches("ip:::ffff:10.0.0.5", mapped)
    assert matches("ip:::ffff:0:0/96", mapped)


def test_mapped_network_matches_plain_ipv4() -> None:
    assert matches("ip:::ffff:10.0.0.0/104", sock(local="10.1.2.3", remote="1.1.1.1"))
    assert not matches("ip:::ffff:10.0.0.0/104", sock(local="11.1.2.3", remote="1.1.1.1"))


def test_ipv4_network_does_not_match_unrelated_ipv6() -> None:
    # ::a00:5 has the same low 32 bits as 10.0.0.5 but is not a mapped address.
    assert not matches("ip:10.0.0.0/8", sock("tcp6", "::a00:5", 80, "::a00:6", 1))
    assert not matches("ip:::/0", sock(local="10.0.0.1", remote="10.0.0.2"))


def test_bare_addresses_and_address_lists() -> None:
    assert matches("10.0.0.5", sock(local="10.0.0.5"))
    assert matches("10.0.0.0/8", sock(remote="10.3.3.3"))
    assert matches("ip:1.1.1.1,10.0.0.5", sock(local="10.0.0.5"))
    assert matches("1.1.1.1,fe80::1", sock("tcp6", "fe80::1", 1, "::", 0))
    assert not matches("1.1.1.1,fe80::1", sock(local="10.0.0.5"))


def test_an_endpoint_is_an_address_and_a_port_at_the_same_end() -> None:
    web = sock(local="10.0.0.5", lport=443, remote="192.168.1.9", rport=50000)
    assert matches("10.0.0.5:443", web)
    assert matches("192.168.1.9:50000", web)
    # The address at one end and the port at the other is no endpoint of this socket.
    assert not matches("10.0.0.5:50000", web)
    assert not matches("192.168.1.9:443", web)
    assert matches("lip:10.0.0.5:443", web) and not matches("rip:10.0.0.5:443", web)
    assert matches("rip:192.168.1.9:50000", web) and not matches("lip:192.168.1.9:50000", web)
    # A network, a range, several endpoints, negation.
    assert matches("10.0.0.0/8:400-500", web) and not matches("10.0.0.0/8:444-500", web)
    assert matches("10.0.0.6:443,10.0.0.5:443", web) and not matches("10.0.0.6:443,10.0.0.5:80", web)
    assert matches("!10.0.0.5:80", web) and not matches("!10.0.0.5:443", web)
    assert matches("lip:10.0.0.9,10.0.0.5:443", web)  # an address and an endpoint, any of them
    # IPv6 in brackets; an IPv4 endpoint matches its IPv4-mapped form, as `ip:` does.
    loop6 = sock("tcp6", "::1", 8080, "::1", 50000)
    assert matches("[::1]:8080", loop6) and matches("[::/0]:8080", loop6) and not matches("[::1]:8081", loop6)
    assert matches("10.0.0.5:80", sock("tcp6", "::ffff:10.0.0.5", 80, "::ffff:192.168.1.9", 50000))
    # A unix socket's "ports" are inodes, and its addresses paths.
    assert not matches("0.0.0.0/0:0-65535", sock("u_str", "/run/x.sock", 7, "*", 8))


def test_unparsable_socket_address_matches_nothing() -> None:
    weird = sock(local="*", remote="")
    assert not matches("ip:0.0.0.0/0", weird)
    assert matches("!ip:0.0.0.0/0", weird)


def test_ip_answers_stay_correct_across_cache_clears(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "_CACHE_LIMIT", 8)
    flt = parse_filter("ip:10.0.0.0/24")
    for round_ in range(3):
        for last in range(0, 256, 5):
            assert flt.matches(sock(local=f"10.0.0.{last}", remote="1.1.1.1")), (round_, last)
            assert not flt.matches(sock(local=f"10.0.1.{last}", remote="1.1.1.1")), (round_, last)


def test_program_answers_stay_correct_across_cache_clears(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "_CACHE_LIMIT", 4)
    flt = parse_filter("proc:sql")
    for index in range(40):
        assert flt.matches(sock(program=f"mysql{index}"))
        assert not flt.matches(sock(program=f"nginx{index}"))


# --- negation, commas across kinds, combinations -----------------------------------------------------------------


def test_negation() -> None:
    assert not matches("!:443", sock(rport=443))
    assert matches("!:443", sock(rport=80, lport=1))
    assert matches("!established", sock(state="TIME_WAIT"))
    assert not matches("!ip:127.0.0.0/8", sock(local="127.0.0.1", remote="127.0.0.1"))


def test_bare_commas_mix_kinds() -> None:
    flt = parse_filter("established,listen")
    assert flt.matches(sock(state="ESTABLISHED"))
    assert flt.matches(listener("udp"))
    assert not flt.matches(sock(state="TIME_WAIT"))
    mixed = parse_filter("80,lport:443")
    assert mixed.matches(sock(lport=1, rport=80))
    assert mixed.matches(sock(lport=443, rport=1))
    assert not mixed.matches(sock(lport=1, rport=443))


def test_port_and_state() -> None:
    flt = parse_filter(":80 established")
    assert flt.matches(sock(lport=80, rport=50000, state="ESTABLISHED"))
    assert not flt.matches(sock(lport=80, rport=50000, state="TIME_WAIT"))
    assert not flt.matches(sock(lport=81, rport=50000, state="ESTABLISHED"))


def test_half_open_not_from_loopback() -> None:
    flt = parse_filter("state:syn_recv,syn_sent !ip:127.0.0.0/8")
    assert flt.matches(sock(state="SYN_SENT", local="10.0.0.1", remote="10.0.0.2"))
    assert flt.matches(sock(state="NEW_SYN_RECV", local="10.0.0.1", remote="10.0.0.2"))
    assert not flt.matches(sock(state="SYN_SENT", local="127.0.0.1", remote="127.0.0.1"))
    assert not flt.matches(sock(state="SYN_RECV", local="10.0.0.1", remote="127.0.0.53"))
    assert not flt.matches(sock(state="ESTABLISHED", local="10.0.0.1", remote="10.0.0.2"))
    # Mapped loopback is loopback too.
    assert not flt.matches(sock("tcp6", "::ffff:127.0.0.1", 1, "::ffff:10.0.0.2", 2, "SYN_SENT"))


def test_postgres_clients() -> None:
    flt = parse_filter("proc:postgres rport:5432")
    assert flt.matches(sock(program="postgres", lport=40000, rport=5432))
    assert not flt.matches(sock(program="postgres", lport=5432, rport=40000))
    assert not flt.matches(sock(program="psql", lport=40000, rport=5432))


def test_everything_at_once() -> None:
    flt = parse_filter("tcp :8000-9000 user:alice pid:4242 proc:fire ip:10.0.0.0/8 !listen estab")
    assert flt.matches(sock(lport=8080))
    assert not flt.matches(sock(lport=8080, user="bob"))
    assert not flt.matches(sock("udp", lport=8080))
    assert not flt.matches(sock(lport=8080, state="TIME_WAIT"))


# --- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "term", "words"),
    [
        (":99999", ":99999", ["99999", "out of range", "65535"]),
        (":65536", ":65536", ["65536", "out of range"]),
        (":abc", ":abc", ["'abc'", "not a port number"]),
        ("lport:8o", "lport:8o", ["'8o'", "not a port number"]),
        (":٨٠", ":٨٠", ["not a port number"]),
        (":" + "9" * 5000, ":" + "9" * 5000, ["out of range"]),
        (":8100-8000", ":8100-8000", ["backwards"]),
        (":1-2-3", ":1-2-3", ["not a port number"]),
        ("99999", "99999", ["out of range"]),
        (":", ":", ["nothing after the ':'"]),
        ("state:", "state:", ["'state:'", "nothing after", "state:established"]),
        ("tcp proc:", "proc:", ["'proc:'", "nothing after"]),
        ("ip:", "ip:", ["nothing after"]),
        (":80,", ":80,", ["empty item", "comma"]),
        ("state:syn_sent,,syn_recv", "state:syn_sent,,syn_recv", ["empty item"]),
        ("established,", "established,", ["empty item"]),
        ("!", "!", ["lone '!'"]),
        ("tcp ! established", "!", ["lone '!'", "no space"]),
        ("!!tcp", "!!tcp", ["more than one '!'"]),
        ("foo:bar", "foo:bar", ["unknown key 'foo'", "lport", "state"]),
        ("!foo:bar", "!foo:bar", ["unknown key 'foo'"]),
        ("fe80::zz", "fe80::zz", ["not an IPv6 address", "not a key"]),
        ("frobnicate", "frobnicate", ["unknown word 'frobnicate'", "port", "established"]),
        ("tcp estabx", "estabx", ["unknown word 'estabx'"]),
        ("-x", "-x", ["unknown option '-x'", "-l"]),
        ("-established", "-established", ["unknown option", "'!'"]),
        ("pid:abc", "pid:abc", ["'abc'", "not a process id"]),
        ("pid:-1", "pid:-1", ["not a process id"]),
        ("ip:10.0.0.0/33", "ip:10.0.0.0/33", ["/33", "/0 to /32"]),
        ("ip:::1/129", "ip:::1/129", ["/129", "/0 to /128"]),
        ("ip:10.0.0.0/x", "ip:10.0.0.0/x", ["/x"]),
        ("ip:10.0.0", "ip:10.0.0", ["'10.0.0'", "not an IP address"]),
        ("ip:300.1.1.1", "ip:300.1.1.1", ["not an IP address"]),
        ("lip:nginx", "lip:nginx", ["'nginx'", "not an IP address"]),
        ("10.0.0", "10.0.0", ["not an IP address"]),
        ("::zz", "::zz", ["not an IP address"]),
        ("proto:", "proto:", ["nothing after"]),
        ("user:", "user:", ["nothing after"]),
        ("10.0.0.5:80,443", "10.0.0.5:80,443", ["'443'", "stands alone", "10.0.0.5:80,10.0.0.5:443"]),
        ("lip:10.0.0.5:80,443", "lip:10.0.0.5:80,443", ["'443'", "10.0.0.5:80,10.0.0.5:443"]),
        ("10.0.0.5:", "10.0.0.5:", ["nothing after the last ':'", "10.0.0.5:443"]),
        ("10.0.0.5:99999", "10.0.0.5:99999", ["out of range"]),
        ("10.0.0.5:http", "10.0.0.5:http", ["'http'", "not a port number"]),
        ("10.0.0.300:80", "10.0.0.300:80", ["'10.0.0.300'", "not an IP address"]),
        ("[::1", "[::1", ["no ']'", "[::1]:8080"]),
        ("[::1]", "[::1]", ["a port after ']'", "without brackets"]),
        ("[fe80::zz]:22", "[fe80::zz]:22", ["'fe80::zz'", "not an IP address"]),
    ],
)
def test_errors_say_what_is_wrong(text: str, term: str, words: list[str]) -> None:
    err = error(text)
    assert isinstance(err, ValueError)
    assert err.term == term
    assert str(err) == err.message
    for word in words:
        assert word in str(err), (word, str(err))


def test_error_names_the_whole_term_when_a_part_is_wrong() -> None:
    assert "'abc' in 'rport:5432,abc'" in str(error("rport:5432,abc"))
    # When the part is the whole term, it is quoted once.
    assert str(error("frobnicate")).startswith("unknown word 'frobnicate' —")


# --- fuzz --------------------------------------------------------------------------------------------------------

FUZZ_PIECES = [
    ":", "!", ",", "-", "/", ".", '"', " ", "\t", "\x00", "é", "٣", "²", "%", "|", "*",
    "80", "0", "65535", "99999", "8000-8100", "10.0.0.5", "10.0.0.0/8", "::1", "::ffff:", "fe80::/10", "/129",
    "ip", "lip", "rip", "port", "lport", "rport", "sport", "dport", "state", "pid", "proc", "program", "user",
    "proto", "tcp", "udp6", "4", "6", "listen", "-l", "estab", "fin", "close", "syn_recv", "time-wait", "unconn",
    "nginx", "www-data", "x",
]  # fmt: skip


def fuzz_inputs(count: int) -> list[str]:
    rng = random.Random(20240601)
    inputs = []
    for _ in range(count):
        if rng.random() < 0.5:
            text = "".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(0, 12)))
        else:
            text = "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 20)))
        inputs.append(text)
    return inputs


SAMPLE_SOCKETS = [
    sock(),
    listener("udp6"),
    listener("tcp", pid=None, user="", program=""),
    sock("tcp6", "::ffff:10.0.0.5", 80, "::ffff:192.168.1.9", 50000, "NEW_SYN_RECV"),
    sock(local="*", remote="not-an-address"),
]


def test_fuzz_only_filter_error_escapes() -> None:
    parsed = failed = 0
    for text in fuzz_inputs(6000):
        try:
            flt = parse_filter(text)
        except FilterError as err:
            failed += 1
            assert str(err), text
            assert isinstance(err.term, str), text
            continue
        parsed += 1
        for candidate in SAMPLE_SOCKETS:
            assert type(flt.matches(candidate)) is bool, text
        # The normalized text means the same filter.
        assert parse_filter(flt.text) == flt, text
    # Both outcomes happen, so the fuzzing reaches the compilers as well as the error paths.
    assert parsed > 100
    assert failed > 100


def test_the_readme_filter_table_is_the_grammar() -> None:
    """The README's "Filter language" table, row by row, is GRAMMAR; and every key the parser takes is in it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Filter language", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == [f"| {term.written} | {term.meaning} |" for term in GRAMMAR]
    assert GRAMMAR_RULES in section
    keys = {key for term in GRAMMAR for key in term.keys}
    assert {"port", "lport", "rport", "state", "proto", "pid", "proc", "user", "container", "ip"} <= keys
    for key in keys:
        assert f"{key}:" in section or key == "port", f"{key}: is not in the README"
