"""What netscope costs over a real SSH link on a busy web server, beside htop and `watch -n1 ss -tanp`.

    python benchmarks/ssh_bandwidth.py [--window 20] [--settle 8] [--keys 10]

Needs root, tmux, and Debian's nginx, sshd and htop: `apt-get update && apt-get install -y nginx-light
openssh-server htop tmux`. The script says so and stops if one is missing.

It starts, all on 127.0.0.1 and stopped on exit:
- nginx on :80 (2 workers, keep-alive, a 3-byte answer, no log),
- sshd on :2222 with a throwaway host key and client key (nothing of the machine's own ssh set-up is used),
- the load of issue 13: 300 keep-alive clients each making a request every 2 s, and 20 short connections a second
  (`Connection: close`: nginx closes first, so its ends pile up in TIME_WAIT, about 1,200 of them, no owner),
then runs each program through `ssh -tt 127.0.0.1` inside a detached tmux session of the given size, waits
`--settle` s, and counts the bytes sshd sent to the client over `--window` s (`bytes_acked` of sshd's socket,
from `ss -ti`): what would cross a real link. Then it times `--keys` presses of a key whose effect shows on screen
(netscope: `s`, the sort), from tmux send-keys until the pane changes, through the same SSH link.
Every figure is printed beside htop's from the same run, with the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SSH_PORT = 2222
HTTP_PORT = 80
KEEPALIVE_CLIENTS = 300
KEEPALIVE_EVERY = 2.0
SHORT_PER_SECOND = 20
NETSCOPE = Path(sys.executable).with_name("netscope")

NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 120;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

SSHD_CONF = """
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
AcceptEnv TERM
"""


@dataclass
class Run:
    name: str
    command: str
    size: tuple[int, int]
    loaded: bool = True
    key: str = ""  # a key whose effect shows on screen, to time through the link


@dataclass
class Result:
    run: Run
    bytes_per_second: float
    keys_ms: list[float]
    first_screen: str


def require_tools() -> None:
    missing = [tool for tool in ("nginx", "sshd", "htop", "tmux", "ss", "ssh", "ssh-keygen", "watch")
               if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        sys.exit(f"missing: {', '.join(missing)}. Install them with: apt-get update && apt-get install -y "
                 "nginx-light openssh-server openssh-client htop tmux iproute2 procps")
    if os.geteuid() != 0:
        sys.exit("run as root: nginx listens on :80 and netscope should see every owner")


def start_nginx(work: Path) -> subprocess.Popen[bytes]:
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work, port=HTTP_PORT))
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
    wait_port(HTTP_PORT, process, "nginx")
    return process


def start_sshd(work: Path) -> tuple[subprocess.Popen[bytes], Path]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "client_key")], check=True)
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    (work / "sshd_config").write_text(SSHD_CONF.format(dir=work, port=SSH_PORT))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(work / "sshd_config")], stderr=subprocess.DEVNULL)
    wait_port(SSH_PORT, process, "sshd")
    return process, work / "client_key"


def wait_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited at start (status {process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{name} did not listen on 127.0.0.1:{port} within 10 s")


LOAD = r"""
import asyncio, sys, time
PORT, CLIENTS, SHORT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[4])
EVERY, LIFETIME = float(sys.argv[3]), float(sys.argv[5])
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
async def keepalive(deadline):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    await asyncio.sleep(EVERY * (hash(id(writer)) % 1000) / 1000)
    while time.monotonic() < deadline:
        writer.write(REQUEST); await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"ok\n"), 10)
        await asyncio.sleep(EVERY)
    writer.close()
async def short():
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); await writer.drain()
    await asyncio.wait_for(reader.read(), 10); writer.close()
async def main():
    deadline = time.monotonic() + LIFETIME
    tasks = [asyncio.create_task(keepalive(deadline)) for _ in range(CLIENTS)]
    print("ready", flush=True)
    while time.monotonic() < deadline:
        for _ in range(SHORT):
            asyncio.create_task(short())
            await asyncio.sleep(1 / SHORT)
    await asyncio.wait(tasks, timeout=5)  # bounded: a stuck connection must not outlive the benchmark
asyncio.run(main())
"""


def start_load(lifetime: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", LOAD, str(HTTP_PORT), str(KEEPALIVE_CLIENTS), str(KEEPALIVE_EVERY),
         str(SHORT_PER_SECOND), str(lifetime)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        sys.exit("the load generator did not start")
    return process


def sshd_bytes_sent() -> int:
    """Bytes sshd's side of every connection on :2222 sent and had acknowledged."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{SSH_PORT} )"],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(found) for found in re.findall(r"bytes_acked:(\d+)", out))


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def measure(run: Run, key_file: Path, settle: float, window: float, presses: int) -> Result:
    width, height = run.size
    ssh = (f"ssh -tt -p {SSH_PORT} -i {key_file} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           f"-o LogLevel=ERROR root@127.0.0.1 {shlex.quote('TERM=xterm-256color ' + run.command)}")
    tmux("kill-session", "-t", "bench")
    tmux("new-session", "-d", "-s", "bench", "-x", str(width), "-y", str(height), ssh)
    time.sleep(settle)
    first_screen = tmux("capture-pane", "-p", "-t", "bench")
    start, began = sshd_bytes_sent(), time.monotonic()
    time.sleep(window)
    sent, elapsed = sshd_bytes_sent() - start, time.monotonic() - began
    keys_ms = []
    if run.key:
        for _ in range(presses):
            keys_ms.append(key_latency_ms(run.key))
            time.sleep(0.3)
    tmux("send-keys", "-t", "bench", "C-c" if "watch" in run.command else "q")
    time.sleep(0.5)
    tmux("kill-session", "-t", "bench")
    return Result(run, sent / elapsed, keys_ms, first_screen)


def key_latency_ms(key: str) -> float:
    """From send-keys to the pane showing something else, polled every 2 ms (a capture takes 1-3 ms)."""
    before = tmux("capture-pane", "-p", "-t", "bench")
    start = time.monotonic()
    tmux("send-keys", "-t", "bench", key)
    while time.monotonic() - start < 3:
        if tmux("capture-pane", "-p", "-t", "bench") != before:
            return (time.monotonic() - start) * 1000
        time.sleep(0.002)
    return float("inf")


def first_screen_facts(screen: str) -> str:
    """What the first screen showed: nginx's listener, and how many owned nginx rows."""
    lines = screen.splitlines()
    listener = any("LISTEN" in line and f":{HTTP_PORT} " in line and "nginx" in line for line in lines)
    owned = sum("ESTABLISHED" in line and "nginx" in line for line in lines)
    return f"listener {'shown' if listener else 'NOT shown'}, {owned} owned nginx connections"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=20.0, help="seconds of bytes counted per run")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds after start before counting")
    parser.add_argument("--keys", type=int, default=10, help="key presses timed per netscope run")
    args = parser.parse_args()
    require_tools()
    netscope = f"{NETSCOPE} --no-config"
    runs = [
        Run("netscope, nothing changing (no load)", netscope, (120, 40), loaded=False),
        Run("netscope, default view", netscope, (120, 40), key="s"),
        Run("netscope, default view", netscope, (80, 24), key="s"),
        Run("netscope, filtered to `:80 established`", f"{netscope} --filter ':80 established'", (120, 40),
            key="s"),
        Run("netscope --low-bandwidth", f"{netscope} --low-bandwidth", (120, 40), key="s"),
        Run("netscope --low-bandwidth", f"{netscope} --low-bandwidth", (80, 24), key="s"),
        Run("htop", "htop", (120, 40)),
        Run("htop", "htop", (80, 24)),
        Run("`watch -n1 ss -tanp`", "watch -n1 ss -tanp", (120, 40)),
        Run("`watch -n1 ss -tanp`", "watch -n1 ss -tanp", (80, 24)),
    ]
    per_run = args.settle + args.window + args.keys * 0.5 + 3
    with tempfile.TemporaryDirectory(prefix="netscope-ssh-bench-") as scratch:
        work = Path(scratch)
        nginx = start_nginx(work)
        sshd, key_file = start_sshd(work)
        load: subprocess.Popen[str] | None = None
        results: list[Result] = []
        try:
            for run in runs:
                if run.loaded and load is None:
                    load = start_load(per_run * len(runs) + 30)
                    time.sleep(10)  # the TIME_WAIT pile builds up (60 s to full; 10 s gives ~200 of it)
                results.append(measure(run, key_file, args.settle, args.window, args.keys))
                print(f"  {run.name} {run.size[0]}x{run.size[1]}: {results[-1].bytes_per_second:,.0f} B/s",
                      file=sys.stderr, flush=True)
        finally:
            tmux("kill-session", "-t", "bench")
            for process in (load, sshd, nginx):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=10)
    report(results, args)


def report(results: list[Result], args: argparse.Namespace) -> None:
    htop = {r.run.size: r.bytes_per_second for r in results if r.run.command == "htop"}
    sockets = subprocess.run(["ss", "-tanH"], capture_output=True, text=True).stdout.count("\n")
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {os.cpu_count()} CPUs, "
          f"{platform.platform()}, Python {platform.python_version()}; window {args.window:g} s after "
          f"{args.settle:g} s; {sockets} TCP sockets at the end.\n")
    print("| what ran over SSH, same load | size | KB/s | × htop (same size) | keys: median / max ms "
          "| first screen |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for result in results:
        size = result.run.size
        base = htop.get(size)
        ratio = f"{result.bytes_per_second / base:.1f}x" if base else ""
        keys = ""
        if result.keys_ms:
            keys = f"{statistics.median(result.keys_ms):.0f} / {max(result.keys_ms):.0f}"
        facts = first_screen_facts(result.first_screen) if result.run.key and size == (120, 40) else ""
        print(f"| {result.run.name} | {size[0]}x{size[1]} | {result.bytes_per_second / 1000:.2f} | {ratio} | "
              f"{keys} | {facts} |")


if __name__ == "__main__":
    main()
