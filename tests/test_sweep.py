"""The demo sweep: neutral at both ends, reaches every target, stays in range, moves smoothly."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_app.sweep import (
    SEGMENTS,
    SWEEP_SECONDS,
    segment_at,
    sweep_controls,
    sweep_frame_count,
    sweep_frames,
)
from engines.controls import FaceControls

FPS = 25


def _segment_starts() -> list[float]:
    starts, t = [], 0.0
    for segment in SEGMENTS:
        starts.append(t)
        t += segment.seconds
    return starts


def test_length_is_a_short_demo() -> None:
    assert 12.0 <= SWEEP_SECONDS <= 16.0
    assert sweep_frame_count(FPS) == round(SWEEP_SECONDS * FPS)
    assert len(list(sweep_frames(FPS))) == sweep_frame_count(FPS)


def test_starts_and_ends_neutral() -> None:
    assert sweep_controls(0.0).is_neutral()
    assert sweep_controls(SWEEP_SECONDS).is_neutral()
    assert sweep_controls(-1.0).is_neutral()
    assert sweep_controls(SWEEP_SECONDS + 5.0).is_neutral()
    assert sweep_controls(SWEEP_SECONDS - 1e-6).is_neutral(tol=1e-6)


def test_every_segment_starts_and_ends_neutral() -> None:
    for start, segment in zip(_segment_starts(), SEGMENTS, strict=True):
        assert sweep_controls(start).is_neutral(), segment.name
        assert sweep_controls(start + segment.seconds - 1e-6).is_neutral(tol=1e-6), segment.name


@pytest.mark.parametrize("index", range(len(SEGMENTS)), ids=[s.name for s in SEGMENTS])
def test_every_segment_reaches_its_target(index: int) -> None:
    segment = SEGMENTS[index]
    middle = _segment_starts()[index] + segment.seconds / 2
    assert segment_at(middle) == (segment, pytest.approx(segment.seconds / 2))
    np.testing.assert_allclose(
        sweep_controls(middle).as_array(), segment.target.as_array(), atol=1e-9
    )
    assert not segment.target.is_neutral()


def test_covers_the_named_motions() -> None:
    names = {s.name for s in SEGMENTS}
    assert {"look left", "look right", "blink", "wink left", "wink right", "smile"} <= names
    assert {"ah", "ee", "oo", "mm"} <= names
    by_name = {s.name: s.target for s in SEGMENTS}
    assert by_name["look left"].head_yaw == -25.0 and by_name["look right"].head_yaw == 25.0
    assert by_name["ah"].jaw_open == pytest.approx(0.8)
    assert by_name["oo"].mouth_round == pytest.approx(0.9)
    assert by_name["mm"].lip_press == 1.0
    moved = {n for s in SEGMENTS for n in FaceControls.NAMES if getattr(s.target, n) != 0.0}
    expected = set(FaceControls.NAMES) - {"head_x", "head_y", "head_scale"}
    assert expected <= moved


def test_values_stay_in_range() -> None:
    for controls in sweep_frames(FPS):
        assert controls == controls.clamped()


def test_motion_is_continuous_at_25_fps() -> None:
    frames = np.array([c.as_array() for c in sweep_frames(FPS)])
    span = np.array([high - low for low, high in FaceControls.RANGES.values()])
    biggest_step = np.abs(np.diff(frames, axis=0)).max(axis=0) / span
    # No control jumps more than a third of its range between two frames.
    assert biggest_step.max() < 1 / 3, dict(zip(FaceControls.NAMES, biggest_step, strict=True))
