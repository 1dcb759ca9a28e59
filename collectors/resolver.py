"""Host and service names, looked up in the background so a slow or broken resolver never stalls the screen."""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

# Lookups queued beyond this are dropped (and retried when the row is drawn again): a screen shows ~50 rows,
# so a deep queue would only delay the names the user is looking at.
MAX_PENDING = 256


class NameResolver:
    """Caches reverse DNS and service names. `host()` never blocks: it answers from the cache or returns None
    and starts a lookup; `take_updates()` tells the UI that new names arrived and it should repaint."""

    def __init__(self, workers: int = 4, timeout_seconds: int = 2) -> None:
        # glibc's resolver has no per-call timeout; RES_OPTIONS, read when the resolver first initialises, bounds
        # each query (the default is 5 s x 2 attempts per server). A user's own RES_OPTIONS wins.
        os.environ.setdefault("RES_OPTIONS", f"timeout:{timeout_seconds} attempts:1")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="netscope-dns")
        self._hosts: dict[str, str | None] = {}  # ip -> name, or None when it has no name (numeric stays)
        self._pending: set[str] = set()
        self._services: dict[tuple[int, str], str | None] = {}
        self._lock = threading.Lock()
        self._updated = False

    def host(self, ip: str) -> str | None:
        try:
            return self._hosts[ip]
        except KeyError:
            pass
        with self._lock:
            if ip in self._pending or len(self._pending) >= MAX_PENDING:
                return None
            self._pending.add(ip)
        self._pool.submit(self._lookup, ip)
        return None

    def _lookup(self, ip: str) -> None:
        name: str | None
        if ip in ("0.0.0.0", "::"):
            name = None
        else:
            try:
                name = socket.gethostbyaddr(ip)[0]
            except (OSError, UnicodeError):
                name = None
        with self._lock:
            self._hosts[ip] = name
            self._pending.discard(ip)
            self._updated = True

    def service(self, port: int, proto: str) -> str | None:
        key = (port, "udp" if proto.startswith("udp") else "tcp")
        if key not in self._services:
            try:
                self._services[key] = socket.getservbyport(port, key[1])  # reads /etc/services: fast, local
            except (OSError, OverflowError):
                self._services[key] = None
        return self._services[key]

    def take_updates(self) -> bool:
        """True once after new names have arrived."""
        with self._lock:
            updated, self._updated = self._updated, False
        return updated

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
