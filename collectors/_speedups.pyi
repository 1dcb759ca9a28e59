# Types of the compiled module (collectors/_speedups.c); collectors/speedups.py holds its pure-Python twins.
from collections.abc import Callable, Mapping
from typing import Any

from netscope.collectors.model import Socket

def read_fd_links(
    dir_fd: int, names: object, table: set[int] | frozenset[int] | None, /
) -> tuple[dict[str, int], dict[str, int], list[str], list[str]]: ...
def parse_inet_diag(
    buf: bytes | bytearray, size: int, offset: int, seq: int, msg_type: int, family: int, proto4: str, proto6: str,
    is_tcp: bool, state_names: tuple[str, ...], ports: tuple[int, ...], addresses: dict[bytes, str],
    make_address: Callable[[int, bytes], str],
    users: Mapping[int, str], first_seen: float, socket_type: type[Socket], previous: dict[Any, Socket] | None,
    seen: dict[Any, Socket], fresh: list[Socket], out: list[Socket], half_open: list[Socket],
    shared_by_uid: dict[int, tuple[Any, ...]], /,
) -> int: ...
def attach_owners(
    sockets: list[Socket], pid_of: dict[int, int], owner_of: dict[int, tuple[int | None, str, str, float]],
    no_owner: tuple[int | None, str, str, float], fresh: set[int] | None,
    replace: Callable[[Socket, tuple[int | None, str, str, float]], Socket], /,
) -> dict[tuple[str, str, int, str, int, int], Socket] | None: ...
def diff_keys(
    old: dict[Any, Socket], new: dict[Any, Socket], /
) -> tuple[list[Socket], list[Socket], list[Socket]]: ...
def fills_in_place(socket_type: type, /) -> bool: ...

class TupleField:
    index: int
    def __init__(self, owner: type, slot: str, index: int, writable: bool = False) -> None: ...
    def __get__(self, obj: object, owner: type | None = None) -> Any: ...
    def __set__(self, obj: object, value: Any) -> None: ...

class CounterName:
    def __init__(self, owner: type) -> None: ...
    def __get__(self, obj: object, owner: type | None = None) -> Any: ...
