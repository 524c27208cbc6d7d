"""Where the session's threads meet the GUI thread: only queued signals cross (DESIGN.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from avatar_app.pipeline.frames import RenderedFrame
from avatar_app.pipeline.session import LiveSession, SessionEvent


class FrameSlot(QObject):
    """A session sink: the newest frame, and one ``ready`` signal per batch of new frames, so a
    slow window never holds the camera back."""

    ready = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._pending = False

    def submit(self, frame: RenderedFrame) -> None:
        with self._lock:
            self._frame = frame.rgb
            if self._pending:
                return
            self._pending = True
        self.ready.emit()

    def take(self) -> np.ndarray | None:
        with self._lock:
            self._pending = False
            return self._frame

    def stop(self) -> None:
        pass


class SessionBridge(QObject):
    """Re-emits a session's events on the GUI thread (``received`` carries a ``SessionEvent``)."""

    received = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, session: LiveSession) -> None:
        self.detach()
        self._unsubscribe = session.subscribe(self._forward)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _forward(self, event: SessionEvent) -> None:
        self.received.emit(event)  # queued: the receiver lives on the GUI thread


def pixmap_of(rgb: np.ndarray) -> QPixmap:
    """An HxWx3 uint8 RGB array as a pixmap (copied, so the array may change afterwards)."""
    height, width, _ = rgb.shape
    data = np.ascontiguousarray(rgb)
    image = QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())
