"""A pyvirtualcam backend for tests: counts opens and closes and keeps what it is sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np


class CountingBackend:
    """The duck-typed interface of ``pyvirtualcam.Backend``; state is per class (one test)."""

    opened: ClassVar[int] = 0
    closed: ClassVar[int] = 0
    frames: ClassVar[list[tuple[float, np.ndarray]]] = []
    lock = threading.Lock()

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, **kw: Any) -> None:
        self.shape, self.fourcc = (height, width, 3), fourcc
        CountingBackend.opened += 1

    def send(self, frame: np.ndarray) -> None:
        with CountingBackend.lock:
            CountingBackend.frames.append((time.monotonic(), frame.reshape(self.shape).copy()))

    def close(self) -> None:
        CountingBackend.closed += 1

    def device(self) -> str:
        return "counting-test-camera"

    def native_fourcc(self) -> int:
        return self.fourcc

    @classmethod
    def last_frame(cls) -> np.ndarray | None:
        with cls.lock:
            return cls.frames[-1][1] if cls.frames else None


@contextmanager
def registered(name: str) -> Iterator[type[CountingBackend]]:
    """``CountingBackend`` registered with pyvirtualcam as ``name`` for the block (which may
    unregister it earlier itself)."""
    import pyvirtualcam

    CountingBackend.opened = CountingBackend.closed = 0
    CountingBackend.frames = []
    pyvirtualcam.register_backend(name, CountingBackend)
    try:
        yield CountingBackend
    finally:
        pyvirtualcam.camera.BACKENDS.pop(name, None)
