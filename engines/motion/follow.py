"""From tracked faces to smoothed FaceControls relative to the user's resting face.

Shared by live webcam driving and ``avatar-app drive`` so both calibrate alike: the resting
(neutral) face is taken once mediapipe has settled (``SETTLE`` faces in a row), or again after
``set_neutral``; a lost face resets the smoothing.
"""

from __future__ import annotations

from engines.controls import FaceControls
from engines.face.landmarker import FaceLandmarks
from engines.face.tracker import Neutral, controls_from_face
from engines.motion.smoothing import ControlsSmoother

SETTLE = 3  # faces in a row before one is taken as neutral (mediapipe settles over ~3 frames)


class FaceFollower:
    """``update(t, face)`` per tracked frame; ``mirror`` as in ``controls_from_face``."""

    def __init__(self, mirror: bool = True) -> None:
        self.mirror = mirror
        self.neutral: Neutral | None = None
        self._smoother = ControlsSmoother()
        self._in_a_row = 0
        self._recalibrate = True

    def set_neutral(self) -> None:
        """The next settled face becomes the resting face."""
        self._recalibrate = True

    def update(
        self, t: float, face: FaceLandmarks | None, may_calibrate: bool = True
    ) -> FaceControls | None:
        """Controls for this frame, or None while there is no face or no neutral yet."""
        if face is None:
            self._smoother.reset()
            self._in_a_row = 0
            return None
        self._in_a_row += 1
        if self._recalibrate and may_calibrate and self._in_a_row > SETTLE:
            self.neutral, self._recalibrate = Neutral.from_face(face), False
        if self.neutral is None:
            return None
        return self._smoother.filter(t, controls_from_face(face, self.neutral, mirror=self.mirror))
