"""The container or service owning a socket, from the owner's cgroup: parsing, and a real cgroup v2 group."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Peer

from netscope.collectors.connections import ConnectionCollector
from netscope.collectors.containers import cgroup_path, container_name
from netscope.collectors.processes import process_details
from netscope.collectors.session.filters import parse_filter

DOCKER_ID = "3f2a9c1b7d4e" + "0" * 52


@pytest.mark.parametrize(
    ("cgroup", "name"),
    [
        (f"0::/system.slice/docker-{DOCKER_ID}.scope\n", "docker:3f2a9c1b7d4e"),  # systemd driver, cgroup v2
        (f"12:memory:/docker/{DOCKER_ID}\n1:name=systemd:/docker/{DOCKER_ID}\n0::/\n", "docker:3f2a9c1b7d4e"),
        (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/"
         f"cri-containerd-{DOCKER_ID}.scope\n", "k8s:3f2a9c1b7d4e"),
        (f"0::/kubepods/burstable/pod1a2b-3c4d/{DOCKER_ID}\n", "k8s:3f2a9c1b7d4e"),
        (f"0::/machine.slice/libpod-{DOCKER_ID}.scope/container\n", "podman:3f2a9c1b7d4e"),
        ("0::/lxc.payload.web1\n", "lxc:web1"),
        ("1:name=systemd:/lxc/db2\n0::/\n", "lxc:db2"),
        ("0::/system.slice/nginx.service\n", "nginx.service"),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope"),
        ("0::/init.scope\n", ""),  # systemd itself: the host
        ("0::/\n", ""),
        # A VM agent's memory group (cgroup v1) is no container: only v2 and name=systemd name one.
        ("4:memory:/process_api/c857a4e2f1b847447ac1b13ab50be0a2\n1:name=systemd:/\n0::/\n", ""),
        ("", ""),
    ],
)
def test_container_names(cgroup: str, name: str) -> None:
    assert container_name(cgroup) == name


def test_the_v2_line_wins_over_name_systemd() -> None:
    assert cgroup_path("1:name=systemd:/old\n0::/system.slice/a.service\n") == "/system.slice/a.service"
    assert cgroup_path("1:name=systemd:/system.slice/b.service\n0::/\n") == "/system.slice/b.service"


def _cgroup2_root() -> Path | None:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A cgroup v2 group of our own (needs root and a writable cgroup2 mount)."""
    root = _cgroup2_root()
    if root is None or os.geteuid() != 0:
        pytest.skip("needs root and a cgroup2 mount")
    group = root / f"netscope-test-{os.getpid()}"
    try:
        group.mkdir()
    except OSError as error:
        pytest.skip(f"cannot make a cgroup here: {error}")
    yield group
    for pid in (group / "cgroup.procs").read_text().split():  # give any survivor back to the root group
        with contextlib.suppress(OSError):
            (root / "cgroup.procs").write_text(pid)
    deadline = time.monotonic() + 5
    while True:
        try:
            group.rmdir()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_socket_shows_its_owners_group_and_filters_by_it(
    cgroup: Path, spawn_peer: Callable[..., Peer]
) -> None:
    server = spawn_peer("server", "--name", "ns-contained")
    (cgroup / "cgroup.procs").write_text(str(server.pid))
    snapshot = ConnectionCollector().collect()
    [listener] = [s for s in snapshot.sockets.values() if s.pid == server.pid and s.state == "LISTEN"]
    assert listener.container == cgroup.name
    matches = parse_filter(f"container:{cgroup.name}").matches
    assert [s.key for s in snapshot.sockets.values() if matches(s)] == [listener.key]
    assert not parse_filter("container:host").matches(listener)
    details = process_details(server.pid)
    assert details.container == cgroup.name and details.cgroup == f"/{cgroup.name}"


async def test_the_container_column_needs_no_tcp_info(cgroup: Path, spawn_peer: Callable[..., Peer]) -> None:
    from support import wait_for
    from textual.widgets import SelectionList

    from netscope.app.netscope_app import NetscopeApp
    from netscope.app.screens.columns import ColumnsScreen

    server = spawn_peer("server", "--name", "ns-contained")
    (cgroup / "cgroup.procs").write_text(str(server.pid))
    app = NetscopeApp(interval=0.25, filter_text=f"pid:{server.pid}", save_config=False)
    collector = app.source.source  # type: ignore[attr-defined]  # the ProcessCollector inside the RecordingTee
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 1)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ColumnsScreen))
        app.screen.query_one(SelectionList).select("container")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.table.metric_columns == ["container"])
        header = "".join(segment.text for segment in app.table.render_line(0))
        assert "Container" in header
        assert app.table.row_text(0).rstrip().endswith(cgroup.name)
        assert not collector.tcp_info  # a text column: tcp_info is not read for it
