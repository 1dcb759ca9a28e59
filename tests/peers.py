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
import struct
import sys
import threading
import time
from collections.abc import Callable

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
    parser.add_argument("role", choices=("server", "client", *EXTRA_ROLES))
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--name", default="")
    parser.add_argument("--lifetime", type=float, default=300.0)
    _extra_options(parser)
    args = parser.parse_args()
    if args.name:
        set_process_name(args.name)
    if args.role in EXTRA_ROLES:
        EXTRA_ROLES[args.role](args)
    elif args.role == "server":
        serve(args.host, args.lifetime)
    else:
        connect(args.host, args.port, args.count, args.lifetime)
    os._exit(0)


# --- more roles, added for the insights and alerts tests --------------------------------------------------------
#
#   python tests/peers.py bound-client PORT --host H --bind SRC --count N
#       connects N times from address SRC, prints "ready", then obeys lines on stdin: "close K" closes K of its
#       connections (FIN), "reset K" aborts K (RST, so neither end lingers in the tables); answers "ok REMAINING".
#       It exits when stdin closes.
#   python tests/peers.py stuck-listener --host H --backlog B
#       prints its port, listens with backlog B, never accepts
#   python tests/peers.py server-closes-listener
#       prints its port, listens, and closes the listener on "close" from stdin while it keeps running


def bound_client(args: argparse.Namespace) -> None:
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    held: list[socket.socket] = []
    for _ in range(args.count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((args.bind, 0))
        sock.connect((args.host, args.port))
        held.append(sock)
    print("ready", flush=True)
    deadline = time.monotonic() + args.lifetime
    for line in sys.stdin:
        command, _, number = line.strip().partition(" ")
        for _ in range(min(int(number or 1), len(held))):
            sock = held.pop()
            if command == "reset":
                # Linger on with a zero timeout: close() sends RST and both ends leave the tables at once.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        print(f"ok {len(held)}", flush=True)
        if time.monotonic() > deadline:
            break
    # stdin closed: the test is over (or died), so go rather than wait for the lifetime.


def stuck_listener(args: argparse.Namespace) -> None:
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((args.host, 0))
    listener.listen(args.backlog)  # and never accept(): the accept queue fills, then the kernel drops SYNs
    print(listener.getsockname()[1], flush=True)
    time.sleep(args.lifetime)


def server_closes_listener(args: argparse.Namespace) -> None:
    """Prints its port, listens; on "close" from stdin closes the listener, answers "closed", and keeps running."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((args.host, 0))
    listener.listen(1)
    print(listener.getsockname()[1], flush=True)
    for line in sys.stdin:
        if line.strip() == "close":
            listener.close()
            print("closed", flush=True)
    # stdin closed: the test is over


def _extra_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default="127.0.0.1")  # bound-client: the source address
    parser.add_argument("--backlog", type=int, default=1)  # stuck-listener: listen()'s backlog


EXTRA_ROLES: dict[str, Callable[[argparse.Namespace], None]] = {
    "bound-client": bound_client,
    "stuck-listener": stuck_listener,
    "server-closes-listener": server_closes_listener,
}

if __name__ == "__main__":
    sys.exit(main())
