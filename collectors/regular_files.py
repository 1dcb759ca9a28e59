"""Opening the files a user names (recordings, the config file, exports) only when they are regular files.

A FIFO named as `--replay`, `--config` or `--record` used to hang netscope for good: opening it waits for a writer
(or a reader), and reading it waits for data. A device or a directory is no better. Every such path is opened
without blocking, checked with fstat, and refused with a message unless it is a regular file.
"""

from __future__ import annotations

import os
import stat
from typing import IO

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
)  # fmt: skip


class NotARegularFile(OSError):
    """The path names something other than a regular file; the message says what."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str], write: bool = False) -> IO[bytes]:
    """Open `path` for binary reading (or, with `write`, create or truncate it for writing) if it is a regular
    file; raise NotARegularFile (an OSError) if it is anything else, and the usual OSError if it cannot be opened.
    Never blocks on a FIFO."""
    flags = (os.O_WRONLY | os.O_CREAT if write else os.O_RDONLY) | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        if write and error.errno == 6:  # ENXIO: a FIFO nobody reads
            raise NotARegularFile(error.errno, f"{os.fspath(path)} is a FIFO (named pipe), not a regular file; "
                                  "netscope writes only regular files") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(
                22, f"{os.fspath(path)} is {_kind(mode)}, not a regular file; netscope "
                f"{'writes' if write else 'reads'} only regular files"
            )
        os.set_blocking(fd, True)
        if write:
            os.ftruncate(fd, 0)  # only now: truncating is for regular files
        return os.fdopen(fd, "wb" if write else "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole of regular file `path`, refusing (NotARegularFile) anything else or a file over `limit` bytes."""
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotARegularFile(27, f"{os.fspath(path)} is larger than {limit:,} bytes; that is not a file netscope "
                              "wrote or expects")
    return data
