"""Alert thresholds and the config file from the command line: the real entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import VethPair

from netscope.app.cli import build_parser
from netscope.collectors.session.alerts import Thresholds

NETSCOPE = [sys.executable, "-m", "netscope"]


def netscope(*args: str, config_home: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "NETSCOPE_CONFIG"}
    env["XDG_CONFIG_HOME"] = str(config_home)
    return subprocess.run([*NETSCOPE, *args], capture_output=True, text=True, timeout=120, env=env)


def test_a_bad_alert_threshold_is_a_usage_error_naming_the_valid_ones(tmp_path: Path) -> None:
    result = netscope("--once", "--count", "--alert", "syn_flood=3", config_home=tmp_path)
    assert result.returncode == 2
    assert "--alert" in result.stderr and "syn_recv" in result.stderr and "syn_flood" in result.stderr
    result = netscope("--once", "--count", "--alert", "syn_recv=lots", config_home=tmp_path)
    assert result.returncode == 2 and "lots" in result.stderr


def test_a_broken_config_file_is_reported_and_the_output_still_comes(tmp_path: Path) -> None:
    (tmp_path / "netscope").mkdir()
    (tmp_path / "netscope" / "config.toml").write_text("interval = 1.0\n[alerts]\nsyn_recv = -5\nbogus = 1\n")
    result = netscope("--once", "--json", config_home=tmp_path)
    assert result.returncode == 0
    assert isinstance(json.loads(result.stdout), list)
    assert "syn_recv" in result.stderr and "bogus" in result.stderr
    assert str(tmp_path / "netscope" / "config.toml") in result.stderr

    quiet = netscope("--once", "--json", "--no-config", config_home=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_thresholds_come_from_the_file_then_the_flags(tmp_path: Path) -> None:
    from netscope.app.cli import _settings

    config = tmp_path / "my.toml"
    config.write_text("interval = 2.5\n[alerts]\nsyn_recv = 300\nclose_wait = 7\n")
    parser = build_parser()
    args = parser.parse_args(["--config", str(config), "--alert", "close_wait=9"])
    settings = _settings(parser, args)
    assert settings.thresholds == Thresholds(syn_recv=300, close_wait=9)
    assert args.interval == 2.5
    args = parser.parse_args(["--config", str(config), "--interval", "0.5", "--no-config"])
    settings = _settings(parser, args)
    assert settings.thresholds == Thresholds() and args.interval == 0.5


def test_netns_looks_into_another_network_namespace(veth_pair: VethPair, tmp_path: Path) -> None:
    inside = subprocess.Popen(
        ["ip", "netns", "exec", veth_pair.namespace, sys.executable, "-c",
         f"import socket, time; s = socket.create_server(({veth_pair.peer_address!r}, 0)); "
         "print(s.getsockname()[1], flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert inside.stdout is not None
        port = int(inside.stdout.readline())
        listed = netscope("--list-netns", config_home=tmp_path)
        assert listed.returncode == 0 and veth_pair.namespace in listed.stdout and "(this one)" in listed.stdout

        rows = json.loads(netscope("--netns", veth_pair.namespace, "--json", config_home=tmp_path).stdout)
        assert [(r["local_address"], r["local_port"], r["state"]) for r in rows] == [
            (veth_pair.peer_address, port, "LISTEN")
        ]
        assert rows[0]["pid"] == inside.pid  # `ip netns exec` enters the namespace and execs python: same PID
        here = json.loads(netscope("--json", "--filter", f"lport:{port} ip:{veth_pair.peer_address}",
                                   config_home=tmp_path).stdout)
        assert here == []  # not in this namespace

        routes = netscope("--netns", veth_pair.namespace, "-rn", config_home=tmp_path)
        assert veth_pair.peer_interface in routes.stdout and veth_pair.host_interface not in routes.stdout

        bad = netscope("--netns", "no-such-namespace", "--count", config_home=tmp_path)
        assert bad.returncode == 2 and "ip netns list" in bad.stderr
    finally:
        inside.kill()
        inside.wait(timeout=10)
        if inside.stdout is not None:
            inside.stdout.close()
