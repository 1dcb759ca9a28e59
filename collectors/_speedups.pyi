# Types of the compiled module (collectors/_speedups.c); collectors/speedups.py holds its pure-Python twins.
from collections.abc import Callable, Mapping
from typing import Any

from netscope.collectors.model import Socket

def read_fd_links(
    dir_fd: int, names: object, table: set[int] | frozenset[int] | None, /
) -> tuple[dict[str, int], dict[str, int], list[str], list[str]]: ...
def parse_inet_diag(
    buf: bytes | bytearray, size: int, offset: int, seq: int, family: int, proto: str, is_tcp: bool,
    state_names: tuple[str, ...], addresses: dict[bytes, str], make_address: Callable[[int, bytes], str],
    users: Mapping[int, str], first_seen: float, socket_type: type[Socket], previous: dict[Any, Socket] | None,
    seen: dict[Any, Socket], fresh: set[int], out: list[Socket], half_open: list[Socket], /,
) -> int: ...
