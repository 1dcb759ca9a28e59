"""Hold a few loopback connections and replace some of them every second, for benchmarks of what changes cost.

    python benchmarks/churn_load.py [--count 20] [--per-second 5] [--lifetime SECONDS]

The listener is on 127.0.0.1 at the lowest free port from 1024, so its accepted sockets sort first under
netscope's default sort (local address): the changes land on the first screen, where they cost terminal output,
rather than somewhere off-screen. Clients bind to 127.0.250.x, so their own ends sort after other loads' clients.
Every 1/PER_SECOND s the oldest connection is closed (with a reset: no TIME_WAIT) and a new one opened: each
replacement is 2 sockets gone and 2 new ones, one of each on screen. Prints "ready COUNT port PORT" once all are
up, then churns until --lifetime passes (default 600 s) or it is killed.
"""

from __future__ import annotations

import argparse
import socket
import struct
import time
from collections import deque

RESET_ON_CLOSE = struct.pack("ii", 1, 0)
CLIENT_SOURCE = "127.0.250.1"


def low_listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for port in range(1024, 1124):
        try:
            listener.bind(("127.0.0.1", port))
            break
        except OSError:
            continue
    else:
        listener.bind(("127.0.0.1", 0))  # every low port taken: the changes may then be off-screen
    listener.listen(256)
    return listener


def connect(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.bind((CLIENT_SOURCE, 0))
    client.connect(listener.getsockname())
    server_end, _ = listener.accept()
    for sock in (client, server_end):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
    return client, server_end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--per-second", type=float, default=5.0)
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args()
    listener = low_listener()
    held = deque(connect(listener) for _ in range(args.count))
    print(f"ready {args.count} port {listener.getsockname()[1]}", flush=True)
    deadline = time.monotonic() + args.lifetime
    step = 1.0 / args.per_second if args.per_second > 0 else args.lifetime
    next_at = time.monotonic() + step
    try:
        while time.monotonic() < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += step  # on a grid, so a slow moment does not lower the rate
            if held:
                for sock in held.popleft():
                    sock.close()
            held.append(connect(listener))
    finally:
        for pair in held:
            for sock in pair:
                sock.close()
        listener.close()


if __name__ == "__main__":
    main()
