# Types of the compiled module (collectors/_speedups.c); collectors/speedups.py holds its pure-Python twins.
def read_fd_links(
    dir_fd: int, names: object, table: set[int] | frozenset[int] | None, /
) -> tuple[dict[str, int], dict[str, int], list[str], list[str]]: ...
