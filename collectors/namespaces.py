"""Network namespaces: listing them, resolving a `--netns` value, and entering one (as `ss -N` does).

setns(CLONE_NEWNET) moves only the calling THREAD into the namespace. Sockets (netlink included) belong to the
namespace of the thread that opens them, and /proc/thread-self/net follows the thread, while /proc/self/net
follows the process's main thread. So call `enter_namespace` in the thread that will open the sockets and read
/proc: the worker process calls it in its main thread at start, before opening any socket; SystemViews runs its
reads in one dedicated thread that entered the namespace.

sysfs is different: /sys/class/net shows the network namespace of whoever mounted that sysfs, not of the reader.
`namespace_sysfs` mounts a sysfs from inside the namespace (needs root, as setns does) for the interface details.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

DEFAULT_RUN_DIR = "/var/run/netns"  # where `ip netns add` bind-mounts named namespaces
CLONE_NEWNET = 0x40000000
MNT_DETACH = 2


@dataclass(frozen=True)
class NetNamespace:
    inode: int  # the namespace's identity: st_ino of /proc/PID/ns/net, as `lsns -t net` shows it
    name: str  # its name under /var/run/netns, or "" if it has none
    pids: int  # how many processes are in it (that we may see)
    example_pid: int | None  # the lowest such PID, None for a named namespace with no process
    example_program: str  # that process's name (comm), "" if none
    current: bool  # the namespace this process (its calling thread) is in


def _current_inode(proc_root: str) -> int | None:
    # thread-self first: after setns in this thread, "current" means the thread's namespace.
    for link in (f"{proc_root}/thread-self/ns/net", f"{proc_root}/self/ns/net"):
        try:
            return os.stat(link).st_ino
        except OSError:
            continue
    return None


def _nsfs_device(proc_root: str) -> int | None:
    try:
        return os.stat(f"{proc_root}/self/ns/net").st_dev
    except OSError:
        return None


def _comm(proc_root: str, pid: int) -> str:
    try:
        with open(f"{proc_root}/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def list_namespaces(proc_root: str = "/proc", run_dir: str = DEFAULT_RUN_DIR) -> list[NetNamespace]:
    """Every network namespace with a process in it or a name in `run_dir`, merged by inode; never raises.

    Processes we may not look at (permission) or that exit meanwhile are skipped. Ordered: the current one
    first, then named ones by name, then the rest by inode."""
    proc_root = proc_root.rstrip("/") or "/"
    members: dict[int, list[int]] = {}
    try:
        entries = os.listdir(proc_root)
    except OSError:
        entries = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            inode = os.stat(f"{proc_root}/{entry}/ns/net").st_ino
        except OSError:  # exited, or not ours to look at
            continue
        members.setdefault(inode, []).append(int(entry))

    names: dict[int, str] = {}
    nsfs = _nsfs_device(proc_root)
    try:
        named = sorted(os.listdir(run_dir))
    except OSError:
        named = []
    for name in named:
        try:
            st = os.stat(os.path.join(run_dir, name))
        except OSError:
            continue
        # A file left behind without its bind mount stats as a plain tmpfs file: only nsfs files are namespaces.
        if nsfs is not None and st.st_dev != nsfs:
            continue
        names.setdefault(st.st_ino, name)  # two names for one namespace: the first in name order

    current = _current_inode(proc_root)
    result: list[NetNamespace] = []
    for inode in members.keys() | names.keys():
        pids = sorted(members.get(inode, []))
        example = pids[0] if pids else None
        result.append(
            NetNamespace(
                inode=inode,
                name=names.get(inode, ""),
                pids=len(pids),
                example_pid=example,
                example_program=_comm(proc_root, example) if example is not None else "",
                current=inode == current,
            )
        )
    result.sort(key=lambda ns: (not ns.current, ns.name == "", ns.name, ns.inode))
    return result


def namespace_path(spec: str, run_dir: str = DEFAULT_RUN_DIR, proc_root: str = "/proc") -> str:
    """The file to enter for a user's `--netns` value: a name in `run_dir`, a PID, or a path. Raises ValueError."""
    spec = spec.strip()
    if not spec:
        raise ValueError("--netns needs a namespace name, a PID or a path")
    if "/" in spec:
        if not os.path.exists(spec):
            raise ValueError(f"no network namespace file {spec}")
        return spec
    named = os.path.join(run_dir, spec)
    if os.path.exists(named):  # a name wins over a PID: `ip netns add 42` is allowed
        return named
    if spec.isdigit():
        path = f"{proc_root.rstrip('/')}/{spec}/ns/net"
        if not os.path.exists(path):
            raise ValueError(f"no process {spec}, so no network namespace to look into")
        return path
    raise ValueError(f"no network namespace named {spec}; `ip netns list` shows the names, or give a PID")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)
    if setns is not None:  # Python 3.12+
        setns(fd, CLONE_NEWNET)
        return
    libc = _libc()
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def enter_namespace(path: str) -> None:
    """Move the CALLING THREAD into the network namespace at `path` (see the module's docstring).

    Raises OSError with a message that says what to do: EPERM means it needs root (CAP_SYS_ADMIN)."""
    try:
        # O_NONBLOCK: a FIFO given as the path must not hang netscope; setns() then refuses it (EINVAL).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot open network namespace {path}: {exc.strerror or exc}") from None
    try:
        _setns(fd)
    except OSError as exc:
        if exc.errno == errno.EPERM:
            message = f"cannot enter network namespace {path}: needs root (CAP_SYS_ADMIN)"
            raise OSError(exc.errno, message) from None
        if exc.errno == errno.EINVAL:
            raise OSError(exc.errno, f"cannot enter {path}: not a network namespace") from None
        raise OSError(exc.errno, f"cannot enter network namespace {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def namespace_sysfs() -> int:
    """A descriptor of a sysfs showing the calling thread's network namespace (call it after enter_namespace).

    sysfs takes its network namespace from the mounting thread, so the host's /sys shows the host's interfaces.
    This mounts a fresh sysfs on a temporary directory and detaches it at once: nothing stays in the mount
    table, and the returned descriptor keeps it alive; read it through /proc/self/fd/FD. Needs CAP_SYS_ADMIN;
    raises OSError. The caller closes the descriptor."""
    import tempfile  # here: with what it loads, 0.9 MiB of a worker that never mounts one (measured)

    libc = _libc()
    mountpoint = tempfile.mkdtemp(prefix="netscope-sysfs-")
    try:
        if libc.mount(b"sysfs", mountpoint.encode(), b"sysfs", 0, None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"cannot mount a sysfs for the namespace: {os.strerror(code)}")
        try:
            return os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            libc.umount2(mountpoint.encode(), MNT_DETACH)  # the open descriptor keeps it usable
    finally:
        os.rmdir(mountpoint)
