"""FaceControls -> LivePortrait driving keypoints, relative to the portrait's own keypoints.

- Pose, translation and scale edit the source's pose parameters (Eqn. 2 of the paper).
- Lip opening/closing goes through the lip retargeting MLP and blinks through the eye
  retargeting MLP, both fed the portrait's keypoints and the target open ratio.
- Smile, mouth round/wide, brows and gaze are direct expression-delta edits of specific
  keypoints. The keypoints and directions are those LivePortrait's own editor moves
  (``src/gradio_pipeline.py``, ``update_delta_new_*``); the gains map our [-1, 1] controls
  onto the middle of that editor's slider ranges. They are starting values that nobody has
  yet checked against the real weights here.
- Every network delta is taken *relative to its value at the portrait's own state* (computed
  once per portrait by :class:`KeypointDriver`), so ``FaceControls()`` drives exactly the
  source keypoints and the render reproduces the
  network's reconstruction of the photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engines.controls import FaceControls
from engines.face import topology as topo
from engines.liveportrait.crop import SCALE
from engines.liveportrait.keypoints import headpose_to_degrees, transform_keypoints

NUM_KP = 21
FACE_WIDTH = 2.0 / SCALE
"""Keypoint units per face size: the crop spans 2 units and ``SCALE`` face sizes."""

# Keypoint space is x right, y down, z into the picture, and posed = R applied to column
# vectors with R = Rz(roll) Ry(yaw) Rx(pitch). A nose at -z moves to -x under +yaw and to
# +y under +pitch; +roll turns +x towards +y (clockwise on screen). FaceControls' yaw turns
# the nose to the image right and pitch tilts it up, hence the signs.
YAW_SIGN = -1.0
PITCH_SIGN = -1.0
ROLL_SIGN = 1.0

LIP_OPEN_MAX = 0.6
"""Lip open ratio (inner-lip gap / mouth width) at ``jaw_open = 1``."""

Edit = tuple[int, int, float]
"""(keypoint, axis 0=x 1=y 2=z, offset per unit of the control)."""

SMILE: tuple[Edit, ...] = (
    (20, 1, -0.01), (14, 1, -0.02), (17, 1, 0.0065), (17, 2, 0.003),
    (13, 1, -0.00275), (16, 1, -0.00275), (3, 1, -0.0035), (7, 1, -0.0035),
)  # fmt: skip
FROWN_SCALE = 0.3
"""The editor's smile slider goes to -0.3 only: deeper frowns leave the trained range."""
BROW_RAISE: tuple[Edit, ...] = ((1, 1, 0.015), (2, 1, -0.015))
BROW_LOWER: tuple[Edit, ...] = ((1, 0, 0.015), (2, 0, -0.015), (1, 1, -0.0045), (2, 1, 0.0045))
GAZE_RIGHT: tuple[Edit, ...] = ((11, 0, 0.014), (15, 0, 0.02))
GAZE_LEFT: tuple[Edit, ...] = ((11, 0, 0.02), (15, 0, 0.014))
GAZE_DOWN: tuple[Edit, ...] = ((11, 1, 0.03), (15, 1, 0.03))
PURSE: tuple[Edit, ...] = ((14, 1, 0.015), (3, 1, -0.0075), (7, 1, -0.0075), (17, 2, -0.0075))
GRIN: tuple[Edit, ...] = ((20, 2, -0.01), (20, 1, -0.01), (14, 1, -0.01))


@dataclass(frozen=True)
class SourceState:
    """The portrait's keypoint parameters (from the motion network) and open ratios."""

    kp: np.ndarray  # (21, 3) canonical keypoints
    pitch: float
    yaw: float
    roll: float
    exp: np.ndarray  # (21, 3)
    t: np.ndarray  # (3,)
    scale: float
    eye_ratios: np.ndarray  # (2,): subject's left, right
    lip_ratio: float

    @classmethod
    def from_motion(
        cls, motion: dict[str, np.ndarray], eye_ratios: np.ndarray, lip_ratio: float
    ) -> SourceState:
        return cls(
            kp=motion["kp"].reshape(NUM_KP, 3).astype(np.float64),
            pitch=headpose_to_degrees(motion["pitch"]),
            yaw=headpose_to_degrees(motion["yaw"]),
            roll=headpose_to_degrees(motion["roll"]),
            exp=motion["exp"].reshape(NUM_KP, 3).astype(np.float64),
            t=motion["t"].reshape(3).astype(np.float64),
            scale=float(motion["scale"].reshape(())),
            eye_ratios=np.asarray(eye_ratios, dtype=np.float64),
            lip_ratio=float(lip_ratio),
        )

    def keypoints(self) -> np.ndarray:
        """The portrait's posed keypoints ``x_s`` (21, 3)."""
        return transform_keypoints(
            self.kp, self.pitch, self.yaw, self.roll, self.exp, self.t, self.scale
        )


def _ratio(xy: np.ndarray, a: int, b: int, c: int, d: int) -> float:
    return float(np.linalg.norm(xy[a] - xy[b]) / (np.linalg.norm(xy[c] - xy[d]) + 1e-6))


def open_ratios(points_xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Eye open ratios (lid gap / eye width; subject's left, right) and the lip open ratio
    (inner-lip gap / mouth width), LivePortrait's definitions on mediapipe's landmarks."""

    def gap(upper: tuple[int, ...], lower: tuple[int, ...]) -> float:
        middle = len(upper) // 2  # the mid-lid / mid-lip point; the ends are the corners
        return _ratio(points_xy, upper[middle], lower[middle], upper[0], upper[-1])

    left = gap(topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER)
    right = gap(topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER)
    lip = _ratio(points_xy, topo.LIPS_UPPER_INNER[5], topo.LIPS_LOWER_INNER[5], *topo.MOUTH_CORNERS)
    return np.array([left, right]), lip


def _apply(exp: np.ndarray, edits: tuple[Edit, ...], amount: float) -> None:
    for kp, axis, gain in edits:
        exp[kp, axis] += gain * amount


def expression_delta(c: FaceControls) -> np.ndarray:
    """``(21, 3)`` offsets for smile, mouth shape, brows and gaze."""
    exp = np.zeros((NUM_KP, 3))
    _apply(exp, SMILE, c.smile if c.smile > 0 else c.smile * FROWN_SCALE)
    brow = (c.brow_left + c.brow_right) / 2
    _apply(exp, BROW_RAISE if brow > 0 else BROW_LOWER, abs(brow))
    _apply(exp, GAZE_RIGHT if c.gaze_x > 0 else GAZE_LEFT, c.gaze_x)
    _apply(exp, GAZE_DOWN, c.gaze_y)
    _apply(exp, PURSE, c.mouth_round + max(-c.mouth_wide, 0.0) * 0.5)
    _apply(exp, GRIN, max(c.mouth_wide, 0.0))
    return exp


def target_lip_ratio(source: float, c: FaceControls) -> float:
    opened = source + c.jaw_open * max(LIP_OPEN_MAX - source, 0.0)
    return opened * (1.0 - c.lip_press)


Mlp = Callable[[np.ndarray], np.ndarray]
"""Runs one retargeting MLP: a flat float32 input -> its flat output."""


@dataclass(frozen=True)
class Retargeting:
    """The three stitching/retargeting MLPs."""

    stitching: Mlp
    lip: Mlp
    eye: Mlp


class KeypointDriver:
    """Turns FaceControls into driving keypoints for one portrait.

    The portrait's keypoints ``x_s`` and each MLP's output at the portrait's own state are
    computed once here; every frame's network deltas are taken relative to them.
    """

    def __init__(self, source: SourceState, nets: Retargeting) -> None:
        self.source = source
        self.nets = nets
        self.x_s = source.keypoints()
        self._flat = self.x_s.reshape(-1)
        self._lip_rest = self._lip(source.lip_ratio)
        self._eye_rest = self._eye(float(source.eye_ratios.mean()))
        self._stitch_rest = self._stitching(self.x_s)

    def _lip(self, ratio: float) -> np.ndarray:
        out = self.nets.lip(np.concatenate([self._flat, [self.source.lip_ratio, ratio]]))
        return out.reshape(NUM_KP, 3)

    def _eye(self, ratio: float) -> np.ndarray:
        out = self.nets.eye(np.concatenate([self._flat, self.source.eye_ratios, [ratio]]))
        return out.reshape(NUM_KP, 3)

    def _stitching(self, x_d: np.ndarray) -> np.ndarray:
        return self.nets.stitching(np.concatenate([self._flat, x_d.reshape(-1)]))

    def lip_delta(self, target: float) -> np.ndarray:
        """Keypoint offsets that bring the lip open ratio from the portrait's to ``target``."""
        return self._lip(target) - self._lip_rest

    def eye_delta(self, blink: tuple[float, float]) -> np.ndarray:
        """Each eye closes by its own blink: keypoints on the image right (x > 0) belong to
        the subject's left eye."""
        mean = float(self.source.eye_ratios.mean())
        left = self._eye(mean * (1 - blink[0])) - self._eye_rest
        right = left if blink[1] == blink[0] else self._eye(mean * (1 - blink[1])) - self._eye_rest
        return np.where(self.x_s[:, :1] > 0, left, right)

    def stitch(self, x_d: np.ndarray) -> np.ndarray:
        """``x_d`` with the stitching correction (keypoint deltas and a tx, ty shift)."""
        delta = self._stitching(x_d) - self._stitch_rest
        out = x_d + delta[: 3 * NUM_KP].reshape(NUM_KP, 3)
        out[:, :2] += delta[3 * NUM_KP : 3 * NUM_KP + 2]
        return out

    def keypoints(self, c: FaceControls) -> np.ndarray:
        """``x_d`` (21, 3) for clamped controls ``c``; equals ``x_s`` at neutral."""
        if c.is_neutral():
            return self.x_s
        source = self.source
        x_d = transform_keypoints(
            source.kp,
            source.pitch + PITCH_SIGN * c.head_pitch,
            source.yaw + YAW_SIGN * c.head_yaw,
            source.roll + ROLL_SIGN * c.head_roll,
            source.exp + expression_delta(c),
            source.t + np.array([c.head_x, c.head_y, 0.0]) * FACE_WIDTH,
            source.scale * c.head_scale,
        )
        if c.jaw_open > 0 or c.lip_press > 0:
            x_d += self.lip_delta(target_lip_ratio(source.lip_ratio, c))
        if c.blink_left > 0 or c.blink_right > 0:
            x_d += self.eye_delta((c.blink_left, c.blink_right))
        return self.stitch(x_d)
