"""The Prometheus endpoint (`--metrics`): scraped over HTTP and parsed with prometheus_client's own parsers, over
real loopback loads owned by real processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from metrics_support import NETSCOPE, Headless, frame_samples, samples, scrape, value
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from support import PEERS, Peer, start_peer, stop_peer, wait_for

from netscope.app.metrics.endpoint import AddressError, label_text, parse_address
from netscope.app.metrics.run import start_endpoint
from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.session.alerts import Thresholds
from netscope.collectors.session.live import LiveSession
from netscope.collectors.session.metrics import OTHER, MetricsFrame, MetricsSettings
from netscope.collectors.session.metrics_feed import MetricsFeed
from netscope.widgets.formatting import printable


@pytest.fixture
def load() -> Iterator[tuple[Peer, Peer]]:
    """20 ESTABLISHED connections from a client named mtcli to a server named mtsrv on 127.0.0.1."""
    server = start_peer("server", "--name", "mtsrv", "--lifetime", "120")
    client = start_peer("client", str(server.port), "--count", "20", "--name", "mtcli", "--lifetime", "120")
    try:
        yield server, client
    finally:
        stop_peer(client)
        stop_peer(server)


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


# --- the headless endpoint, as a fleet runs it -----------------------------------------------------------------


def test_headless_endpoint_serves_the_load_and_stops_cleanly(load: tuple[Peer, Peer]) -> None:
    server, _ = load
    port = str(server.port)
    netscope = Headless("--interval", "0.5")
    try:
        text = netscope.until(
            "20 ESTABLISHED on the server's port",
            lambda t: value(samples(t, "netscope_port_sockets"), port=port, state="ESTABLISHED") == 20,
        )
        worker = children_of(netscope.process.pid)
        assert worker, "the collector worker runs as a child"
        ports = samples(text, "netscope_port_sockets")
        # TIME_WAIT aside: the server's port was free to bind, not free of an earlier test's closed connection that
        # had the same number (a clean-clone run met one)
        on_port = {dict(key)["state"]: v for key, v in ports.items() if ("port", port) in key}
        on_port.pop("TIME_WAIT", None)
        assert on_port == {"ESTABLISHED": 20.0, "LISTEN": 1.0}
        processes = samples(text, "netscope_process_sockets")
        assert value(processes, process="mtsrv", container="", state="ESTABLISHED") == 20
        assert value(processes, process="mtsrv", container="", state="LISTEN") == 1
        assert value(processes, process="mtcli", container="", state="ESTABLISHED") == 20
        queue = samples(text, "netscope_listen_queue")
        backlog = samples(text, "netscope_listen_backlog")
        labels = {"proto": "tcp", "address": "127.0.0.1", "port": port, "process": "mtsrv"}
        assert value(queue, **labels) == 0 and value(backlog, **labels) == 512  # peers.py listen(512)
        # Every socket is in netscope_sockets and in netscope_process_sockets (others summed into "other").
        assert sum(samples(text, "netscope_sockets").values()) == sum(processes.values())
        established = value(samples(text, "netscope_sockets"), proto="tcp", state="ESTABLISHED")
        assert established is not None and established >= 40
        assert value(samples(text, "netscope_remote_sockets"), network="127.0.0.0/24", state="ESTABLISHED") \
            is not None
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert value(samples(text, "netscope_scrape_series")) == len(lines)
        build = samples(text, "netscope_build_info")
        assert [dict(key)["parser"] for key in build] == ["python"]
        assert value(samples(text, "netscope_refresh_interval_seconds")) == 0.5
        assert samples(text, "netscope_tcp_active_opens_total")  # a netstat -s counter, as a counter
        assert samples(text, "netscope_interface_receive_bytes_total")[(("interface", "lo"),)] > 0

        kind, body = scrape(netscope.url, "application/openmetrics-text; version=1.0.0")
        assert kind.startswith("application/openmetrics-text") and body.endswith("# EOF\n")
        families = {family.name: family for family in parse_openmetrics(body)}
        assert families["netscope_sockets"].type == "gauge"
        assert families["netscope_tcp_active_opens"].type == "counter"
        assert families["netscope_build"].type == "info"
        with pytest.raises(urllib.error.HTTPError) as missing:
            scrape(netscope.url.replace("/metrics", "/nothing"))
        assert missing.value.code == 404
    finally:
        status = netscope.stop()
    assert status == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in worker), "SIGTERM leaves no worker behind"
    with pytest.raises(OSError):
        scrape(netscope.url)  # the port is closed


def test_a_thousand_scrapes_leave_memory_flat() -> None:
    netscope = Headless("--interval", "0.2")
    try:
        netscope.until("a first frame", lambda t: "netscope_sockets" in t)

        def rss_kb() -> int:
            status = Path(f"/proc/{netscope.process.pid}/status").read_text()
            return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

        for _ in range(200):  # warm up: allocator arenas, the converted frames
            scrape(netscope.url)
        before = rss_kb()
        for _ in range(1000):
            scrape(netscope.url)
        grown = rss_kb() - before
    finally:
        assert netscope.stop() == 0
    assert grown < 2048, f"RSS grew by {grown} kB over 1,000 scrapes"


# --- the counts, against the screen's session, on the same real diffs ------------------------------------------


def test_counts_equal_the_session_s_on_the_same_diffs(load: tuple[Peer, Peer]) -> None:
    collector = ConnectionCollector()
    session = LiveSession()
    feed = MetricsFeed(MetricsSettings(top=100_000))  # no cap: every group its own series
    for _ in range(3):
        diff = collector.next_diff()
        session.take(diff)
        frame = feed.make_frame([diff])
        time.sleep(0.1)
    sockets = frame_samples(frame, "netscope_sockets")
    by_counter: Counter[str] = Counter()
    for (proto, state), count in sockets.items():
        by_counter["UDP" if proto.startswith("udp") else state] += int(count)
    assert by_counter == +session.totals

    def by_key(grouping: str) -> dict[tuple[str, str], int]:
        counts: Counter[tuple[str, str]] = Counter()
        for group in session.groups.groups(grouping):
            key = group.key
            if grouping == "process":  # "nginx (1234)" -> the program; the no-owner group -> "-"
                key = "-" if key.startswith("- (") else key.rsplit(" (", 1)[0]
            for state, count in group.states.items():
                counts[(key, state)] += count
        return dict(counts)

    processes: Counter[tuple[str, str]] = Counter()
    for (program, _container, state), count in frame_samples(frame, "netscope_process_sockets").items():
        processes[(program, state)] += int(count)
    assert dict(processes) == by_key("process")
    networks = {key: int(count) for key, count in frame_samples(frame, "netscope_remote_sockets").items()}
    assert networks == by_key("remote_net")
    listening = {str(sock.local_port) for sock in session.snapshot.sockets.values() if sock.is_listening}  # type: ignore[union-attr]
    ports = {key: count for key, count in by_key("local_port").items() if key[0] in listening}
    assert {key: int(count) for key, count in frame_samples(frame, "netscope_port_sockets").items()} == ports


def test_caps_keep_the_biggest_groups_and_sum_the_rest_into_other() -> None:
    listeners, held = [], []
    try:
        for connections in range(1, 7):  # six ports with 1..6 connections each (2 sockets per connection)
            listener = socket.create_server(("127.0.0.1", 0))
            listeners.append(listener)
            for _ in range(connections):
                held.append(socket.create_connection(listener.getsockname()))
                held.append(listener.accept()[0])
        diff = ConnectionCollector().next_diff()
        whole = MetricsFeed(MetricsSettings(top=100_000)).make_frame([diff])
        capped = MetricsFeed(MetricsSettings(top=3)).make_frame([diff])
    finally:
        for sock in held + listeners:
            sock.close()
    for name, group in (("netscope_port_sockets", 0), ("netscope_process_sockets", 0),
                        ("netscope_remote_sockets", 0)):
        full, few = frame_samples(whole, name), frame_samples(capped, name)
        assert sum(few.values()) == sum(full.values()), name  # nothing lost, nothing counted twice
        totals: Counter[str] = Counter()
        for key, count in full.items():
            totals[key[group]] += int(count)
        kept = {key[group] for key in few} - {OTHER}
        assert len(kept) == min(3, len(totals)), name
        assert kept == {key for key, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:3]}
        if len(totals) > 3:
            other = sum(count for key, count in few.items() if key[group] == OTHER)
            assert other == sum(count for key, count in totals.items() if key not in kept)
    busiest = max(totals_of(whole, "netscope_port_sockets").items(), key=lambda item: item[1])
    assert busiest[0] in {key[0] for key in frame_samples(capped, "netscope_port_sockets")}


def totals_of(frame: MetricsFrame, name: str) -> Counter[str]:
    totals: Counter[str] = Counter()
    for key, count in frame_samples(frame, name).items():
        totals[key[0]] += int(count)
    return totals


def test_families_can_be_turned_off() -> None:
    diff = ConnectionCollector().next_diff()
    frame = MetricsFeed(MetricsSettings(families=frozenset({"sockets"}))).make_frame([diff])
    names = {part.family.name for part in frame.families}
    assert "netscope_sockets" in names and "netscope_port_sockets" not in names
    assert not any(name.startswith("netscope_interface") for name in names)
    assert "netscope_build" in names and "netscope_scrape_series" in names  # about netscope itself: always


# --- the endpoint in this process: stalls, escaping, alerts ----------------------------------------------------


def test_a_stalled_scraper_never_delays_collection() -> None:
    endpoint = start_endpoint(MetricsSettings(address="127.0.0.1:0"), Thresholds(), lambda: None, 1.0)
    collector = ConnectionCollector()
    stalled = socket.create_connection(("127.0.0.1", int(endpoint.server.address.rsplit(":", 1)[1])))
    try:
        stalled.sendall(b"GET /metr")  # and never the rest
        for expected in range(1, 4):
            endpoint.feed.frames_made.clear()
            started = time.monotonic()
            endpoint.feed.take(collector.next_diff())
            assert endpoint.feed.frames_made.wait(5), "a frame is made while a scraper stalls"
            text = scrape(endpoint.url)[1]
            assert value(samples(text, "netscope_refreshes_total")) == expected
            assert time.monotonic() - started < 3
    finally:
        stalled.close()
        endpoint.close()


def test_hostile_process_names_are_escaped_and_the_scrape_still_parses() -> None:
    name = "a\nb\"c\\\x1b\udcff"  # newline, quote, backslash, ESC and a byte that is not UTF-8
    server = subprocess.Popen(
        [sys.executable, str(PEERS), "server", "--name", name, "--lifetime", "60"],
        stdout=subprocess.PIPE, text=True, errors="surrogateescape",
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip().isdigit()
        comm = Path(f"/proc/{server.pid}/comm").read_bytes().rstrip(b"\n")
        assert comm == name.encode("utf-8", "surrogateescape")
        endpoint = start_endpoint(MetricsSettings(address="127.0.0.1:0"), Thresholds(), lambda: None, 1.0)
        try:
            endpoint.feed.take(ConnectionCollector().next_diff())
            assert endpoint.feed.frames_made.wait(5)
            text = scrape(endpoint.url)[1]
        finally:
            endpoint.close()
    finally:
        server.kill()
        server.wait()
    shown = label_text(comm.decode("utf-8", "surrogateescape"))
    assert shown == printable(name) and "\n" not in shown and "\x1b" not in shown
    processes = samples(text, "netscope_process_sockets")
    assert value(processes, process=shown, container="", state="LISTEN") == 1


def test_a_long_name_is_cut_to_the_label_limit() -> None:
    assert len(label_text("x" * 1000)) == 128 and label_text("x" * 1000).endswith("…")


def test_an_alert_is_one_series_while_raised() -> None:
    """A CLOSE_WAIT leak of this very process: peers close, it never does."""
    feed = MetricsFeed(MetricsSettings(), thresholds=Thresholds(close_wait=2, close_wait_refreshes=1))
    collector = ConnectionCollector()
    listener = socket.create_server(("127.0.0.1", 0))
    leaked: list[socket.socket] = []

    def leaks(frame: MetricsFrame) -> dict[tuple[str, ...], float]:
        return {key: v for key, v in frame_samples(frame, "netscope_alert_active").items()
                if key[0] == "close_wait_leak"}

    try:
        for _ in range(3):
            client = socket.create_connection(listener.getsockname())
            leaked.append(listener.accept()[0])
            client.close()  # our accepted end goes to CLOSE_WAIT, and we never close it
            time.sleep(0.05)
            diff = collector.next_diff()
            frame = feed.make_frame([diff])
        program = next(sock.program for sock in diff.snapshot.sockets.values() if sock.pid == os.getpid())
        assert leaks(frame) == {("close_wait_leak", f"{os.getpid()}/{label_text(program)}"): 1.0}
        for sock in leaked:
            sock.close()
        time.sleep(0.05)
        frame = feed.make_frame([collector.next_diff()])
        assert leaks(frame) == {}
    finally:
        for sock in leaked:
            sock.close()
        listener.close()


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "http://x", "127.0.0.1:99999", "127.0.0.1:", "::1:9850", "[::1]", "a b:80",
                                  "[nothost]:80"])
def test_malformed_addresses_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_addresses_people_write() -> None:
    assert parse_address("9850") == ("127.0.0.1", 9850)
    assert parse_address(":9850") == ("127.0.0.1", 9850)
    assert parse_address("0.0.0.0:9850") == ("0.0.0.0", 9850)
    assert parse_address("[::1]:9850") == ("::1", 9850)
    assert parse_address("localhost:9850") == ("localhost", 9850)


@pytest.mark.parametrize("ui", [False, True])
def test_a_taken_port_is_a_clear_message_and_status_2(ui: bool) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        result = subprocess.run(
            [*NETSCOPE, "--no-config", "--metrics", f"127.0.0.1:{port}", *([] if ui else ["--no-ui"])],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )
    finally:
        taken.close()
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--metrics", "127.0.0.1:80x", "--no-ui"], "the port must be a number"),
    (["--metrics", "nosuchhost.invalid:9850", "--no-ui"], "nosuchhost.invalid"),
    (["--metrics-top", "5"], "add --metrics"),
    (["--metrics", "--metrics-top", "0"], "from 1 to"),
    (["--metrics", "--metrics-families", "sockets,bogus"], "unknown metric families 'bogus'"),
    (["--metrics", "--once"], "does not combine with printed output"),
    (["--metrics", "--replay", "x.nsrec"], "not a recording"),
])
def test_bad_metrics_options_say_what_to_write(args: list[str], message: str) -> None:
    result = subprocess.run([*NETSCOPE, "--no-config", *args], capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_config_file_sets_the_endpoint(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[metrics]\naddress = "127.0.0.1:0"\ntop = 2\nfamilies = ["sockets", "ports"]\n')
    process = subprocess.Popen([*NETSCOPE, "--config", str(config), "--metrics", "--no-ui", "--duration", "30"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        url = re.search(r"serving (http://\S+/metrics)", process.stderr.readline()).group(1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 15
        while "netscope_sockets{" not in (text := scrape(url)[1]) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stderr.close()  # type: ignore[union-attr]
    names = {family.name for family in text_string_to_metric_families(text)}
    assert "netscope_sockets" in names and "netscope_port_sockets" in names
    assert "netscope_process_sockets" not in names
    assert len({dict(key)["port"] for key in samples(text, "netscope_port_sockets")} - {OTHER}) <= 2


def test_bad_metrics_settings_in_the_config_are_said_and_ignored(tmp_path: Path) -> None:
    from netscope.collectors.session.config import load_config

    path = tmp_path / "config.toml"
    path.write_text('[metrics]\naddress = 5\ntop = 0\nfamilies = ["nope"]\ncolour = "red"\n')
    config = load_config(path, named=True)
    assert config.metrics == MetricsSettings()
    assert [warning.split(": ", 1)[1] for warning in config.warnings] == [
        "metrics.address should be a string \"ADDRESS:PORT\", not a number (5); ignored",
        "metrics.top should be a whole number from 1 to 10000, not a number (0); ignored",
        "metrics.families unknown metric families 'nope'; known: sockets, listen, ports, processes, remotes, "
        "alerts, interfaces, netstat; all are kept on",
        "metrics.colour is not a metrics setting (known: address, top, interfaces, families); ignored",
    ]


# --- beside the UI ---------------------------------------------------------------------------------------------


async def test_beside_the_ui_the_endpoint_counts_what_the_screen_counts_and_goes_on_while_paused(
    load: tuple[Peer, Peer],
) -> None:
    from netscope.app.netscope_app import NetscopeApp
    from netscope.collectors.process_collector import ProcessCollector
    from netscope.collectors.recording import RecordingTee

    server, _ = load
    source = RecordingTee(ProcessCollector(interval=0.3, cpu_share=0.0))
    endpoint = start_endpoint(MetricsSettings(address="127.0.0.1:0"), Thresholds(), lambda: source.pace, 0.3)
    app = NetscopeApp(source, interval=0.3, metrics=endpoint.feed, save_config=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.session.totals["ESTABLISHED"] >= 40)
            await wait_for(pilot, lambda: endpoint.feed.frame is not None
                           and endpoint.feed.frame.taken_at == app.session.snapshot.taken_at)  # type: ignore[union-attr]
            text = scrape(endpoint.url)[1]
            by_counter: Counter[str] = Counter()
            for key, count in samples(text, "netscope_sockets").items():
                labels = dict(key)
                by_counter["UDP" if labels["proto"].startswith("udp") else labels["state"]] += int(count)
            assert by_counter == +app.session.totals
            assert value(samples(text, "netscope_port_sockets"), port=str(server.port), state="ESTABLISHED") == 20
            await pilot.press("space")
            assert app.session.paused
            counted = value(samples(scrape(endpoint.url)[1], "netscope_refreshes_total")) or 0
            await wait_for(pilot, lambda: (value(samples(scrape(endpoint.url)[1], "netscope_refreshes_total"))
                                           or 0) >= counted + 2)
            assert app.session.paused  # the screen held still while the endpoint went on
    finally:
        endpoint.close()


def test_the_readme_s_table_is_the_contract() -> None:
    """Every family, with its type and labels, in README's table, and nothing else: the table is what dashboards
    and alert rules are written from."""
    from netscope.collectors.session.metrics import FAMILIES, NETSTAT_COUNTERS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = re.findall(r"^\| `(netscope_\w+)` \| (\w+) \| ([^|]+) \|", readme, re.MULTILINE)
    documented = {(name, kind, tuple(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}
    contract = {(family.name + ("_info" if family.kind == "info" else ""), family.kind, family.labels)
                for family in (*FAMILIES, *NETSTAT_COUNTERS.values())}
    assert documented == contract
