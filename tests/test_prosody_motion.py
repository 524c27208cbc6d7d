"""Prosody motion (nods and brow raises on stressed syllables) and layering motion sources."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from engines.controls import NEUTRAL, FaceControls
from engines.motion import ProsodyMotion, layer, with_mouth

FPS = 25
SPEECH = (1.0, 7.0)  # seconds; silence before and after
SECONDS = 9.0
PROSODY_FIELDS = ("head_pitch", "head_yaw", "head_roll", "brow_left", "brow_right")


@dataclass(frozen=True)
class Track:
    times: np.ndarray
    loudness: np.ndarray  # dBFS per frame
    voiced: np.ndarray
    strong_peaks: np.ndarray  # seconds


def _syllables(fps: float = FPS) -> Track:
    """Syllable bumps at 4 Hz over a -45 dBFS floor, every third 10 dB stronger."""
    times = np.arange(round(SECONDS * fps)) / fps
    centres = np.arange(SPEECH[0] + 0.1, SPEECH[1] - 0.1, 0.25)
    heights = np.where(np.arange(len(centres)) % 3 == 2, 30.0, 20.0)
    bumps = heights * np.exp(-(((times[:, None] - centres) / 0.08) ** 2))
    voiced = (times >= SPEECH[0]) & (times < SPEECH[1])
    loudness = np.where(voiced, -45.0 + bumps.sum(axis=1), -70.0)
    return Track(times, loudness, voiced, centres[heights > 25.0])


def _run(track: Track, seed: int = 0, fps: float = FPS) -> np.ndarray:
    motion = ProsodyMotion(fps, seed=seed)
    frames = zip(track.times, track.loudness, track.voiced, strict=True)
    return np.array([motion.update(t, db, bool(v)).as_array() for t, db, v in frames])


def _col(name: str) -> int:
    return FaceControls.NAMES.index(name)


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges where ``active`` is true."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


@pytest.fixture(scope="module")
def syllables() -> Track:
    return _syllables()


@pytest.fixture(scope="module")
def motion(syllables: Track) -> np.ndarray:
    return _run(syllables, seed=1)


def test_nods_follow_the_strong_peaks(syllables: Track, motion: np.ndarray) -> None:
    nods = _runs(motion[:, _col("head_pitch")] < -0.05)
    # A nod starts (at 0) on the frame before its first visibly lowered frame.
    starts = np.array([syllables.times[a - 1] for a, _ in nods])
    assert len(nods) == len(syllables.strong_peaks)
    lag = starts - syllables.strong_peaks
    assert np.all((lag >= 0.0) & (lag <= 0.15)), lag
    for a, b in nods:
        assert -4.0 <= motion[a:b, _col("head_pitch")].min() <= -1.8
        assert 0.25 <= (b - a + 1) / FPS <= 0.45


@pytest.mark.parametrize("fps", [24.0, 30.0])
def test_nods_follow_the_strong_peaks_at_other_frame_rates(fps: float) -> None:
    track = _syllables(fps)
    pitch = _run(track, seed=1, fps=fps)[:, _col("head_pitch")]
    starts = np.array([track.times[a - 1] for a, _ in _runs(pitch < -0.05)])
    assert len(starts) == len(track.strong_peaks)
    assert np.all(np.abs(starts - track.strong_peaks - 0.075) <= 0.075)


def test_brows_rise_on_every_second_or_third_stress(motion: np.ndarray) -> None:
    left, right = motion[:, _col("brow_left")], motion[:, _col("brow_right")]
    np.testing.assert_array_equal(left, right)
    nod_starts = {a for a, _ in _runs(motion[:, _col("head_pitch")] < -0.05)}
    raises = _runs(left > 0.01)
    assert len(nod_starts) / 3 - 1 <= len(raises) <= len(nod_starts) / 2 + 1
    for a, b in raises:
        assert a in nod_starts, "a brow raise comes with a nod"
        assert 0.28 <= left[a:b].max() <= 0.5
        assert (b - a + 1) / FPS <= 0.5


def test_silence_is_neutral_and_speech_end_returns_to_neutral(
    syllables: Track, motion: np.ndarray
) -> None:
    before = syllables.times < SPEECH[0]
    after = syllables.times >= SPEECH[1] + 0.6
    neutral = NEUTRAL.as_array()
    np.testing.assert_array_equal(motion[before], np.broadcast_to(neutral, motion[before].shape))
    np.testing.assert_allclose(motion[after], np.broadcast_to(neutral, motion[after].shape))


def test_only_head_angles_and_brows_move(motion: np.ndarray) -> None:
    for name in FaceControls.NAMES:
        if name not in PROSODY_FIELDS:
            assert np.all(motion[:, _col(name)] == getattr(NEUTRAL, name)), name


def test_continuous_speech_adds_slow_head_motion(syllables: Track, motion: np.ndarray) -> None:
    talking = (syllables.times > 3.0) & (syllables.times < SPEECH[1])
    for name in ("head_yaw", "head_roll"):
        angle = motion[talking, _col(name)]
        assert 0.1 < np.ptp(angle) <= 4.0, name
        assert np.abs(np.diff(motion[:, _col(name)])).max() < 0.4, f"{name} moves slowly"


def test_noise_without_speech_or_flat_speech_never_nods() -> None:
    rng = np.random.default_rng(0)
    times = np.arange(200) / FPS
    noise = ProsodyMotion(FPS)
    loud = [noise.update(t, -20.0 + 15.0 * rng.random(), False) for t in times]
    assert all(c.is_neutral() for c in loud)
    flat = ProsodyMotion(FPS)
    steady = [flat.update(t, -30.0 + rng.uniform(-0.5, 0.5), True) for t in times]
    assert all(c.head_pitch == 0.0 and c.brow_left == 0.0 for c in steady)


def test_deterministic_for_a_seed_and_after_reset(syllables: Track, motion: np.ndarray) -> None:
    np.testing.assert_array_equal(_run(syllables, seed=1), motion)
    assert not np.array_equal(_run(syllables, seed=2), motion)
    again = ProsodyMotion(FPS, seed=1)
    for t, db, v in zip(
        syllables.times[:100], syllables.loudness[:100], syllables.voiced[:100], strict=True
    ):
        again.update(t, db, bool(v))
    again.reset()
    frames = zip(syllables.times, syllables.loudness, syllables.voiced, strict=True)
    replay = np.array([again.update(t, db, bool(v)).as_array() for t, db, v in frames])
    np.testing.assert_array_equal(replay, motion)


def test_time_must_not_go_back() -> None:
    motion = ProsodyMotion(FPS)
    motion.update(1.0, -30.0, True)
    with pytest.raises(ValueError, match="time order"):
        motion.update(0.5, -30.0, True)


def test_silence_as_minus_infinity_and_nan_are_accepted() -> None:
    motion = ProsodyMotion(FPS)
    assert motion.update(0.0, float("-inf"), True).head_pitch == 0.0
    assert motion.update(0.04, float("nan"), True).head_pitch == 0.0


@pytest.mark.parametrize("fps", [0.0, -25.0, float("nan")])
def test_bad_fps_is_refused(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        ProsodyMotion(fps)


# Layering


def test_layer_adds_offsets_and_multiplies_scale() -> None:
    base = FaceControls(head_yaw=10.0, head_scale=1.05, jaw_open=0.2, gaze_x=0.1)
    a = FaceControls(head_yaw=5.0, head_pitch=-2.0, head_scale=1.02, blink_left=0.5)
    b = FaceControls(head_yaw=-1.0, head_scale=0.98, gaze_x=0.2)
    got = layer(base, a, b)
    assert got.head_yaw == pytest.approx(14.0)
    assert got.head_pitch == pytest.approx(-2.0)
    assert got.head_scale == pytest.approx(1.05 * 1.02 * 0.98)
    assert got.jaw_open == pytest.approx(0.2)
    assert got.blink_left == pytest.approx(0.5)
    assert got.gaze_x == pytest.approx(0.3)


def test_layer_clamps_and_neutral_offsets_change_nothing() -> None:
    base = FaceControls(head_yaw=30.0, head_scale=1.1, blink_right=0.8)
    got = layer(base, FaceControls(head_yaw=10.0, head_scale=1.1, blink_right=0.5))
    assert got.head_yaw == 35.0
    assert got.head_scale == 1.15
    assert got.blink_right == 1.0
    assert layer(base) == base
    assert layer(base, NEUTRAL, NEUTRAL) == base
    assert layer(FaceControls(head_yaw=float("nan"))) == NEUTRAL


def test_with_mouth_takes_the_mouth_and_adds_its_smile() -> None:
    face = FaceControls(head_yaw=5.0, jaw_open=0.9, lip_press=0.3, smile=0.4, blink_left=1.0)
    mouth = FaceControls(jaw_open=0.3, mouth_wide=0.5, mouth_round=0.2, smile=0.2, head_yaw=9.0)
    got = with_mouth(face, mouth)
    assert (got.jaw_open, got.mouth_wide, got.mouth_round, got.lip_press) == (0.3, 0.5, 0.2, 0.0)
    assert got.smile == pytest.approx(0.6)
    assert (got.head_yaw, got.blink_left) == (5.0, 1.0)
    assert with_mouth(face, FaceControls(smile=0.9)).smile == 1.0
