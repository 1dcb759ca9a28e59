"""Real processes for the tests to watch and kill: a TCP server that holds connections, and clients.

    python tests/peers.py server [--name NAME] [--host 127.0.0.1]   prints its port, accepts and holds forever
    python tests/peers.py client PORT [--count N] [--name NAME]      connects N times, prints "ready", holds

Each process renames itself (PR_SET_NAME) so that tests can see the name netscope reads from /proc.
Both exit on their own after --lifetime seconds, so a crashed test never leaves them behind for long.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import socket
import sys
import threading
import time

PR_SET_NAME = 15


def set_process_name(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, name.encode("utf-8", "surrogateescape")[:15], 0, 0, 0)


def serve(host: str, lifetime: float) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(512)
    print(listener.getsockname()[1], flush=True)
    held: list[socket.socket] = []

    def accept_forever() -> None:
        while True:
            conn, _ = listener.accept()
            held.append(conn)  # never read, never closed: the connection stays ESTABLISHED

    threading.Thread(target=accept_forever, daemon=True).start()
    time.sleep(lifetime)


def connect(host: str, port: int, count: int, lifetime: float) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.connect((host, port))
        held.append(sock)
    print("ready", flush=True)
    time.sleep(lifetime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--name", default="")
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args()
    if args.name:
        set_process_name(args.name)
    if args.role == "server":
        serve(args.host, args.lifetime)
    else:
        connect(args.host, args.port, args.count, args.lifetime)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
