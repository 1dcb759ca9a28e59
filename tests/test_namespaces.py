"""Looking into another network namespace (`--netns`, as `ss -N`): real namespaces from the veth_pair fixture."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from support import VethPair, next_matching

from netscope.collectors.connections import CollectionFailure
from netscope.collectors.model import SnapshotDiff
from netscope.collectors.namespaces import enter_namespace, list_namespaces, namespace_path
from netscope.collectors.process_collector import ProcessCollector
from netscope.collectors.view_data import SystemViews

LISTENER = (
    "import socket, sys, time\n"
    "s = socket.socket()\n"
    "s.bind((sys.argv[1], 0))\n"
    "s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def listener(veth_pair: VethPair) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A TCP listener on the peer address, started inside the test namespace; yields it and its port."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", veth_pair.namespace, sys.executable, "-c", LISTENER, veth_pair.peer_address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    try:
        assert line.isdigit(), process.stderr.read() if process.stderr else ""
        yield process, int(line)
    finally:
        process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_list_namespaces_finds_the_named_one_and_the_current_one(
    veth_pair: VethPair, listener: tuple[subprocess.Popen[str], int]
) -> None:
    namespaces = list_namespaces()
    inodes = [ns.inode for ns in namespaces]
    assert len(inodes) == len(set(inodes))  # merged by inode
    current = [ns for ns in namespaces if ns.current]
    assert len(current) == 1 and current[0].inode == os.stat("/proc/self/ns/net").st_ino
    assert current[0].pids >= 1 and namespaces[0] is current[0]
    named = [ns for ns in namespaces if ns.name == veth_pair.namespace]
    assert len(named) == 1
    ours = named[0]
    assert not ours.current
    assert ours.inode == os.stat(f"/var/run/netns/{veth_pair.namespace}").st_ino
    # The listener (the python that `ip netns exec` became) is a process of it.
    process, _ = listener
    assert ours.pids >= 1 and ours.example_pid is not None
    assert ours.inode == os.stat(f"/proc/{process.pid}/ns/net").st_ino
    assert ours.example_program


def test_list_namespaces_skips_what_it_cannot_read(tmp_path: pytest.TempPathFactory) -> None:
    assert list_namespaces(proc_root="/nonexistent", run_dir="/nonexistent") == []
    stale = tmp_path / "stale"  # type: ignore[operator]
    stale.mkdir()
    (stale / "leftover").write_text("")  # a name whose bind mount is gone is no namespace
    assert all(ns.name != "leftover" for ns in list_namespaces(run_dir=str(stale)))


def test_namespace_path_resolves_names_pids_and_paths(veth_pair: VethPair) -> None:
    named = namespace_path(veth_pair.namespace)
    assert named == f"/var/run/netns/{veth_pair.namespace}"
    assert namespace_path(str(os.getpid())) == f"/proc/{os.getpid()}/ns/net"
    assert namespace_path("/proc/self/ns/net") == "/proc/self/ns/net"
    with pytest.raises(ValueError, match="no network namespace named nosuch-ns; `ip netns list`"):
        namespace_path("nosuch-ns")
    with pytest.raises(ValueError, match="no process"):
        namespace_path("999999999")
    with pytest.raises(ValueError, match="no network namespace file"):
        namespace_path("/nonexistent/ns")


def test_enter_namespace_explains_what_is_not_a_namespace(tmp_path: pytest.TempPathFactory) -> None:
    plain = tmp_path / "plain"  # type: ignore[operator]
    plain.write_text("")
    with pytest.raises(OSError, match="not a network namespace"):
        enter_namespace(str(plain))
    with pytest.raises(OSError, match="cannot open network namespace"):
        enter_namespace("/nonexistent/ns")


async def test_process_collector_sees_the_namespace_sockets_and_only_them(
    veth_pair: VethPair, listener: tuple[subprocess.Popen[str], int]
) -> None:
    _, port = listener

    def has_listener(update: SnapshotDiff | CollectionFailure) -> bool:
        return isinstance(update, SnapshotDiff) and any(
            s.local_port == port and s.local_ip == veth_pair.peer_address and s.is_listening
            for s in update.snapshot.sockets.values()
        )

    inside = ProcessCollector(interval=0.2, netns=namespace_path(veth_pair.namespace))
    outside = ProcessCollector(interval=0.2)
    inside_stream, outside_stream = inside.stream(), outside.stream()
    try:
        seen = await next_matching(inside_stream, lambda u: isinstance(u, SnapshotDiff))
        assert has_listener(seen)
        assert isinstance(seen, SnapshotDiff)
        owner = [s for s in seen.snapshot.sockets.values() if s.local_port == port]
        assert owner[0].pid == listener[0].pid  # attributed to the process, as outside
        host = await next_matching(outside_stream, lambda u: isinstance(u, SnapshotDiff))
        assert isinstance(host, SnapshotDiff) and host.snapshot.sockets and not has_listener(host)
    finally:
        await inside.aclose()
        await outside.aclose()


async def test_worker_reports_a_namespace_it_cannot_enter(tmp_path: pytest.TempPathFactory) -> None:
    plain = tmp_path / "plain"  # type: ignore[operator]
    plain.write_text("")
    collector = ProcessCollector(interval=0.2, netns=str(plain))
    stream = collector.stream()
    try:
        failure = await next_matching(stream, lambda u: True)
        assert isinstance(failure, CollectionFailure) and "not a network namespace" in failure.message
        stopped = await next_matching(stream, lambda u: True)
        assert isinstance(stopped, CollectionFailure) and "not a network namespace" in stopped.message
    finally:
        await collector.aclose()


def test_system_views_show_the_namespace_interfaces_and_routes(veth_pair: VethPair) -> None:
    views = SystemViews(netns=namespace_path(veth_pair.namespace))
    try:
        data = views.collect("routes")
    finally:
        views.close()
    assert data.interfaces is not None and data.routes is not None and data.statistics is not None
    interfaces = {i.name: i for i in data.interfaces.interfaces}
    assert set(interfaces) == {"lo", veth_pair.peer_interface}
    peer = interfaces[veth_pair.peer_interface]
    # Details from a sysfs of the namespace: the peer veth is there (it is not in the host's /sys) and up.
    assert peer.up and peer.mtu > 0 and peer.mac and peer.index > 0
    assert any(a.startswith(f"{veth_pair.peer_address}/30") for a in peer.ipv4)
    assert veth_pair.host_interface not in interfaces
    subnet = veth_pair.peer_address.rsplit(".", 1)[0] + ".0/30"
    destinations = {(r.destination, r.interface) for r in data.routes.routes}
    assert (subnet, veth_pair.peer_interface) in destinations
    assert all(r.interface != veth_pair.host_interface for r in data.routes.routes)
    assert not [w for w in data.warnings if "not shown" in w], data.warnings


def test_system_views_report_a_namespace_they_cannot_enter(tmp_path: pytest.TempPathFactory) -> None:
    plain = tmp_path / "plain"  # type: ignore[operator]
    plain.write_text("")
    views = SystemViews(netns=str(plain))
    try:
        data = views.collect("interfaces")
    finally:
        views.close()
    assert data.interfaces is None and any("not a network namespace" in w for w in data.warnings)
