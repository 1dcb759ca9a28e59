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
from support import NOBODY, run_as_nobody, spawn_on_pid

from netscope.collectors.processes import (
    OwnerScanner,
    ProcessInfo,
    ProcessInfoCache,
    process_details,
    user_name,
)
from netscope.collectors.procnet import read_proc_net

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


@contextlib.contextmanager
def forking_listener(tmp_path: Path, code: str = FORKING_LISTENER_CODE) -> Iterator[tuple[int, int, int]]:
    """Run FORKING_LISTENER_CODE (or a variant of it): (its pid, the listener's inode, the forked child's pid)."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    grandchild = None
    try:
        _port, inode, grandchild = (int(x) for x in read_line(proc).split())
        yield proc.pid, inode, grandchild
    finally:
        # Kill the grandchild first, while it is still provably ours (its parent is our child).
        if grandchild is not None:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(grandchild).ppid() == proc.pid:
                    os.kill(grandchild, signal.SIGKILL)
        stop(proc)


def test_shared_socket_goes_to_lowest_pid(tmp_path: Path) -> None:
    with forking_listener(tmp_path) as (pid, inode, grandchild):
        assert OwnerScanner().scan().inode_to_pid.get(inode) == min(pid, grandchild)


def test_processes_holding_the_same_fd_numbers_share_one_name_for_each(tmp_path: Path) -> None:
    """The scanner keeps each fd's name between scans; forked workers hold the same numbers, and a name is kept
    once for all of them (at 250,000 connections in 50 processes that was 26 MB of names)."""
    # Fds past 9: a one-character name is one of CPython's cached strings anyway.
    code = FORKING_LISTENER_CODE.replace("s.listen()", "s.listen()\nkept = [socket.socket() for _ in range(20)]")
    with forking_listener(tmp_path, code) as (pid, _inode, grandchild):
        scanner = OwnerScanner()
        scanner.scan()
        parent, child = scanner._processes[pid], scanner._processes[grandchild]

    def names(entry: object) -> dict[str, str]:
        held = [*entry.inet, *entry.other, *entry.files, *entry.denied]  # type: ignore[attr-defined]
        return {name: name for name in held}

    in_parent, in_child = names(parent), names(child)
    common = in_parent.keys() & in_child.keys()
    assert len([name for name in common if len(name) > 1]) >= 10
    assert all(in_parent[name] is in_child[name] for name in common)


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


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="making a PID be reused needs root (ns_last_pid)")
def test_process_info_cache_notices_a_different_process_under_a_cached_pid() -> None:
    # A real recycled PID (ns_last_pid): the cached entry of the process that exited must be re-read, not returned.
    first = subprocess.Popen(["sleep", "60"])
    cache = ProcessInfoCache()
    stale = cache.get(first.pid)
    assert stale is not None and stale.name == "sleep"
    first.kill()
    first.wait(timeout=10)
    second = spawn_on_pid(first.pid, [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = cache.get(second.pid)
        assert info is not None and info is not stale
        assert info.start_time == psutil.Process(second.pid).create_time()
    finally:
        second.kill()
        second.wait(timeout=10)


def test_process_info_cache_sees_the_new_name_after_exec() -> None:
    # exec keeps the pid and the start time; only the name tells the cache that the program changed.
    child = subprocess.Popen(
        [sys.executable, "-c", "import os, sys; sys.stdin.readline(); os.execv('/bin/sleep', ['sleep', '30'])"],
        stdin=subprocess.PIPE, text=True,
    )
    try:
        cache = ProcessInfoCache()
        before = cache.get(child.pid)
        assert before is not None and before.name.startswith("python")
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        deadline = time.monotonic() + 10
        while psutil.Process(child.pid).name() != "sleep":
            assert time.monotonic() < deadline, "the child never exec'd"
            time.sleep(0.02)
        after = cache.get(child.pid)
        assert after is not None and after.name == "sleep" and after.start_time == before.start_time
    finally:
        child.kill()
        child.wait(timeout=10)


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
    result = run_as_nobody(command, env, code)
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


# --- The incremental owner map: scan(socket_inodes) must stay equal to a full scan as fds come and go ---

# A child that opens and closes what it is told, one command a line, and answers with fd numbers and inodes:
#   listen            -> "FD INODE"  a TCP listener on 127.0.0.1 (close-on-exec, as Python makes every fd)
#   bind              -> "FD INODE"  a TCP socket bound to 127.0.0.1 but not listening: in no socket table yet
#   listen_on FD      -> "ok"        listen() on that one: now it is in the table
#   keep FD           -> "ok"        make FD survive exec
#   file              -> "FD"        /dev/null
#   close FD          -> "ok"
#   fork              -> "PID"       a grandchild that holds every fd and sleeps
#   pair              -> "A B"       a unix socketpair
#   send A FD         -> "ok"        FD over A in an SCM_RIGHTS message that nobody receives: in flight
#   exec              -> "PID"       exec this same program again (same pid, new image, close-on-exec fds gone)
CHURN_CODE = textwrap.dedent(
    """
    import os, socket, sys, time
    print(os.getpid(), flush=True)
    held = {}
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "listen":
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            held[s.fileno()] = s
            print(s.fileno(), os.fstat(s.fileno()).st_ino, flush=True)
        elif cmd == "bind":
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held[s.fileno()] = s
            print(s.fileno(), os.fstat(s.fileno()).st_ino, flush=True)
        elif cmd == "listen_on":
            held[int(args[0])].listen()
            print("ok", flush=True)
        elif cmd == "keep":
            os.set_inheritable(int(args[0]), True)
            print("ok", flush=True)
        elif cmd == "file":
            print(os.open("/dev/null", os.O_RDONLY), flush=True)
        elif cmd == "close":
            fd = int(args[0])
            if fd in held:
                held.pop(fd).close()
            else:
                os.close(fd)
            print("ok", flush=True)
        elif cmd == "fork":
            child = os.fork()
            if child == 0:
                time.sleep(60)
                os._exit(0)
            print(child, flush=True)
        elif cmd == "pair":
            a, b = socket.socketpair()
            held[a.fileno()], held[b.fileno()] = a, b
            print(a.fileno(), b.fileno(), flush=True)
        elif cmd == "send":
            socket.send_fds(held[int(args[0])], [b"x"], [int(args[1])])
            print("ok", flush=True)
        elif cmd == "exec":
            sys.stdout.flush()
            os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]] + sys.argv[1:])
    """
)


class Churner:
    """A CHURN_CODE child and the grandchildren it forked."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHURN_CODE, CHURN_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=cwd,
        )
        self.pid = int(read_line(self.proc))
        self.grandchildren: list[int] = []

    def ask(self, command: str) -> list[int]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = read_line(self.proc).split()
        return [] if answer == ["ok"] else [int(x) for x in answer]

    def close(self) -> None:
        for pid in self.grandchildren:  # forked by our own child: still provably ours while it lives
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).ppid() == self.proc.pid:
                    os.kill(pid, signal.SIGKILL)
        stop(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def churner(tmp_path: Path) -> Iterator[Churner]:
    child = Churner(tmp_path)
    try:
        yield child
    finally:
        child.close()


def socket_table() -> set[int]:
    """The inodes of every TCP/UDP socket now, as the collector passes them to scan()."""
    from netscope.collectors.procnet import read_all_sockets

    return {sock.inode for sock in read_all_sockets()[0]}


def incremental_scan(scanner: OwnerScanner, *watched: int) -> dict[int, int]:
    """One incremental scan, checked against a full scan made right after it: for the `watched` inodes exactly,
    for every other table inode up to the races other processes on this machine cause (so retried a few times).
    Returns the incremental map."""
    for _attempt in range(5):
        table = socket_table()
        scan = scanner.scan(table)
        assert set(scan.inode_to_pid) <= table
        full = {inode: pid for inode, pid in OwnerScanner().scan().inode_to_pid.items() if inode in table}
        mine = {inode: scan.inode_to_pid.get(inode) for inode in watched}
        assert mine == {inode: full.get(inode) for inode in watched}
        if scan.inode_to_pid == full:
            return scan.inode_to_pid
    raise AssertionError("the incremental map never matched a full scan")


def test_incremental_scan_reads_only_new_fds(churner: Churner) -> None:
    scanner = OwnerScanner()
    first = scanner.scan(socket_table())
    assert first.full and first.links_read > 0
    _fd, inode = churner.ask("listen")
    second = scanner.scan(socket_table())
    assert not second.full
    assert second.inode_to_pid.get(inode) == churner.pid
    # Only what changed was read: the new fd, plus whatever else moved on this machine meanwhile.
    assert second.links_read < first.links_read / 2


def test_fd_number_reused_for_another_socket(churner: Churner) -> None:
    scanner = OwnerScanner()
    fd, old = churner.ask("listen")
    assert incremental_scan(scanner, old)[old] == churner.pid
    churner.ask(f"close {fd}")
    new_fd, new = churner.ask("listen")
    assert new_fd == fd and new != old  # the same number, a different socket
    owners = incremental_scan(scanner, old, new)
    assert owners[new] == churner.pid and old not in owners


def test_fd_number_of_a_file_reused_for_a_socket(churner: Churner) -> None:
    scanner = OwnerScanner()
    churner.ask("listen")
    (fd,) = churner.ask("file")
    incremental_scan(scanner)
    churner.ask(f"close {fd}")
    new_fd, inode = churner.ask("listen")
    assert new_fd == fd
    assert incremental_scan(scanner, inode)[inode] == churner.pid


def test_same_fd_count_but_a_socket_at_another_number(churner: Churner) -> None:
    # The scanner skips listing a process whose fd count is unchanged and whose sockets are all still in the
    # table; here the count is unchanged but the numbers are not, and the new socket must still be found at once.
    scanner = OwnerScanner()
    (low,) = churner.ask("file")
    churner.ask("file")
    (high,) = churner.ask("file")
    churner.ask(f"close {low}")  # a hole below the others
    incremental_scan(scanner)
    churner.ask(f"close {high}")
    fd, inode = churner.ask("listen")
    assert fd == low  # the lowest free number: as many fds as before, not the same numbers
    assert incremental_scan(scanner, inode)[inode] == churner.pid


@pytest.mark.parametrize("says_open", [False, True])
def test_the_callers_check_decides_whether_skipped_processes_are_listed(churner: Churner, says_open: bool) -> None:
    # As above, the socket at another number is found only by listing the processes skipped as unchanged. The
    # caller is asked first whether it is still open: a connection closed since the table was read (the usual
    # case on a busy server) spares listing every process; one still open is found at once as before.
    scanner = OwnerScanner()
    (low,) = churner.ask("file")
    churner.ask("file")
    (high,) = churner.ask("file")
    churner.ask(f"close {low}")
    incremental_scan(scanner)
    churner.ask(f"close {high}")
    fd, inode = churner.ask("listen")
    assert fd == low
    asked: list[set[int]] = []

    def still_open(inodes: set[int]) -> set[int]:
        asked.append(inodes)
        return inodes if says_open else set()

    scan = scanner.scan(socket_table(), still_open)
    assert any(inode in inodes for inodes in asked)
    assert scan.inode_to_pid.get(inode) == (churner.pid if says_open else None)


def test_socket_shared_with_a_forked_child_moves_to_it(churner: Churner) -> None:
    scanner = OwnerScanner()
    fd, inode = churner.ask("listen")
    (grandchild,) = churner.ask("fork")
    churner.grandchildren.append(grandchild)
    assert incremental_scan(scanner, inode)[inode] == min(churner.pid, grandchild)
    # The parent lets go and reuses the number for a file: the socket is still in the table (the grandchild
    # holds it), so only the sharing rule can notice.
    churner.ask(f"close {fd}")
    (file_fd,) = churner.ask("file")
    assert file_fd == fd
    assert incremental_scan(scanner, inode)[inode] == grandchild


def test_socket_shared_before_it_entered_the_table(churner: Churner) -> None:
    # Read while bound but not listening (so cached as "another socket"), held by parent and grandchild; then the
    # parent makes it listen and lets go of its number. Promoting the parent's cached link would be wrong.
    scanner = OwnerScanner()
    fd, inode = churner.ask("bind")
    (grandchild,) = churner.ask("fork")
    churner.grandchildren.append(grandchild)
    assert inode not in socket_table()
    incremental_scan(scanner)
    churner.ask(f"listen_on {fd}")
    churner.ask(f"close {fd}")
    (file_fd,) = churner.ask("file")
    assert file_fd == fd
    assert incremental_scan(scanner, inode)[inode] == grandchild


def test_closed_fds_are_forgotten(churner: Churner) -> None:
    scanner = OwnerScanner()
    closing = [churner.ask("file")[0] for _ in range(3)] + churner.ask("pair") + churner.ask("listen")[:1]
    incremental_scan(scanner)
    for fd in closing:
        churner.ask(f"close {fd}")
    incremental_scan(scanner)
    assert scanner.remembered_fds(churner.pid) == len(os.listdir(f"/proc/{churner.pid}/fd"))


def test_exec_closes_close_on_exec_sockets_and_keeps_the_others(churner: Churner) -> None:
    scanner = OwnerScanner()
    kept_fd, kept = churner.ask("listen")
    churner.ask(f"keep {kept_fd}")
    closed_fd, closed = churner.ask("listen")
    owners = incremental_scan(scanner, kept, closed)
    assert owners[kept] == owners[closed] == churner.pid
    (pid,) = churner.ask("exec")
    assert pid == churner.pid  # same process, new program
    new_fd, new = churner.ask("listen")
    assert new_fd == closed_fd  # the number the exec freed
    owners = incremental_scan(scanner, kept, closed, new)
    assert owners[kept] == owners[new] == churner.pid and closed not in owners


def test_socket_in_flight_while_its_number_is_reused(churner: Churner) -> None:
    # Nothing visible holds the old socket while it is in flight, so neither the inode nor the sharing rule sees
    # that fd 'fd' moved on; the new socket has no owner on the first scan, and a read-everything pass finds it.
    scanner = OwnerScanner(full_rescan_every=1000, min_scans_between_full=3)
    sender, _receiver = churner.ask("pair")
    fd, old = churner.ask("listen")
    scanner.scan(socket_table())
    churner.ask(f"send {sender} {fd}")
    churner.ask(f"close {fd}")
    new_fd, new = churner.ask("listen")
    assert new_fd == fd
    found_after = 0
    for scans in range(1, 5):
        table = socket_table()
        assert old in table  # alive, in flight
        scan = scanner.scan(table)
        if scan.inode_to_pid.get(new) == churner.pid and old not in scan.inode_to_pid:
            found_after = scans
            break
    assert 0 < found_after <= 3, "the reused fd number was not read again in time"
    incremental_scan(scanner, old, new)


def test_a_reused_pid_is_read_afresh(churner: Churner) -> None:
    # The kernel cannot be made to recycle a pid in a test, so plant what the scanner would have cached about an
    # earlier process under this pid: another /proc inode, another starttime, and another socket at fd `fd`.
    import socket as socket_module

    scanner = OwnerScanner()
    fd, inode = churner.ask("listen")
    with socket_module.create_server(("127.0.0.1", 0)) as mine:
        mine_inode = os.fstat(mine.fileno()).st_ino
        incremental_scan(scanner, inode, mine_inode)
        entry = scanner._processes[churner.pid]
        # A new /proc inode alone (evicted and made anew) with the same starttime: the same process, cache kept.
        entry.ino -= 1
        incremental_scan(scanner, inode, mine_inode)
        assert scanner._processes[churner.pid] is entry
        # Another starttime too: another process, whose cached links must not be trusted.
        entry.ino -= 1
        entry.start = b"1"
        entry.inet[str(fd)] = mine_inode
        owners = incremental_scan(scanner, inode, mine_inode)
        assert owners[inode] == churner.pid and owners[mine_inode] == os.getpid()
        assert scanner._processes[churner.pid] is not entry


def test_exited_process_is_forgotten(churner: Churner) -> None:
    scanner = OwnerScanner()
    _fd, inode = churner.ask("listen")
    assert incremental_scan(scanner, inode)[inode] == churner.pid
    churner.proc.kill()
    churner.proc.wait(timeout=10)
    scan = scanner.scan(socket_table())
    assert inode not in scan.inode_to_pid and churner.pid not in scan.live_pids
    assert scanner.remembered_fds(churner.pid) is None


def test_a_first_scan_read_before_the_table_was_known_files_its_links_against_it(
    churner: Churner, tmp_path: Path
) -> None:
    """prefetch() reads every link with no table (the collector does it while the table is dumped); the scan
    that follows files them against its table without reading them again, and the incremental scans after it
    behave as after any first scan: a socket opened after the prefetch is found, one in a new process too."""
    _fd, before = churner.ask("listen")
    scanner = OwnerScanner()
    assert scanner.first
    scanner.prefetch()
    assert not scanner.first
    _fd, between = churner.ask("listen")  # opened while "the table was dumped"
    first = scanner.scan(socket_table())
    assert first.full and first.links_read > 0
    assert first.inode_to_pid.get(before) == churner.pid
    incremental_scan(scanner, before, between)
    _fd, after = churner.ask("listen")
    other = Churner(tmp_path)
    try:
        _fd, elsewhere = other.ask("listen")
        assert incremental_scan(scanner, before, between, after, elsewhere)[elsewhere] == other.pid
    finally:
        other.close()
