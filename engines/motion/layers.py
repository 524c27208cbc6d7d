"""Combining motion sources: offsets from neutral add up, head scale multiplies."""

from __future__ import annotations

from engines.controls import NEUTRAL, FaceControls

_SCALE = FaceControls.NAMES.index("head_scale")
MOUTH_FIELDS = ("jaw_open", "mouth_wide", "mouth_round", "lip_press")


def layer(base: FaceControls, *offsets: FaceControls) -> FaceControls:
    """``base`` plus each offset's difference from NEUTRAL (head_scale multiplied), clamped."""
    values = base.as_array()
    neutral = NEUTRAL.as_array()
    for offset in offsets:
        o = offset.as_array()
        scale = values[_SCALE] * o[_SCALE]
        values += o - neutral
        values[_SCALE] = scale
    return FaceControls.from_array(values).clamped()


def with_mouth(controls: FaceControls, mouth: FaceControls) -> FaceControls:
    """``controls`` with the mouth shape of ``mouth``; mouth's smile offset is added on top."""
    shape = {name: getattr(mouth, name) for name in MOUTH_FIELDS}
    smile = controls.smile + mouth.smile - NEUTRAL.smile
    return controls.replace(**shape, smile=smile).clamped()
