"""Socket owners, process names and details, with real child processes."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from netscope.collectors.processes import (
    OwnerScanner,
    ProcessInfo,
    ProcessInfoCache,
    process_details,
    user_name,
)
from netscope.collectors.procnet import read_proc_net

NOBODY = 65534

# Opens a listening socket, prints its port and inode, and waits to be killed.
LISTENER_CODE = textwrap.dedent(
    """
    import os, socket, sys, time
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    print(s.getsockname()[1], os.fstat(s.fileno()).st_ino, flush=True)
    time.sleep(60)
    """
)

# Like LISTENER_CODE, but forks first-come first-served: parent and child both hold the socket.
FORKING_LISTENER_CODE = textwrap.dedent(
    """
    import os, socket, sys, time
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(s.getsockname()[1], os.fstat(s.fileno()).st_ino, child, flush=True)
    try:
        time.sleep(60)
    finally:
        os.kill(child, 9)
    """
)


def read_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """One line of the child's stdout, without hanging the test run if it never comes."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"child {proc.pid} printed nothing within {timeout}s"
    line = proc.stdout.readline()
    assert line, f"child {proc.pid} exited early with {proc.poll()}"
    return line


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """A child python holding a LISTEN socket: (process, port, inode)."""
    proc = subprocess.Popen([sys.executable, "-c", LISTENER_CODE], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        port, inode = (int(x) for x in read_line(proc).split())
        yield proc, port, inode
    finally:
        stop(proc)


def test_socket_inode_maps_to_child_pid(listener: tuple[subprocess.Popen[str], int, int]) -> None:
    proc, port, inode = listener
    scan = OwnerScanner().scan()
    assert scan.inode_to_pid.get(inode) == proc.pid
    assert proc.pid in scan.live_pids
    assert os.getpid() in scan.live_pids
    # The same inode is what /proc/net/tcp reports for that port: the two halves join up.
    (sock,) = [s for s in read_proc_net("tcp") if s.local_port == port and s.state == "LISTEN"]
    assert sock.inode == inode


def test_socket_of_this_process_is_found() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        inode = os.fstat(s.fileno()).st_ino
        assert OwnerScanner().scan().inode_to_pid.get(inode) == os.getpid()
    # Closed: gone from the next scan.
    assert inode not in OwnerScanner().scan().inode_to_pid


def test_shared_socket_goes_to_lowest_pid(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", FORKING_LISTENER_CODE], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    grandchild = None
    try:
        _port, inode, grandchild = (int(x) for x in read_line(proc).split())
        assert OwnerScanner().scan().inode_to_pid.get(inode) == min(proc.pid, grandchild)
    finally:
        # Kill the grandchild first, while it is still provably ours (its parent is our child).
        if grandchild is not None:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(grandchild).ppid() == proc.pid:
                    os.kill(grandchild, signal.SIGKILL)
        stop(proc)


def test_process_info_cache_gives_name_and_start_time(listener: tuple[subprocess.Popen[str], int, int]) -> None:
    proc, _port, _inode = listener
    cache = ProcessInfoCache()
    info = cache.get(proc.pid)
    ps = psutil.Process(proc.pid)
    assert info == ProcessInfo(proc.pid, ps.name(), ps.create_time())
    assert info.name.startswith("python")
    # Cached: the very same object while the process lives.
    assert cache.get(proc.pid) is info
    assert cache.get_many([proc.pid, proc.pid, os.getpid()]).keys() == {proc.pid, os.getpid()}

    proc.kill()
    proc.wait(timeout=10)
    assert cache.get(proc.pid) is None
    assert proc.pid not in cache.get_many([proc.pid])


def test_process_info_cache_notices_a_different_process_under_a_cached_pid(
    listener: tuple[subprocess.Popen[str], int, int],
) -> None:
    # Forcing the kernel to recycle a PID is not practical in a test, so plant a stale entry: a cached start
    # (in clock ticks) that no longer matches /proc/<pid>/stat must be re-read, not returned.
    proc, _port, _inode = listener
    cache = ProcessInfoCache()
    stale = ProcessInfo(proc.pid, "old-program", 1.0)
    cache._entries[proc.pid] = ("1", stale)
    info = cache.get(proc.pid)
    assert info is not None and info is not stale
    assert info.start_time == psutil.Process(proc.pid).create_time()


def test_process_info_cache_prune() -> None:
    cache = ProcessInfoCache()
    me = os.getpid()
    assert cache.get(me) is not None
    assert cache.get(os.getppid()) is not None
    cache.prune({me})
    assert len(cache) == 1
    cache.prune(set())
    assert len(cache) == 0


def test_process_info_cache_unknown_pid() -> None:
    assert ProcessInfoCache().get(dead_pid()) is None


def dead_pid() -> int:
    """A pid that just exited (recycling it within the test is practically impossible)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    return proc.pid


def test_user_name() -> None:
    assert user_name(0) == pwd.getpwuid(0).pw_name
    assert user_name(os.geteuid()) == pwd.getpwuid(os.geteuid()).pw_name
    unused = 3_999_999_999
    with pytest.raises(KeyError):
        pwd.getpwuid(unused)
    assert user_name(unused) == str(unused)


def test_process_details_of_a_live_child(tmp_path: Path, listener: tuple[subprocess.Popen[str], int, int]) -> None:
    proc, _port, _inode = listener
    details = process_details(proc.pid)
    assert details.error == ""
    assert details.pid == proc.pid
    assert details.cmdline == [sys.executable, "-c", LISTENER_CODE]
    assert details.exe == os.path.realpath(sys.executable)
    assert details.cwd == str(tmp_path)
    assert details.user == pwd.getpwuid(os.geteuid()).pw_name
    assert details.parent_pid == os.getpid()
    assert details.start_time == psutil.Process(proc.pid).create_time()
    assert details.status in ("sleeping", "running")
    assert details.name == psutil.Process(proc.pid).name()


def test_process_details_of_an_exited_process() -> None:
    pid = dead_pid()
    details = process_details(pid)
    assert details.error == f"process {pid} has exited"
    assert (details.pid, details.cmdline, details.cwd) == (pid, [], "")


def test_process_details_of_a_zombie() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not reaped: we are the parent
            assert time.monotonic() < deadline, "child did not exit"
            time.sleep(0.01)
        details = process_details(proc.pid)
        assert "has exited" in details.error and "zombie" in details.error
        assert details.status == psutil.STATUS_ZOMBIE
    finally:
        proc.wait(timeout=10)


def test_process_details_of_invalid_pids() -> None:
    assert process_details(-5).error == "-5 is not a valid process id"
    assert process_details(0).error == "0 is not a valid process id"


# --- Running as an unprivileged user (needs root to switch to it) ---


def test_scan_as_unprivileged_user_reports_permission_denied(
    nobody_python: tuple[list[str], dict[str, str]],
) -> None:
    command, env = nobody_python
    code = textwrap.dedent(
        """
        import json, os, socket
        from netscope.collectors.processes import OwnerScanner
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        scan = OwnerScanner().scan()
        print(json.dumps({
            "denied": scan.permission_denied,
            "denied_pids": scan.denied_pids,
            "own": scan.inode_to_pid.get(os.fstat(s.fileno()).st_ino),
            "pid": os.getpid(),
        }))
        """
    )
    result = subprocess.run(
        [*command, "-c", code],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["denied"] is True
    assert 1 in out["denied_pids"]  # init belongs to root
    # Its own sockets are still found: only other users' owners are unknown.
    assert out["own"] == out["pid"]


def test_scan_as_root_sees_other_users_sockets(nobody_python: tuple[list[str], dict[str, str]]) -> None:
    command, env = nobody_python
    proc = subprocess.Popen(
        [*command, "-c", LISTENER_CODE],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env=env,
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _port, inode = (int(x) for x in read_line(proc).split())
        scan = OwnerScanner().scan()
        if proc.pid in scan.denied_pids:
            pytest.skip("root cannot read another user's /proc/<pid>/fd here (no CAP_SYS_PTRACE?)")
        assert scan.inode_to_pid.get(inode) == proc.pid
        (sock,) = [s for s in read_proc_net("tcp") if s.inode == inode]
        assert sock.uid == NOBODY
        assert user_name(sock.uid) == pwd.getpwuid(NOBODY).pw_name
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
