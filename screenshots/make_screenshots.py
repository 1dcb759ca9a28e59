"""Regenerate the README's screenshots from the real app on this machine's real sockets.

    .venv/bin/python screenshots/make_screenshots.py [NETNS]

NETNS (optional, root): a network namespace whose connection tracking table the NAT view (nat.svg) shows, e.g. a
router namespace that masquerades (tests/test_conntrack.py builds one); without it, this machine's own table.

It starts a loopback server (a real process, named so the screenshot reads well), runs netscope headless at
160x45, starts clients once the first table is up (so they show as new rows, highlighted), and saves SVGs of the
main screens into this folder. Run it on a quiet machine: whatever else has sockets shows too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support import Peer, start_peer, stop_peer, wait_for  # noqa: E402

from netscope.app.netscope_app import NetscopeApp  # noqa: E402
from netscope.app.screens.details import DetailsScreen  # noqa: E402
from netscope.collectors.namespaces import namespace_path  # noqa: E402
from netscope.collectors.session.filters import parse_filter  # noqa: E402
from netscope.collectors.view_data import SystemViews  # noqa: E402

SIZE = (160, 45)

# A download that goes on for the whole session, about 2 MB/s: the tcp_info columns have a rate to show.
DOWNLOAD = textwrap.dedent("""
    import socket, threading, time
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    def drain():
        while client.recv(1 << 16):
            pass
    threading.Thread(target=drain, daemon=True).start()
    chunk = b"x" * (64 << 10)
    print("ready", flush=True)
    for _ in range(4000):
        conn.sendall(chunk)
        time.sleep(0.03)
""")


# A unix socket service for the `u` screenshot: a named listener with three clients, a datagram socket, an
# abstract one, each process named as a real service would be.
UNIX_SERVICE = textwrap.dedent("""
    import ctypes, os, socket, sys, tempfile, time
    def name(text): ctypes.CDLL(None).prctl(15, text.encode(), 0, 0, 0)
    directory = tempfile.mkdtemp(prefix="netscope-demo-")
    path = os.path.join(directory, "api.sock")
    listener = socket.socket(socket.AF_UNIX); listener.bind(path); listener.listen(16)
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); log.bind(os.path.join(directory, "log.sock"))
    metrics = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); metrics.bind("\\0demo-metrics")
    metrics.listen(4)
    for index in range(3):
        if os.fork() == 0:
            name(f"api-client-{index}")
            client = socket.socket(socket.AF_UNIX); client.connect(path)
            time.sleep(120); sys.exit(0)
    name("api-server")
    held = [listener.accept()[0] for _ in range(3)]
    print("ready", flush=True)
    time.sleep(120)
""")


async def shoot(server: Peer, peers: list[Peer]) -> None:
    app = NetscopeApp(interval=1.0, save_config=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.refresh_count >= 1, timeout=10)
        for index in range(3):
            peers.append(start_peer("client", str(server.port), "--count", str(2 + index), "--name",
                                    f"load-client-{index}"))
        await wait_for(pilot, lambda: app.table.filtered_counts["ESTABLISHED"] >= 18, timeout=10)
        await pilot.pause(0.2)
        app.save_screenshot("connections.svg", str(HERE))
        await pilot.press("slash", *f":{server.port} established", "enter")
        await wait_for(pilot, lambda: app.table.row_count > 0)
        await pilot.pause(0.3)
        app.save_screenshot("filtered.svg", str(HERE))
        await pilot.press("escape")
        app.connections.apply_filter(parse_filter(f"lport:{server.port} listen"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        await pilot.pause(0.3)
        app.save_screenshot("details.svg", str(HERE))
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        app.save_screenshot("help.svg", str(HERE))
        await pilot.press("escape")
        for key, name in (("2", "interfaces"), ("3", "routes"), ("4", "statistics"), ("5", "multicast")):
            await pilot.press(key)
            await pilot.pause(1.2)
            # New connections while the view samples, so that counters and rates have something to show.
            peers.append(start_peer("client", str(server.port), "--count", "40", "--name", "late-client"))
            await pilot.pause(1.2)
            app.save_screenshot(f"{name}.svg", str(HERE))
        app.connections.apply_filter(parse_filter(""))  # the details' filter: the top view counts every socket
        await pilot.press("6")
        await pilot.pause(1.5)
        app.save_screenshot("top.svg", str(HERE))
        await pilot.press("1")
        app.connections.apply_filter(parse_filter("established proc:python"))
        await pilot.press("c")
        await pilot.pause(0.3)
        chooser = app.screen.query_one("SelectionList")
        for key in ("sent", "received", "send_rate", "recv_rate", "rtt", "cwnd", "retrans"):
            chooser.select(key)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause(3.5)
        app.save_screenshot("tcp-columns.svg", str(HERE))
        app.connections.show_metric_columns([])
        app.connections.apply_filter(parse_filter("proc:api"))
        await pilot.press("u")
        await wait_for(pilot, lambda: app.table.row_count > 0)
        await pilot.pause(1.5)
        app.save_screenshot("unix.svg", str(HERE))


async def shoot_nat(netns: str) -> None:
    views = SystemViews(netns=namespace_path(netns)) if netns else None
    app = NetscopeApp(interval=1.0, save_config=False, views=views)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        await wait_for(pilot, lambda: app.nat_view.snapshot is not None)
        await pilot.pause(1.5)
        app.save_screenshot("nat.svg", str(HERE))


def main() -> None:
    peers: list[Peer] = []
    download = subprocess.Popen([sys.executable, "-c", DOWNLOAD], stdout=subprocess.PIPE, text=True)
    unix_service = subprocess.Popen([sys.executable, "-c", UNIX_SERVICE], stdout=subprocess.PIPE, text=True,
                                    start_new_session=True)  # fmt: skip
    try:
        assert download.stdout is not None and download.stdout.readline().strip() == "ready"
        assert unix_service.stdout is not None and unix_service.stdout.readline().strip() == "ready"
        server = start_peer("server", "--name", "web-backend")
        peers.append(server)
        asyncio.run(shoot(server, peers))
        asyncio.run(shoot_nat(sys.argv[1] if len(sys.argv) > 1 else ""))
    finally:
        download.kill()
        download.wait()
        os.killpg(unix_service.pid, signal.SIGKILL)  # the service and its clients
        unix_service.wait()
        for peer in peers:
            stop_peer(peer)
    print(f"wrote {', '.join(sorted(path.name for path in HERE.glob('*.svg')))} in {HERE}")


if __name__ == "__main__":
    main()
