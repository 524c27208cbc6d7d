"""Face tracking on video: mediapipe's FaceLandmarker in VIDEO mode, and FaceControls from it.

``FaceTracker.track(rgb, timestamp_ms)`` gives the face in one webcam frame (or None);
``controls_from_face(face, neutral)`` turns it into FaceControls relative to the user's resting
face (``Neutral``, taken by "Set neutral").

Mirroring. ``controls_from_face(..., mirror=True)`` (the default) makes the portrait behave like
the user's reflection in a mirror: the user's own left eye closes the portrait's eye on the
image's *left* side (the portrait's right eye), turning the nose toward the user's left turns
the portrait's nose toward the image left, and so on; this is what the user expects when
watching the preview. The webcam frame is taken as delivered by the camera (unmirrored), so
mirroring swaps left and right fields and negates yaw, roll, head_x and gaze_x. With
``mirror=False`` the portrait copies the motion as seen in the camera image, which is the
identity mapping used by the closed-loop tests (mediapipe's ``...Left`` blendshapes are the
subject's own left, like FaceControls' ``blink_left``).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from engines.controls import FaceControls
from engines.face import topology as topo
from engines.face.landmarker import FaceLandmarks
from engines.face.mediapipe_task import close_at_exit, create_face_landmarker

# Landmarks used for the ratios (mediapipe's 478-point mesh).
_CHEEKS = (234, 454)
_EYE_CORNERS = (33, 263)  # outer corners: the subject's right, left
_LIP_MIDDLE = (13, 14)  # inner upper, inner lower

# Gains: the change from neutral that counts as a full (1.0) expression. Landmark ratios are
# 3D distances (mediapipe's z is on the x scale) over the 3D outer eye-corner span, so they
# hardly change with head rotation.
JAW_GAP_FULL = 0.35
"""Inner lip gap / eye span at jaw_open = 1."""
EAR_FULL_CLOSE = 0.7
"""Relative drop of the eye aspect ratio that counts as a fully closed eye."""
CORNER_LIFT_FULL = 0.12
"""Mouth-corner lift above the lip middle / eye span at smile = 1."""
GAZE_FULL = 0.12
"""Iris shift / eye width at gaze = +-1."""
BLENDSHAPE_FULL = {
    "blink": 0.5,
    "jaw": 0.5,
    "smile": 0.5,
    "round": 0.6,
    "wide": 0.5,
    "press": 0.5,
    "brow": 0.4,
}


def head_angles(face: FaceLandmarks) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees with FaceControls' signs, from the transformation matrix.

    mediapipe's matrix gives yaw with FaceControls' sign and pitch and roll with the opposite
    one (the same conventions as ``tests/face_metrics.head_angles``).
    """
    r = np.asarray(face.transform, dtype=np.float64)[:3, :3]
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, -pitch, -roll


def _dist(p: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(p[a] - p[b]))


def _ear(p: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]) -> float:
    opening = np.linalg.norm(p[list(upper[2:-2])] - p[list(lower[2:-2])], axis=1).mean()
    return float(opening / max(np.linalg.norm(p[upper[0]] - p[upper[-1]]), 1e-6))


def _gaze(p: np.ndarray, upper: tuple[int, ...], iris: int) -> tuple[float, float]:
    """Iris offset from the eye corners' midpoint over eye width (x, y; image directions)."""
    a, b = p[upper[0], :2], p[upper[-1], :2]
    width = max(float(np.linalg.norm(b - a)), 1e-6)
    offset = p[iris, :2] - (a + b) / 2
    return float(offset[0] / width), float(offset[1] / width)


def face_ratios(face: FaceLandmarks) -> dict[str, float]:
    """Scale-free landmark measurements that the controls are computed from."""
    p = face.points.astype(np.float64)
    span = max(_dist(p, *_EYE_CORNERS), 1e-6)
    lips = (p[_LIP_MIDDLE[0]] + p[_LIP_MIDDLE[1]]) / 2
    corners = p[list(topo.MOUTH_CORNERS)]
    # Corner lift along the face's own "up" (perpendicular to the eye line), so roll is ignored.
    eye_line = p[_EYE_CORNERS[1], :2] - p[_EYE_CORNERS[0], :2]
    up = np.array([eye_line[1], -eye_line[0]]) / max(float(np.linalg.norm(eye_line)), 1e-6)
    lift = float(((corners[:, :2] - lips[:2]) @ up).mean())
    right_gaze = _gaze(p, topo.RIGHT_EYE_UPPER, topo.RIGHT_IRIS_CENTER)
    left_gaze = _gaze(p, topo.LEFT_EYE_UPPER, topo.LEFT_IRIS_CENTER)
    return {
        "span": span,
        "width": _dist(p, *_CHEEKS),
        "jaw_gap": _dist(p, *_LIP_MIDDLE) / span,
        "ear_left": _ear(p, topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER),
        "ear_right": _ear(p, topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER),
        "corner_lift": lift / span,
        "gaze_x": (right_gaze[0] + left_gaze[0]) / 2,
        "gaze_y": (right_gaze[1] + left_gaze[1]) / 2,
        "centre_x": float(p[:, 0].mean()),
        "centre_y": float(p[:, 1].mean()),
    }


@dataclass(frozen=True)
class Neutral:
    """The user's resting face, which ``controls_from_face`` maps to neutral FaceControls."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)
    """Mean landmark position, pixels."""
    size: float = 0.0
    """Cheek-to-cheek face width, pixels (3D distance, so rotation hardly changes it)."""
    blendshapes: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    """``face_ratios`` of the resting face."""

    @classmethod
    def from_face(cls, face: FaceLandmarks) -> Neutral:
        ratios = face_ratios(face)
        yaw, pitch, roll = head_angles(face)
        return cls(
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            centre=(ratios["centre_x"], ratios["centre_y"]),
            size=ratios["width"],
            blendshapes={
                n: float(v) for n, v in zip(face.blendshape_names, face.blendshapes, strict=True)
            },
            ratios=ratios,
        )

    @classmethod
    def average(cls, faces: list[FaceLandmarks]) -> Neutral:
        """The mean of ``from_face`` over several frames (steadier than a single frame)."""
        if not faces:
            raise ValueError("no faces to average")
        each = [cls.from_face(f) for f in faces]

        def mean(values: list[float]) -> float:
            return float(np.mean(values))

        return cls(
            yaw=mean([n.yaw for n in each]),
            pitch=mean([n.pitch for n in each]),
            roll=mean([n.roll for n in each]),
            centre=(mean([n.centre[0] for n in each]), mean([n.centre[1] for n in each])),
            size=mean([n.size for n in each]),
            blendshapes={k: mean([n.blendshapes[k] for n in each]) for k in each[0].blendshapes},
            ratios={k: mean([n.ratios[k] for n in each]) for k in each[0].ratios},
        )


def controls_from_face(
    face: FaceLandmarks, neutral: Neutral | None = None, *, mirror: bool = True
) -> FaceControls:
    """FaceControls for a tracked face, relative to ``neutral`` (or to a generic rest face).

    Without a neutral, angles are absolute, position and scale are neutral, and expressions
    are measured from zero blendshapes and typical resting ratios. ``mirror``: see the module
    docstring. The result is clamped to FaceControls' ranges.
    """
    ratios = face_ratios(face)
    if neutral is None:
        neutral = Neutral(
            centre=(ratios["centre_x"], ratios["centre_y"]),
            size=ratios["width"],
            ratios=_TYPICAL_RATIOS,
        )
    shapes = dict(zip(face.blendshape_names, (float(v) for v in face.blendshapes), strict=True))

    def delta(*names: str) -> float:
        """Mean of the named blendshapes minus their mean at neutral."""
        now = np.mean([shapes.get(n, 0.0) for n in names])
        rest = np.mean([neutral.blendshapes.get(n, 0.0) for n in names])
        return float(now - rest)

    def ratio(name: str) -> float:
        return ratios[name] - neutral.ratios.get(name, _TYPICAL_RATIOS[name])

    yaw, pitch, roll = head_angles(face)
    size = neutral.size if neutral.size > 0 else ratios["width"]
    values: dict[str, float] = {
        "head_yaw": yaw - neutral.yaw,
        "head_pitch": pitch - neutral.pitch,
        "head_roll": roll - neutral.roll,
        "head_x": (ratios["centre_x"] - neutral.centre[0]) / size,
        "head_y": (ratios["centre_y"] - neutral.centre[1]) / size,
        "head_scale": ratios["width"] / size,
    }
    # Jaw: the inner lip gap reacts earlier and more linearly than jawOpen; take the larger.
    values["jaw_open"] = max(
        ratio("jaw_gap") / JAW_GAP_FULL, delta("jawOpen") / BLENDSHAPE_FULL["jaw"]
    )
    for side, upper in (("left", "Left"), ("right", "Right")):
        ear_rest = max(neutral.ratios.get(f"ear_{side}", _TYPICAL_RATIOS[f"ear_{side}"]), 1e-6)
        closing = (1.0 - ratios[f"ear_{side}"] / ear_rest) / EAR_FULL_CLOSE
        values[f"blink_{side}"] = max(closing, delta(f"eyeBlink{upper}") / BLENDSHAPE_FULL["blink"])
        raise_ = (delta("browInnerUp") + delta(f"browOuterUp{upper}")) / 2
        values[f"brow_{side}"] = (raise_ - delta(f"browDown{upper}")) / BLENDSHAPE_FULL["brow"]
    smile_shapes = delta("mouthSmileLeft", "mouthSmileRight") - delta(
        "mouthFrownLeft", "mouthFrownRight"
    )
    # A smiling resting face saturates mouthSmile; the corner lift still moves, so use both.
    values["smile"] = (
        smile_shapes / BLENDSHAPE_FULL["smile"] + ratio("corner_lift") / CORNER_LIFT_FULL
    ) / 2
    values["mouth_round"] = (
        max(delta("mouthPucker"), delta("mouthFunnel")) / BLENDSHAPE_FULL["round"]
    )
    values["mouth_wide"] = delta("mouthStretchLeft", "mouthStretchRight") / BLENDSHAPE_FULL["wide"]
    values["lip_press"] = (
        max(delta("mouthPressLeft", "mouthPressRight"), delta("mouthClose"))
        / BLENDSHAPE_FULL["press"]
    )
    values["gaze_x"] = ratio("gaze_x") / GAZE_FULL
    values["gaze_y"] = ratio("gaze_y") / GAZE_FULL
    controls = FaceControls(**values)
    return (mirrored(controls) if mirror else controls).clamped()


def mirrored(controls: FaceControls) -> FaceControls:
    """The same motion seen in a mirror: left and right swapped, horizontal signs flipped."""
    c = controls
    return c.replace(
        head_yaw=-c.head_yaw,
        head_roll=-c.head_roll,
        head_x=-c.head_x,
        gaze_x=-c.gaze_x,
        blink_left=c.blink_right,
        blink_right=c.blink_left,
        brow_left=c.brow_right,
        brow_right=c.brow_left,
    )


_TYPICAL_RATIOS: dict[str, float] = {
    # Rough values for an adult face at rest, used when no Neutral has been set.
    "span": 0.0,
    "width": 0.0,
    "jaw_gap": 0.02,
    "ear_left": 0.3,
    "ear_right": 0.3,
    "corner_lift": 0.0,
    "gaze_x": 0.0,
    "gaze_y": 0.0,
    "centre_x": 0.0,
    "centre_y": 0.0,
}


class FaceTracker:
    """mediapipe's FaceLandmarker in VIDEO mode, one face; a context manager, or call ``close``.

    ``track`` needs strictly increasing timestamps; between frames mediapipe tracks the face
    from the previous landmarks instead of running the detector, which is faster and steadier.
    """

    def __init__(self) -> None:
        task = create_face_landmarker("VIDEO", 1)
        self._task: Any = task
        self._last_ms: int | None = None
        self._finalizer = weakref.finalize(self, task.close)
        self._finalizer.atexit = False
        close_at_exit(self)

    def track(self, rgb: np.ndarray, timestamp_ms: int) -> FaceLandmarks | None:
        """The face in an HxWx3 uint8 RGB frame, in its pixels, or None when there is none.

        Raises ValueError for a bad image or a timestamp not after the previous one.
        """
        import mediapipe as mp

        if self._task is None:
            raise RuntimeError("this FaceTracker is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        timestamp_ms = int(timestamp_ms)
        if self._last_ms is not None and timestamp_ms <= self._last_ms:
            raise ValueError(
                f"timestamps must increase: {timestamp_ms} ms after {self._last_ms} ms"
            )
        self._last_ms = timestamp_ms
        height, width = rgb.shape[:2]
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._task.detect_for_video(frame, timestamp_ms)
        if not result.face_landmarks:
            return None
        marks = result.face_landmarks[0]
        points = np.array([(p.x, p.y, p.z) for p in marks], dtype=np.float32)
        points *= np.array([width, height, width], dtype=np.float32)
        shapes = result.face_blendshapes[0] if result.face_blendshapes else []
        return FaceLandmarks(
            points=points,
            blendshapes=np.array([c.score for c in shapes], dtype=np.float32),
            blendshape_names=tuple(c.category_name for c in shapes),
            transform=np.array(result.facial_transformation_matrixes[0], np.float32),
        )

    def close(self) -> None:
        self._finalizer()
        self._task = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
