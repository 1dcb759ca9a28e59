"""netscope's endpoint as a fleet runs it: scraped by a real Prometheus (Debian's package, installed here when
missing), the Grafana dashboard's queries run against it, and the systemd unit's user and capabilities."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from metrics_support import Headless, samples, value
from support import Peer, debian_tool

import netscope

METRICS_DIR = Path(netscope.__file__).resolve().parent / "app" / "metrics"
UNIT = METRICS_DIR / "netscope-metrics.service"
DASHBOARD = METRICS_DIR / "grafana-dashboard.json"


@pytest.fixture
def load(spawn_peer: Callable[..., Peer]) -> tuple[Peer, Peer]:
    server = spawn_peer("server", "--name", "promsrv", "--lifetime", "120")
    client = spawn_peer("client", str(server.port), "--count", "20", "--name", "promcli", "--lifetime", "120")
    return server, client


# --- a real Prometheus -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    return debian_tool("prometheus", "prometheus")


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


class Prometheus:
    def __init__(self, binary: str, target: str, folder: Path) -> None:
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: netscope\n    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        self.base = f"http://127.0.0.1:{free_port()}"
        self.log = (folder / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={self.base.removeprefix('http://')}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.folder = folder
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"Prometheus did not start: {(folder / 'prometheus.log').read_text()[-2000:]}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def until(self, expr: str, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 30) -> list[Any]:
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if check(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{expr}: {result}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def scraped(prometheus_binary: str, load: tuple[Peer, Peer]) -> Iterator[tuple[Prometheus, Peer]]:
    """netscope serving on a free port, and a Prometheus scraping it every second."""
    netscope = Headless("--interval", "1")
    folder = Path(tempfile.mkdtemp(prefix="netscope-prometheus-"))
    try:
        prometheus = Prometheus(prometheus_binary, netscope.url.removeprefix("http://").removesuffix("/metrics"),
                                folder)
        try:
            yield prometheus, load[0]
        finally:
            prometheus.stop()
    finally:
        assert netscope.stop() == 0
        shutil.rmtree(folder, ignore_errors=True)


def number(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_a_real_prometheus_scrapes_the_load(scraped: tuple[Prometheus, Peer]) -> None:
    prometheus, server = scraped
    # Two scrapes at least: the first and one more.
    prometheus.until("count_over_time(netscope_refreshes_total[1m])", lambda r: bool(r) and number(r) >= 2)
    port = f'port="{server.port}"'
    assert number(prometheus.until(f'netscope_port_sockets{{{port},state="ESTABLISHED"}}', bool)) == 20
    assert number(prometheus.query(f'netscope_port_sockets{{{port},state="LISTEN"}}')) == 1
    assert number(prometheus.query('netscope_process_sockets{process="promcli",state="ESTABLISHED"}')) == 20
    assert number(prometheus.query('netscope_process_sockets{process="promsrv",state="ESTABLISHED"}')) == 20
    established = number(prometheus.query('sum(netscope_sockets{state="ESTABLISHED"})'))
    assert established >= 40  # the load's 40 ends, and whatever else this machine holds
    backlog = prometheus.query(f'netscope_listen_backlog{{{port},process="promsrv"}}')
    assert number(backlog) == 512
    targets = json.load(urllib.request.urlopen(f"{prometheus.base}/api/v1/targets", timeout=10))
    (target,) = targets["data"]["activeTargets"]
    assert target["health"] == "up" and target["lastError"] == ""


def test_every_dashboard_query_runs_on_a_real_prometheus(scraped: tuple[Prometheus, Peer]) -> None:
    prometheus, _ = scraped
    prometheus.until("count_over_time(netscope_refreshes_total[1m])", lambda r: bool(r) and number(r) >= 2)
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [dashboard["templating"]["list"][1]["definition"]]
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    answered: dict[str, int] = {}
    for expr in exprs:
        # Grafana fills $instance from the variable; ".*" is its "All".
        answered[expr] = len(prometheus.query(expr.replace("$instance", ".*")))
    empty = [expr for expr, count in answered.items() if not count]
    # With no alert raised, no CLOSE_WAIT, no backlog filling and no overflow yet, those panels are empty.
    allowed_empty = ("netscope_alert_active", "CLOSE_WAIT", "netscope_listen_queue", "listen_overflows",
                     "listen_drops", "retransmitted", "timeouts", "SYN_RECV")
    assert all(any(word in expr for word in allowed_empty) for expr in empty), empty
    assert queries == ["label_values(netscope_build_info, instance)"]
    assert prometheus.query("netscope_build_info")[0]["metric"]["instance"]


# --- the systemd unit ------------------------------------------------------------------------------------------


def unit_setting(name: str) -> str:
    (line,) = [line for line in UNIT.read_text().splitlines() if line.startswith(f"{name}=")]
    return line.split("=", 1)[1]


def test_the_unit_passes_systemd_s_own_check(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    executable = shutil.which("netscope") or str(Path(sys.executable).with_name("netscope"))
    unit = tmp_path / "netscope-metrics.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/netscope", executable))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    assert unit_setting("ExecStart").split()[1:] == ["--metrics", "127.0.0.1:9850", "--no-ui", "--no-config"]
    assert unit_setting("DynamicUser") == "yes"  # not root


@pytest.mark.root
def test_the_unit_s_capabilities_are_what_naming_other_users_owners_needs(
    load: tuple[Peer, Peer], nobody_python: tuple[list[str], dict[str, str]]
) -> None:
    """As user 65534, the way the unit runs it: without the capabilities, root's sockets have no owner; with the
    unit's AmbientCapabilities, they do. The load belongs to root (this test's children)."""
    server, _ = load
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    caps = ",".join("+" + cap.lower().removeprefix("cap_") for cap in unit_setting("AmbientCapabilities").split())
    assert caps == "+dac_read_search,+sys_ptrace"
    python, env = nobody_python
    owners: dict[bool, str] = {}
    for with_caps in (False, True):
        granted = [f"--inh-caps={caps}", f"--ambient-caps={caps}"] if with_caps else []
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *granted, "--", *python,
                   "-m", "netscope"]
        netscope = Headless("--interval", "0.5", "--duration", "60", command=command, env=env)
        try:
            text = netscope.until("the load's listener", lambda t: any(
                dict(key).get("port") == str(server.port) for key in samples(t, "netscope_listen_queue")))
            (labels,) = [dict(key) for key in samples(text, "netscope_listen_queue")
                         if dict(key).get("port") == str(server.port)]
            owners[with_caps] = labels["process"]
            assert value(samples(text, "netscope_port_sockets"), port=str(server.port), state="ESTABLISHED") == 20
        finally:
            assert netscope.stop() == 0
    assert owners == {False: "-", True: "promsrv"}
