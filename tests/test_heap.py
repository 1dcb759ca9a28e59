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
