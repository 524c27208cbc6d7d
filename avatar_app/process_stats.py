"""This process's memory and CPU time on every OS (psutil), for stats and benches."""

from __future__ import annotations

import sys
import time

import psutil

_PROCESS = psutil.Process()


def rss_mb() -> float:
    """Resident memory now, in MiB."""
    return float(_PROCESS.memory_info().rss) / 2**20


def peak_rss_mb() -> float:
    """The most resident memory so far, in MiB (where the OS keeps it; else now)."""
    info = _PROCESS.memory_info()
    peak = getattr(info, "peak_wset", None)  # Windows
    if peak is not None:
        return float(peak) / 2**20
    if sys.platform != "win32":
        import resource  # POSIX only

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024.0  # bytes / KiB
    return rss_mb()


def cpu_seconds() -> float:
    """CPU time this process has used (all threads)."""
    return time.process_time()
