"""Who owns a socket, for tables read once (unix, raw, printed): one /proc/*/fd scan for just their inodes, and
what to say when some processes' files cannot be read. The live collector (connections.py) keeps its own
incremental scan and says the same words."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from netscope.collectors.processes import OwnerScanner, ProcessInfoCache

NOT_ROOT_WARNING = (
    "Not running as root: the owners (PID/Program) of other users' sockets show as '-'. "
    "Run netscope as root (sudo netscope) to see every owner."
)


def owners_warning(denied_pids: list[int]) -> str:
    """What to tell the user when some processes' sockets could not be attributed."""
    if os.geteuid() != 0:
        return NOT_ROOT_WARNING
    shown = ", ".join(str(pid) for pid in denied_pids[:5]) + (" ..." if len(denied_pids) > 5 else "")
    return (
        f"Even as root, the open files of {len(denied_pids)} process(es) could not be read (PID {shown}: "
        "protected, or netscope lacks CAP_SYS_PTRACE in a container); their sockets show '-' as owner."
    )


class Ownable(Protocol):
    inode: int
    pid: int | None
    program: str
    container: str


def attach_owners(sockets: Iterable[Ownable]) -> list[str]:
    """Owners for a table read once (unix and raw sockets, printed): one /proc/*/fd scan for just these inodes.
    The warnings to tell when some processes' files could not be read."""
    sockets = list(sockets)
    scan = OwnerScanner().scan({sock.inode for sock in sockets if sock.inode})
    infos = ProcessInfoCache().get_many(set(scan.inode_to_pid.values()))
    for sock in sockets:
        pid = scan.inode_to_pid.get(sock.inode) if sock.inode else None
        info = infos.get(pid) if pid is not None else None
        if info is not None:
            sock.pid, sock.program, sock.container = info.pid, info.name, info.container
    return [owners_warning(scan.denied_pids)] if scan.permission_denied else []
