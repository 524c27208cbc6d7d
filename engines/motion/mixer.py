"""The motion mixer: which source drives which FaceControls field, per policy.

Its inputs are named for what they are: ``life`` (idle life and speech-linked nods), the
speech ``mouth`` (mouth shape plus a smile offset) and the tracked ``webcam`` face.

- "audio": life with the speech mouth (the webcam is ignored).
- "webcam": the tracked face drives everything, mouth included.
- "hybrid": the tracked face drives head, eyes, brows, smile and gaze; speech drives the mouth.

Whatever the webcam drives is blended with life by ``webcam_weight`` (0..1), which
``FacePresence`` eases down when the face is lost and back up when it is found, so the portrait
never freezes or jumps. At weight 0 the webcam's fields fall back to life with a closed mouth.
``Mixer`` holds the policy and the presence for a stream of ticks.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np

from engines.controls import NEUTRAL, FaceControls
from engines.motion.layers import MOUTH_FIELDS, with_mouth

Policy = Literal["audio", "webcam", "hybrid"]
POLICIES: tuple[Policy, ...] = get_args(Policy)

_MOUTH = np.array([name in MOUTH_FIELDS for name in FaceControls.NAMES])


def mix(
    policy: Policy,
    life: FaceControls,
    mouth: FaceControls,
    webcam: FaceControls | None,
    webcam_weight: float,
) -> FaceControls:
    """The controls for one tick under ``policy``; always clamped, never NaN.

    ``mouth`` supplies the mouth fields (and, in "audio", a smile offset); ``webcam`` is None
    when no face is tracked, which counts as weight 0.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown motion policy {policy!r}; use one of {', '.join(POLICIES)}")
    if policy == "audio":
        return with_mouth(life, mouth)
    face = _follow_webcam(life, webcam, webcam_weight)
    if policy == "webcam":
        return face
    values = face.as_array()
    values[_MOUTH] = mouth.clamped().as_array()[_MOUTH]
    return FaceControls.from_array(values).clamped()


class Mixer:
    """``mix`` for a stream of ticks: the webcam's presence eased over time; the policy may
    change between ticks (a live mode switch)."""

    def __init__(self, policy: Policy = "hybrid", ease_seconds: float = 0.3) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown motion policy {policy!r}; use one of {', '.join(POLICIES)}")
        self.policy: Policy = policy
        self.presence = FacePresence(ease_seconds)

    def controls(
        self, t: float, life: FaceControls, mouth: FaceControls, webcam: FaceControls | None
    ) -> FaceControls:
        """The controls at ``t`` seconds (any origin, non-decreasing)."""
        if self.policy == "audio":
            return mix("audio", life, mouth, None, 0.0)
        weight = self.presence.update(t, webcam is not None)
        return mix(self.policy, life, mouth, webcam, weight)


def _follow_webcam(idle: FaceControls, webcam: FaceControls | None, weight: float) -> FaceControls:
    """Idle with a closed mouth, blended toward the webcam's controls by ``weight``."""
    rest = _closed_mouth(idle.clamped())
    w = _unit(weight)
    if webcam is None or w == 0.0:
        return rest
    return rest.lerp(webcam.clamped(), w).clamped()


def _closed_mouth(controls: FaceControls) -> FaceControls:
    values = controls.as_array()
    values[_MOUTH] = NEUTRAL.as_array()[_MOUTH]
    return FaceControls.from_array(values)


def _unit(value: float) -> float:
    """``value`` within 0..1; NaN becomes 0."""
    v = float(value)
    return 0.0 if math.isnan(v) else min(max(v, 0.0), 1.0)


class FacePresence:
    """The webcam weight: eases to 0 within ``ease_seconds`` of losing the face, back to 1
    within ``ease_seconds`` of finding it (smoothstep of a linear ramp).

    Starts at 0, so the webcam fades in when a face is first found.
    """

    def __init__(self, ease_seconds: float = 0.3, initial: float = 0.0) -> None:
        if not ease_seconds > 0:
            raise ValueError(f"ease_seconds must be positive, got {ease_seconds}")
        self.ease_seconds = float(ease_seconds)
        self._ramp = _unit(initial)
        self._last_t: float | None = None

    @property
    def weight(self) -> float:
        """The current weight, 0..1."""
        r = self._ramp
        return r * r * (3.0 - 2.0 * r)

    def update(self, t: float, face_found: bool) -> float:
        """Advance to time ``t`` (seconds, any origin) and return the weight for that tick."""
        t = float(t)
        if math.isnan(t):
            return self.weight
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t if self._last_t is None else max(t, self._last_t)
        step = dt / self.ease_seconds
        target = 1.0 if face_found else 0.0
        if self._ramp < target:
            self._ramp = min(target, self._ramp + step)
        else:
            self._ramp = max(target, self._ramp - step)
        return self.weight

    def reset(self, initial: float = 0.0) -> None:
        """Forget the history (e.g. after the webcam was switched)."""
        self._ramp = _unit(initial)
        self._last_t = None
