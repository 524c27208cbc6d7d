"""This process's memory and CPU figures, measured on real work (no fakes)."""

from __future__ import annotations

import time

import numpy as np

from avatar_app.process_stats import cpu_seconds, peak_rss_mb, rss_mb

BLOCK_MB = 200


def test_memory_follows_a_large_allocation_and_the_peak_stays() -> None:
    before = rss_mb()
    block = np.ones(BLOCK_MB * 2**20, np.uint8)  # written, so resident
    during = rss_mb()
    peak_during = peak_rss_mb()
    del block
    after = rss_mb()
    assert before > 0
    assert during - before > 0.8 * BLOCK_MB
    assert peak_during >= during - 1  # the peak covers the current amount (KiB rounding)
    assert after < during - 0.8 * BLOCK_MB  # freed (numpy returns large blocks to the OS)
    assert peak_rss_mb() >= peak_during - 1  # ... while the peak remembers it


def test_cpu_seconds_count_work_not_sleep() -> None:
    start = cpu_seconds()
    time.sleep(0.2)
    assert cpu_seconds() - start < 0.1
    deadline = time.monotonic() + 30.0  # busy until 0.2 s of CPU, however loaded the machine
    while cpu_seconds() - start < 0.2:
        assert time.monotonic() < deadline, "cpu_seconds() does not grow with work"
