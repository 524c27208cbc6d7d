"""Ticks at a fixed frame rate on the monotonic clock, without drifting and without bursts.

Tick ``k`` is due at ``start + k / fps``. A caller that falls behind skips the missed ticks
(they are counted as dropped) instead of rendering a burst to catch up; if it falls more than
``RESET_AFTER`` ticks behind (a suspended laptop, a debugger), the schedule restarts from now.
"""

from __future__ import annotations

import threading
import time

RESET_AFTER = 30


class Pacer:
    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.period_ns = round(1e9 / fps)
        self._start_ns = time.monotonic_ns()
        self._tick = 0
        self.dropped = 0
        self.resets = 0

    def wait(self, stop: threading.Event) -> int | None:
        """Sleep until the next tick; returns its due time in ns, or None once ``stop`` is set."""
        due = self._start_ns + self._tick * self.period_ns
        now = time.monotonic_ns()
        behind = (now - due) // self.period_ns
        if behind >= RESET_AFTER:
            self._start_ns, self._tick = now, 0
            self.resets += 1
            due = now
        elif behind >= 1:
            self.dropped += int(behind)
            self._tick += int(behind)
            due += int(behind) * self.period_ns
        elif due > now and stop.wait((due - now) / 1e9):
            return None
        if stop.is_set():
            return None
        self._tick += 1
        return due
