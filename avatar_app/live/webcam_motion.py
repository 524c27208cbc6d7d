"""The webcam's motion for the live session: a thread that tracks the newest camera frame.

It only ever takes the newest frame (a slow tracker skips frames instead of falling behind),
turns the face into smoothed ``FaceControls`` relative to the user's neutral face, and keeps
the result in a latest-value slot with the frame's capture time. The first face seen is the
neutral one (after mediapipe settles) until ``set_neutral`` asks for the next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from avatar_app.live.camera_source import CameraFrame
from avatar_app.pipeline.stages import FaceStage
from engines.controls import FaceControls

log = logging.getLogger(__name__)

STALE_AFTER_NS = 300_000_000  # a face older than this counts as lost


class FrameSource(Protocol):
    """A webcam or a video file standing in for one (``avatar_app.live.camera_source``)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def latest(self, after_index: int = -1, timeout: float = 0.0) -> CameraFrame | None: ...


class WebcamMotion:
    """``start`` opens the camera (``DeviceError`` if it cannot) and starts tracking; a tracker
    that cannot start leaves ``error`` set (the session reports it) instead of dying silently."""

    def __init__(self, camera: FrameSource, make_stage: Callable[[], FaceStage]) -> None:
        self.camera = camera
        self._make_stage = make_stage  # called on the tracking thread
        self.tracked = 0
        self.errors = 0
        self.error: str | None = None
        self._latest: tuple[FaceControls | None, int] = (None, 0)
        self._neutral_requests = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.camera.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webcam-tracking", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self.camera.stop()

    def set_neutral(self) -> None:
        """The next face seen becomes the user's resting face."""
        self._neutral_requests += 1

    def latest(self, now_ns: int) -> tuple[FaceControls | None, int]:
        """The newest face's controls and capture time; None when no recent face."""
        controls, pts_ns = self._latest
        if controls is None or now_ns - pts_ns > STALE_AFTER_NS:
            return None, pts_ns
        return controls, pts_ns

    def _run(self) -> None:
        try:
            stage = self._make_stage()
        except Exception as exc:  # a missing model, a broken mediapipe install ...
            self.error = f"Face tracking could not start ({exc})"
            log.exception("Face tracking could not start; the webcam is not followed")
            return
        last_index = -1
        first_ns: int | None = None
        neutral_requests = 0
        try:
            while not self._stop.is_set():
                if neutral_requests != self._neutral_requests:  # asked from another thread
                    neutral_requests = self._neutral_requests
                    stage.set_neutral()
                frame = self.camera.latest(after_index=last_index, timeout=0.05)
                if frame is None:
                    continue
                last_index = frame.index
                first_ns = frame.pts_ns if first_ns is None else first_ns
                try:
                    controls = stage.track(frame.rgb, (frame.pts_ns - first_ns) / 1e9)
                except Exception:  # a bad frame must not end tracking
                    self.errors += 1
                    if self.errors <= 3:
                        log.exception("Tracking a webcam frame failed")
                    continue
                self.tracked += 1
                if controls is not None:
                    self._latest = (controls, frame.pts_ns)
        finally:
            stage.close()
