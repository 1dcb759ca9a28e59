"""Freed big blocks leave the process (collectors/heap.py): measured in fresh processes, with and without it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A dict of 100,000 keys, freed; then a smaller one (a refresh after many sockets closed), freed: what stays.
PROBE = """
import sys
from netscope.collectors.heap import return_big_blocks
def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
said = return_big_blocks() if sys.argv[1] == "on" else None
keys = list(range(100_000))
before = rss_kib()
first = dict.fromkeys(keys)
del first
second = dict.fromkeys(keys[:60_000])
del second
print(said, rss_kib() - before)
"""


def kept_kib(mode: str) -> tuple[str, int]:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60,
                            check=True)
    said, kept = result.stdout.split()
    return said, int(kept)


@pytest.mark.skipif(not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc's malloc is what this tunes")
def test_a_freed_dict_of_every_socket_leaves_the_process_only_with_big_blocks_returned() -> None:
    said, kept_with = kept_kib("on")
    assert said == "True"
    _, kept_without = kept_kib("off")
    # glibc's own threshold serves the second dict from the heap, where its megabytes stay; returned, none do.
    assert kept_without >= 2048, kept_without
    assert kept_with <= 512, kept_with


# Small blocks (over pymalloc's 512 bytes, under BIG_BLOCK: served by malloc's heap) of 40 MB, every 32nd kept: the
# pages between the kept ones are free, but the heap cannot shrink past the last kept block.
SMALL_BLOCKS_PROBE = """
import sys
from netscope.collectors.heap import give_back_free_pages, return_big_blocks
def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
return_big_blocks()
before = rss_kib()
blocks = [bytes(2000 + index % 7) for index in range(20_000)]
kept = blocks[::32]
del blocks
said = give_back_free_pages() if sys.argv[1] == "on" else None
print(said, rss_kib() - before)
"""


@pytest.mark.skipif(not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc's malloc_trim is what this calls")
def test_free_pages_between_small_blocks_leave_the_process_when_given_back() -> None:
    def kept(mode: str) -> tuple[str, int]:
        result = subprocess.run([sys.executable, "-c", SMALL_BLOCKS_PROBE, mode], capture_output=True, text=True,
                                timeout=60, check=True)
        said, kept_kib = result.stdout.split()
        return said, int(kept_kib)

    said, kept_with = kept("on")
    assert said == "True"
    _, kept_without = kept("off")
    # 40 MB were freed in blocks of 2 kB: without giving pages back, most of it stays resident
    assert kept_without >= 20_000, kept_without
    assert kept_with <= kept_without // 4, (kept_with, kept_without)
