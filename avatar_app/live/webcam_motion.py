"""The webcam's motion for the live session: a thread that tracks the newest camera frame.

It only ever takes the newest frame (a slow tracker skips frames instead of falling behind),
turns the face into smoothed ``FaceControls`` relative to the user's neutral face, and keeps
the result in a latest-value slot with the frame's capture time. The first face seen is the
neutral one (after mediapipe settles) until ``set_neutral`` asks for the next.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from engines.controls import FaceControls
from engines.motion.follow import FaceFollower

log = logging.getLogger(__name__)

STALE_AFTER_NS = 300_000_000  # a face older than this counts as lost


class WebcamMotion:
    def __init__(self, camera: Any) -> None:
        self.camera = camera
        self.tracked = 0
        self.errors = 0
        self._latest: tuple[FaceControls | None, int] = (None, 0)
        self._follower = FaceFollower(mirror=True)
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
        self._follower.set_neutral()

    def latest(self, now_ns: int) -> tuple[FaceControls | None, int]:
        """The newest face's controls and capture time; None when no recent face."""
        controls, pts_ns = self._latest
        if controls is None or now_ns - pts_ns > STALE_AFTER_NS:
            return None, pts_ns
        return controls, pts_ns

    def _run(self) -> None:
        from engines.face.tracker import FaceTracker

        last_index = -1
        last_ms = -1
        first_ns: int | None = None
        with FaceTracker() as tracker:
            while not self._stop.is_set():
                frame = self.camera.latest(after_index=last_index, timeout=0.05)
                if frame is None:
                    continue
                last_index = frame.index
                first_ns = frame.pts_ns if first_ns is None else first_ns
                t = (frame.pts_ns - first_ns) / 1e9
                last_ms = max(last_ms + 1, round(t * 1000))  # video mode needs rising times
                try:
                    face = tracker.track(frame.rgb, last_ms)
                except Exception:  # a bad frame must not end tracking
                    self.errors += 1
                    if self.errors <= 3:
                        log.exception("Tracking a webcam frame failed")
                    continue
                self.tracked += 1
                controls = self._follower.update(t, face)
                if controls is not None:
                    self._latest = (controls, frame.pts_ns)
