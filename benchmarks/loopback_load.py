"""Hold N established TCP connections on loopback, for benchmarks.

    python benchmarks/loopback_load.py N [--lifetime SECONDS]

Both ends live in this one process. Connections are spread over several listening ports and 127.0.0.x source
addresses so that ephemeral ports never run out. Prints "ready N" when all are up, then holds them until
--lifetime passes (default 120 s) or it is killed, and closes everything on the way out.
"""

from __future__ import annotations

import argparse
import resource
import socket
import struct
import time

# Close with a reset, not a FIN: killed or finished, the load leaves no TIME_WAIT pile to skew the next run.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)

CONNECTIONS_PER_SOURCE = 20_000


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:  # root may raise the hard limit too (up to fs.nr_open)
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(needed, hard)))
    except (ValueError, OSError):
        if hard < needed:
            raise SystemExit(
                f"need {needed} open files but the hard limit is {hard}: use fewer connections per process"
            ) from None
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("--lifetime", type=float, default=120.0)
    parser.add_argument("--listeners", type=int, default=4)
    parser.add_argument("--source-net", type=int, default=1, help="clients bind to 127.0.NET.x")
    args = parser.parse_args()
    raise_fd_limit(2 * args.count + args.listeners + 64)
    listeners = []
    for _ in range(args.listeners):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4096)
        listeners.append(listener)
    held: list[socket.socket] = []
    deadline = time.monotonic() + args.lifetime
    for index in range(args.count):
        listener = listeners[index % len(listeners)]
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.bind((f"127.0.{args.source_net}.{1 + index // CONNECTIONS_PER_SOURCE}", 0))
        client.connect(listener.getsockname())
        server_end, _ = listener.accept()
        for sock in (client, server_end):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        held += (client, server_end)
    print(f"ready {args.count}", flush=True)
    try:
        time.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        for sock in held + listeners:
            sock.close()


if __name__ == "__main__":
    main()
