"""The motion mixer: field routing per policy, webcam weight, face-presence easing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engines.controls import NEUTRAL, FaceControls
from engines.motion.layers import MOUTH_FIELDS
from engines.motion.mixer import POLICIES, FacePresence, mix

FACE_FIELDS = tuple(n for n in FaceControls.NAMES if n not in MOUTH_FIELDS)

IDLE = FaceControls(head_yaw=2.0, head_pitch=-1.0, blink_left=0.3, gaze_x=0.1, jaw_open=0.05)
SPEECH = FaceControls(jaw_open=0.6, mouth_wide=0.4, mouth_round=0.2, lip_press=0.1, smile=0.1)
WEBCAM = FaceControls(
    head_yaw=20.0,
    head_pitch=10.0,
    head_roll=-5.0,
    head_x=0.1,
    head_y=-0.05,
    head_scale=1.1,
    jaw_open=0.9,
    mouth_wide=-0.5,
    mouth_round=0.7,
    lip_press=0.4,
    smile=0.8,
    brow_left=0.5,
    brow_right=-0.4,
    blink_left=1.0,
    blink_right=0.9,
    gaze_x=-0.6,
    gaze_y=0.3,
)


def fields(c: FaceControls, names: tuple[str, ...]) -> dict[str, float]:
    return {n: getattr(c, n) for n in names}


def test_audio_is_idle_with_speech_mouth_and_ignores_webcam() -> None:
    out = mix("audio", IDLE, SPEECH, WEBCAM, 1.0)
    assert fields(out, MOUTH_FIELDS) == pytest.approx(fields(SPEECH, MOUTH_FIELDS))
    assert out.smile == pytest.approx(IDLE.smile + SPEECH.smile)
    others = tuple(n for n in FACE_FIELDS if n != "smile")
    assert fields(out, others) == pytest.approx(fields(IDLE, others))
    assert mix("audio", IDLE, SPEECH, None, 0.0) == out


def test_webcam_weight_one_is_the_webcam_entirely() -> None:
    out = mix("webcam", IDLE, SPEECH, WEBCAM, 1.0)
    assert out.as_array() == pytest.approx(WEBCAM.as_array())


@pytest.mark.parametrize("webcam", [WEBCAM, None])
def test_webcam_weight_zero_is_idle_with_closed_mouth(webcam: FaceControls | None) -> None:
    out = mix("webcam", IDLE, SPEECH, webcam, 0.0)
    assert fields(out, FACE_FIELDS) == pytest.approx(fields(IDLE, FACE_FIELDS))
    assert fields(out, MOUTH_FIELDS) == pytest.approx(fields(NEUTRAL, MOUTH_FIELDS))


def test_webcam_half_weight_is_halfway() -> None:
    out = mix("webcam", IDLE, SPEECH, WEBCAM, 0.5)
    rest = IDLE.replace(**{n: getattr(NEUTRAL, n) for n in MOUTH_FIELDS})
    assert out.as_array() == pytest.approx((rest.as_array() + WEBCAM.as_array()) / 2)


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_hybrid_routes_face_to_webcam_and_mouth_to_speech(weight: float) -> None:
    out = mix("hybrid", IDLE, SPEECH, WEBCAM, weight)
    assert fields(out, MOUTH_FIELDS) == pytest.approx(fields(SPEECH, MOUTH_FIELDS))
    expected = IDLE.lerp(WEBCAM, weight)
    assert fields(out, FACE_FIELDS) == pytest.approx(fields(expected, FACE_FIELDS))


def test_hybrid_ignores_the_webcam_mouth() -> None:
    other = WEBCAM.replace(jaw_open=0.0, mouth_wide=1.0, mouth_round=0.0, lip_press=1.0)
    assert mix("hybrid", IDLE, SPEECH, WEBCAM, 1.0) == mix("hybrid", IDLE, SPEECH, other, 1.0)


@pytest.mark.parametrize("policy", POLICIES)
def test_bad_input_never_gives_nan_or_out_of_range(policy: str) -> None:
    nan_cam = FaceControls(head_yaw=math.nan, jaw_open=math.inf, smile=-math.inf)
    for weight in (math.nan, -1.0, 2.0, 0.5):
        out = mix(policy, IDLE, SPEECH, nan_cam, weight)  # type: ignore[arg-type]
        values = out.as_array()
        assert np.all(np.isfinite(values))
        assert out == out.clamped()


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="hybrid"):
        mix("puppet", IDLE, SPEECH, WEBCAM, 1.0)  # type: ignore[arg-type]


def run(
    presence: FacePresence, t0: float, t1: float, found: bool, dt: float = 1 / 30
) -> list[tuple[float, float]]:
    """(t, weight) pairs at ticks dt apart from t0 (exclusive) to t1 (inclusive)."""
    out = []
    t = t0
    while t < t1 - 1e-9:
        t = min(t + dt, t1)
        out.append((t, presence.update(t, found)))
    return out


def test_presence_eases_in_and_out_within_300_ms() -> None:
    p = FacePresence()
    assert p.update(0.0, True) == 0.0
    weights = [w for _, w in run(p, 0.0, 0.3, True)]
    assert weights == sorted(weights)
    assert 0.0 < weights[0] < 0.1
    assert weights[-1] == pytest.approx(1.0)
    assert all(w == 1.0 for _, w in run(p, 0.3, 1.0, True))
    weights = [w for _, w in run(p, 1.0, 1.3, False)]
    assert weights == sorted(weights, reverse=True)
    assert weights[0] > 0.9
    assert weights[-1] == pytest.approx(0.0)
    assert all(w == 0.0 for _, w in run(p, 1.3, 2.0, False))


def test_presence_is_halfway_at_half_the_ease_time() -> None:
    p = FacePresence(initial=1.0)
    assert p.update(0.0, False) == 1.0
    assert p.update(0.15, False) == pytest.approx(0.5)


def test_presence_reverses_midway_and_tolerates_odd_times() -> None:
    p = FacePresence(ease_seconds=0.3, initial=1.0)
    p.update(0.0, False)
    down = p.update(0.1, False)
    assert 0.5 < down < 1.0
    up = p.update(0.15, True)  # climbs back from where it was: no jump
    assert down < up < 1.0
    assert p.update(0.1, True) == up  # time going backwards changes nothing
    assert p.update(math.nan, False) == up
    assert p.update(10.0, False) == 0.0
    p.reset(1.0)
    assert p.weight == 1.0


def test_presence_rejects_a_non_positive_ease() -> None:
    with pytest.raises(ValueError):
        FacePresence(ease_seconds=0.0)
