"""This process's memory and CPU figures, measured on real work (no fakes)."""

from __future__ import annotations

import subprocess
import sys
import time

from avatar_app.process_stats import cpu_seconds

BLOCK_MB = 200


MEMORY_CHECK = f"""
import numpy as np
from avatar_app.process_stats import peak_rss_mb, rss_mb

before = rss_mb()
block = np.ones({BLOCK_MB} * 2**20, np.uint8)  # written, so resident
during = rss_mb()
peak_during = peak_rss_mb()
del block
after = rss_mb()
assert before > 0, before
assert during - before > 0.8 * {BLOCK_MB}, (before, during)
assert peak_during >= during - 1, (peak_during, during)  # the peak covers now (KiB rounding)
assert after < during - 0.8 * {BLOCK_MB}, (after, during)  # numpy returns large blocks
assert peak_rss_mb() >= peak_during - 1  # ... while the peak remembers it
"""


def test_memory_follows_a_large_allocation_and_the_peak_stays() -> None:
    # A fresh process: in a long test run the allocator may already hold freed memory that
    # the block would reuse without the resident size changing.
    done = subprocess.run([sys.executable, "-c", MEMORY_CHECK], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_cpu_seconds_count_work_not_sleep() -> None:
    start = cpu_seconds()
    time.sleep(0.2)
    assert cpu_seconds() - start < 0.1
    deadline = time.monotonic() + 30.0  # busy until 0.2 s of CPU, however loaded the machine
    while cpu_seconds() - start < 0.2:
        assert time.monotonic() < deadline, "cpu_seconds() does not grow with work"
