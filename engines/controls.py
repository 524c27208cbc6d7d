"""FaceControls: the one motion language between every motion source and every renderer.

All values are relative to the portrait as photographed: ``FaceControls()`` (every field at its
neutral value) reproduces the photo. Left and right are the subject's own (``blink_left`` closes
the eye on the image's right side of an unmirrored photo). Image directions: +x right, +y down.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


def _f(low: float, high: float, neutral: float, doc: str) -> Any:
    return field(default=neutral, metadata={"range": (low, high), "doc": doc})


@dataclass(frozen=True, slots=True)
class FaceControls:
    """Named motion values; see each field's ``range`` and ``doc`` metadata."""

    head_yaw: float = _f(-35.0, 35.0, 0.0, "degrees; + turns the nose toward the image right")
    head_pitch: float = _f(-25.0, 25.0, 0.0, "degrees; + tilts the nose up")
    head_roll: float = _f(-25.0, 25.0, 0.0, "degrees; + tilts the head clockwise in the image")
    head_x: float = _f(-0.25, 0.25, 0.0, "shift right, in face widths")
    head_y: float = _f(-0.25, 0.25, 0.0, "shift down, in face widths")
    head_scale: float = _f(0.85, 1.15, 1.0, "size factor of the head")
    jaw_open: float = _f(0.0, 1.0, 0.0, "1 = mouth wide open (about a third of face height)")
    mouth_wide: float = _f(-1.0, 1.0, 0.0, "+ stretches the mouth corners apart, - narrows")
    mouth_round: float = _f(0.0, 1.0, 0.0, "pucker: corners in, lips pushed out (oo, w)")
    lip_press: float = _f(0.0, 1.0, 0.0, "1 = lips closed and pressed (m, b, p)")
    smile: float = _f(-1.0, 1.0, 0.0, "+ corners up and out, - corners down (frown)")
    brow_left: float = _f(-1.0, 1.0, 0.0, "+ raises the left brow, - lowers it")
    brow_right: float = _f(-1.0, 1.0, 0.0, "+ raises the right brow, - lowers it")
    blink_left: float = _f(0.0, 1.0, 0.0, "1 = left eye closed")
    blink_right: float = _f(0.0, 1.0, 0.0, "1 = right eye closed")
    gaze_x: float = _f(-1.0, 1.0, 0.0, "eyes look toward the image right (+) or left (-)")
    gaze_y: float = _f(-1.0, 1.0, 0.0, "eyes look down (+) or up (-)")

    NAMES: ClassVar[tuple[str, ...]]
    RANGES: ClassVar[dict[str, tuple[float, float]]]

    def clamped(self) -> FaceControls:
        """Every field within its range; NaN becomes the neutral value, +-inf the bound."""
        values: dict[str, float] = {}
        for f in dataclasses.fields(self):
            low, high = f.metadata["range"]
            v = float(getattr(self, f.name))
            values[f.name] = NEUTRAL_VALUES[f.name] if math.isnan(v) else min(max(v, low), high)
        return FaceControls(**values)

    def lerp(self, other: FaceControls, t: float) -> FaceControls:
        """Linear interpolation: ``t=0`` gives self, ``t=1`` gives other."""
        a, b = self.as_array(), other.as_array()
        return FaceControls.from_array(a + (b - a) * float(t))

    def replace(self, **changes: float) -> FaceControls:
        return dataclasses.replace(self, **changes)

    def as_array(self) -> np.ndarray:
        """The values as float64 in ``NAMES`` order."""
        return np.array([getattr(self, n) for n in self.NAMES], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> FaceControls:
        if len(values) != len(cls.NAMES):
            raise ValueError(f"expected {len(cls.NAMES)} values, got {len(values)}")
        return cls(**{n: float(v) for n, v in zip(cls.NAMES, values, strict=True)})

    def is_neutral(self, tol: float = 1e-9) -> bool:
        return bool(np.all(np.abs(self.as_array() - NEUTRAL.as_array()) <= tol))


FaceControls.NAMES = tuple(f.name for f in dataclasses.fields(FaceControls))
FaceControls.RANGES = {f.name: f.metadata["range"] for f in dataclasses.fields(FaceControls)}
NEUTRAL = FaceControls()
NEUTRAL_VALUES = {n: float(getattr(NEUTRAL, n)) for n in FaceControls.NAMES}
