"""The scripted demo sweep: every FaceControls motion in turn, as a pure function of time.

The sweep is a table of segments. Each segment eases from neutral to its target, holds it,
then eases back to neutral, so any two segments join at neutral and the whole sweep starts
and ends on the photo as taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from engines.controls import NEUTRAL, FaceControls

RISE = 0.35
"""Fraction of a segment spent easing in (the same again easing out); the rest holds."""


@dataclass(frozen=True)
class Segment:
    name: str
    seconds: float
    target: FaceControls


def _c(**values: float) -> FaceControls:
    return FaceControls(**values)


SEGMENTS: tuple[Segment, ...] = (
    Segment("look left", 1.0, _c(head_yaw=-25.0)),
    Segment("look right", 1.0, _c(head_yaw=25.0)),
    Segment("nod down", 0.8, _c(head_pitch=-15.0)),
    Segment("nod up", 0.8, _c(head_pitch=15.0)),
    Segment("tilt left", 0.8, _c(head_roll=-15.0)),
    Segment("tilt right", 0.8, _c(head_roll=15.0)),
    Segment("blink", 0.6, _c(blink_left=1.0, blink_right=1.0)),
    Segment("wink left", 0.6, _c(blink_left=1.0)),
    Segment("wink right", 0.6, _c(blink_right=1.0)),
    Segment("brows up", 0.9, _c(brow_left=1.0, brow_right=1.0)),
    Segment("brows down", 0.9, _c(brow_left=-1.0, brow_right=-1.0)),
    Segment("smile", 1.0, _c(smile=1.0)),
    Segment("gaze left", 0.7, _c(gaze_x=-1.0)),
    Segment("gaze right", 0.7, _c(gaze_x=1.0)),
    Segment("gaze up", 0.7, _c(gaze_y=-1.0)),
    Segment("gaze down", 0.7, _c(gaze_y=1.0)),
    Segment("ah", 0.8, _c(jaw_open=0.8)),
    Segment("ee", 0.8, _c(mouth_wide=0.8, jaw_open=0.2, smile=0.2)),
    Segment("oo", 0.8, _c(mouth_round=0.9, jaw_open=0.25)),
    Segment("mm", 0.8, _c(lip_press=1.0)),
)

SWEEP_SECONDS: float = sum(s.seconds for s in SEGMENTS)


def _ease(x: float) -> float:
    """Cosine ease in and out: 0 -> 0, 1 -> 1, zero slope at both ends."""
    return 0.5 - 0.5 * math.cos(math.pi * min(max(x, 0.0), 1.0))


def segment_at(t_seconds: float) -> tuple[Segment, float] | None:
    """The segment playing at ``t_seconds`` and the time since it began; None outside."""
    if not 0.0 <= t_seconds < SWEEP_SECONDS:
        return None
    start = 0.0
    for segment in SEGMENTS:
        if t_seconds < start + segment.seconds:
            return segment, t_seconds - start
        start += segment.seconds
    return None  # unreachable except for float rounding at the very end


def segment_weight(segment: Segment, local_seconds: float) -> float:
    """How far toward its target a segment is, 0..1, ``local_seconds`` after it began."""
    x = local_seconds / segment.seconds
    if x < RISE:
        return _ease(x / RISE)
    if x > 1.0 - RISE:
        return _ease((1.0 - x) / RISE)
    return 1.0


def sweep_controls(t_seconds: float) -> FaceControls:
    """The demo's FaceControls at ``t_seconds``; neutral before 0 and after SWEEP_SECONDS."""
    found = segment_at(t_seconds)
    if found is None:
        return NEUTRAL
    segment, local = found
    return NEUTRAL.lerp(segment.target, segment_weight(segment, local))


def sweep_frame_count(fps: float) -> int:
    """How many frames the sweep lasts at ``fps``."""
    return round(SWEEP_SECONDS * fps)


def sweep_frames(fps: float) -> Iterator[FaceControls]:
    """The sweep sampled at ``fps``: frame ``i`` shows time ``i / fps``."""
    for i in range(sweep_frame_count(fps)):
        yield sweep_controls(i / fps)
