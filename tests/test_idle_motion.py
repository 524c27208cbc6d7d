"""Idle motion: deterministic, pure in time, realistic blinks, small smooth head and gaze motion."""

from __future__ import annotations

import numpy as np
import pytest

from engines.controls import FaceControls
from engines.motion import IdleMotion

FPS = 25
TEN_MINUTES = 600.0


def _col(name: str) -> int:
    return FaceControls.NAMES.index(name)


def _track(idle: IdleMotion, seconds: float, fps: float = FPS) -> np.ndarray:
    """(frames, fields) controls sampled at ``fps`` from t = 0."""
    return np.array([idle.controls_at(i / fps).as_array() for i in range(round(seconds * fps))])


@pytest.fixture(scope="module")
def ten_minutes() -> np.ndarray:
    return _track(IdleMotion(seed=7), TEN_MINUTES)


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges where ``active`` is true."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def test_same_seed_same_motion_and_different_seeds_differ() -> None:
    times = np.linspace(0.0, 60.0, 601)
    a = [IdleMotion(seed=3).controls_at(t) for t in times]
    b = [IdleMotion(seed=3).controls_at(t) for t in times]
    c = [IdleMotion(seed=4).controls_at(t) for t in times]
    assert a == b
    assert a != c


def test_out_of_order_and_repeated_queries_equal_in_order() -> None:
    times = np.arange(0.0, 200.0, 0.37)
    in_order = [IdleMotion(seed=11).controls_at(t) for t in times]
    idle = IdleMotion(seed=11)
    shuffled = np.random.default_rng(0).permutation(len(times))
    got = {int(i): idle.controls_at(times[i]) for i in shuffled}
    assert [got[i] for i in range(len(times))] == in_order
    assert idle.controls_at(times[5]) == in_order[5]


def test_hours_in_and_negative_times_are_pure_too() -> None:
    idle = IdleMotion(seed=2)
    far = [idle.controls_at(36_000.0 + i / FPS) for i in range(50)]
    early = [idle.controls_at(-5.0 + i / FPS) for i in range(50)]
    fresh = IdleMotion(seed=2)
    assert early == [fresh.controls_at(-5.0 + i / FPS) for i in range(50)]
    assert far == [fresh.controls_at(36_000.0 + i / FPS) for i in range(50)]


def test_blink_statistics_over_ten_minutes(ten_minutes: np.ndarray) -> None:
    left = ten_minutes[:, _col("blink_left")]
    right = ten_minutes[:, _col("blink_right")]
    blinks = _runs(left > 0.05)
    onsets = np.array([start for start, _ in blinks]) / FPS
    intervals = np.diff(onsets)
    assert 2.5 <= intervals.mean() <= 6.0
    assert intervals.min() >= 0.4
    assert intervals.max() <= 9.0
    assert all(left[a:b].max() >= 0.95 for a, b in blinks)
    assert all((b - a) / FPS <= 0.25 for a, b in blinks)
    right_blinks = _runs(right > 0.05)
    assert len(right_blinks) == len(blinks)
    assert all(abs(a - ra) <= 1 for (a, _), (ra, _) in zip(blinks, right_blinks, strict=True))
    assert all(right[a:b].max() >= 0.95 for a, b in right_blinks)
    open_fraction = np.mean(np.maximum(left, right) < 0.1)
    assert open_fraction > 0.9


def test_some_blinks_come_as_doubles(ten_minutes: np.ndarray) -> None:
    onsets = np.array([a for a, _ in _runs(ten_minutes[:, _col("blink_left")] > 0.05)]) / FPS
    doubles = np.sum(np.diff(onsets) < 1.0)
    assert 0.03 * len(onsets) <= doubles <= 0.2 * len(onsets)


def test_amplitudes_stay_small(ten_minutes: np.ndarray) -> None:
    for name in ("head_yaw", "head_pitch", "head_roll"):
        angle = ten_minutes[:, _col(name)]
        assert np.abs(angle).max() <= 2.0, name
        assert angle.std() > 0.1, f"{name} should move a little"
    assert np.abs(ten_minutes[:, _col("head_x")]).max() <= 0.01
    assert np.abs(ten_minutes[:, _col("head_y")]).max() <= 0.0045
    assert np.abs(ten_minutes[:, _col("head_scale")] - 1.0).max() <= 0.005
    gaze = np.hypot(ten_minutes[:, _col("gaze_x")], ten_minutes[:, _col("gaze_y")])
    assert gaze.max() <= 0.25 + 1e-9
    assert np.median(gaze) < 0.12, "gaze should mostly be near the centre"
    for name in ("jaw_open", "mouth_wide", "mouth_round", "lip_press", "smile"):
        assert np.all(ten_minutes[:, _col(name)] == 0.0), name
    assert np.all(ten_minutes[:, _col("brow_left")] == 0.0)


def test_breathing_rate(ten_minutes: np.ndarray) -> None:
    head_y = ten_minutes[:, _col("head_y")]
    spectrum = np.abs(np.fft.rfft(head_y - head_y.mean()))
    freqs = np.fft.rfftfreq(len(head_y), d=1.0 / FPS)
    breaths_per_minute = 60.0 * freqs[np.argmax(spectrum)]
    assert 12.0 <= breaths_per_minute <= 16.0


def test_saccades_jump_between_fixations(ten_minutes: np.ndarray) -> None:
    gaze = ten_minutes[:, [_col("gaze_x"), _col("gaze_y")]]
    moving = np.linalg.norm(np.diff(gaze, axis=0), axis=1) > 1e-6
    saccades = _runs(moving)
    assert all(b - a <= 2 for a, b in saccades), "a saccade lasts about 40 ms"
    fixations = np.diff([a for a, _ in saccades]) / FPS
    assert fixations.min() >= 0.35
    assert fixations.max() <= 2.6
    assert 0.7 <= fixations.mean() <= 1.8


def test_head_moves_smoothly(ten_minutes: np.ndarray) -> None:
    for name in ("head_yaw", "head_pitch", "head_roll"):
        assert np.abs(np.diff(ten_minutes[:, _col(name)])).max() <= 0.5, name


def test_zero_energy_keeps_head_and_gaze_still_but_blinks() -> None:
    track = _track(IdleMotion(seed=5, energy=0.0), 30.0)
    still = [n for n in FaceControls.NAMES if n not in ("blink_left", "blink_right")]
    neutral = FaceControls().as_array()
    for name in still:
        assert np.all(track[:, _col(name)] == neutral[_col(name)]), name
    assert track[:, _col("blink_left")].max() >= 0.95


def test_energy_scales_amplitude() -> None:
    calm = _track(IdleMotion(seed=5, energy=0.5), 60.0)
    full = _track(IdleMotion(seed=5), 60.0)
    yaw = _col("head_yaw")
    np.testing.assert_allclose(calm[:, yaw], 0.5 * full[:, yaw], atol=1e-12)


@pytest.mark.parametrize("energy", [-0.1, float("nan"), float("inf")])
def test_bad_energy_is_refused(energy: float) -> None:
    with pytest.raises(ValueError, match="energy"):
        IdleMotion(energy=energy)


def test_bad_time_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        IdleMotion().controls_at(float("nan"))
