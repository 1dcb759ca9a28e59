"""Which container or service a process runs in, from its cgroup (/proc/PID/cgroup), in the words people use:
`docker:3f2a9c1b7d4e`, `k8s:…`, `podman:…`, `lxc:web1`, `nginx.service`, `session-3.scope`. "" is the host.

Only the unified (cgroup v2) line and the v1 `name=systemd` line are read: every container runtime and systemd put
a process there, whereas a v1 controller hierarchy alone (memory, cpu) is often a resource group of the host's own
(a VM agent's memory cgroup, say) and would label every process on the machine.
"""

from __future__ import annotations

import re

# Runtime scope or directory names that carry a container id, and how the id is shown.
_RUNTIMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^docker-([0-9a-f]{12,})\.scope$"), "docker"),
    (re.compile(r"^cri-containerd-([0-9a-f]{12,})\.scope$"), "containerd"),
    (re.compile(r"^crio-([0-9a-f]{12,})\.scope$"), "cri-o"),
    (re.compile(r"^libpod-([0-9a-f]{12,})\.scope$"), "podman"),
)
_HEX_ID = re.compile(r"^[0-9a-f]{64}$")
SHORT_ID = 12  # as `docker ps` shows ids


def cgroup_path(cgroup_text: str) -> str:
    """The path that names the process's group: the v2 line's, else the v1 name=systemd line's; "/" if neither."""
    systemd = ""
    for line in cgroup_text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "" and path not in ("", "/"):
            return path
        if controllers == "name=systemd":
            systemd = path
    return systemd or "/"


def container_name(cgroup_text: str) -> str:
    """The container or service of a process whose /proc/PID/cgroup reads `cgroup_text`; "" for the host."""
    path = cgroup_path(cgroup_text)
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        return ""
    kubernetes = any(segment.startswith("kubepods") for segment in segments)
    for segment in reversed(segments):
        for pattern, runtime in _RUNTIMES:
            match = pattern.match(segment)
            if match:
                return f"{'k8s' if kubernetes else runtime}:{match.group(1)[:SHORT_ID]}"
        if _HEX_ID.match(segment):  # cgroupfs drivers: /docker/<id>, /kubepods/burstable/pod…/<id>
            return f"{'k8s' if kubernetes else segments[0]}:{segment[:SHORT_ID]}"
    if segments[0] == "lxc" and len(segments) > 1:
        return f"lxc:{segments[1]}"
    if segments[0].startswith("lxc.payload."):
        return f"lxc:{segments[0].removeprefix('lxc.payload.')}"
    # systemd: the service or scope the process belongs to (init.scope is systemd itself: the host)
    last = segments[-1]
    return "" if last == "init.scope" else last


def _read_cgroup(pid: int, proc_root: str) -> str:
    try:
        with open(f"{proc_root}/{pid}/cgroup", encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:  # gone, or not readable
        return ""


def read_container(pid: int, proc_root: str = "/proc") -> str:
    """`container_name` of a live process; "" if it has gone or cannot be read."""
    return container_name(_read_cgroup(pid, proc_root))


def read_cgroup_path(pid: int, proc_root: str = "/proc") -> str:
    """`cgroup_path` of a live process; "" if it has gone or cannot be read."""
    text = _read_cgroup(pid, proc_root)
    return cgroup_path(text) if text else ""
