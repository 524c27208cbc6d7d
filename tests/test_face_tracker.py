"""Closed loop for the webcam tracker: render the astronaut with known FaceControls using the
mesh engine, track the frames as video, and compare the recovered controls with the truth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from engines.controls import FaceControls
from engines.face.landmarker import FaceLandmarker, FaceLandmarks
from engines.face.tracker import FaceTracker, Neutral, controls_from_face, mirrored
from engines.motion.smoothing import ControlsSmoother, OneEuroFilter
from engines.renderer import Renderer, create_renderer

FPS = 25
STEP_MS = 1000 // FPS


@pytest.fixture(scope="module")
def mesh(astronaut: np.ndarray, landmarker: FaceLandmarker) -> tuple[Renderer, object]:
    renderer = create_renderer("mesh")
    return renderer, renderer.prepare(astronaut, landmarker.detect_all(astronaut)[0])


def render_clip(
    mesh: tuple[Renderer, object], clip: Sequence[FaceControls], noise: float = 0.0
) -> list[np.ndarray]:
    """Frames for ``clip``; ``noise`` adds seeded Gaussian sensor noise (grey levels)."""
    renderer, prepared = mesh
    rng = np.random.default_rng(7)
    frames = []
    for controls in clip:
        frame = renderer.render(prepared, controls)
        if noise:
            noisy = frame + rng.normal(0.0, noise, frame.shape)
            frame = np.clip(noisy, 0, 255).astype(np.uint8)
        frames.append(frame)
    return frames


def track(frames: Sequence[np.ndarray]) -> list[FaceLandmarks | None]:
    """Each frame tracked as 25 fps video by a fresh FaceTracker."""
    with FaceTracker() as tracker:
        return [tracker.track(f, (i + 1) * STEP_MS) for i, f in enumerate(frames)]


def recovered(mesh: tuple[Renderer, object], clip: Sequence[FaceControls]) -> list[FaceControls]:
    """Raw controls of every frame of ``clip``, calibrated on its third frame (unmirrored).

    The first frames are where mediapipe's tracker settles after its detector found the face
    (up to ~0.9 degrees per frame); every clip starts with at least three neutral frames.
    """
    faces = track(render_clip(mesh, clip))
    assert all(f is not None for f in faces)
    neutral = Neutral.from_face(faces[2])  # type: ignore[arg-type]
    return [controls_from_face(f, neutral, mirror=False) for f in faces]  # type: ignore[arg-type]


def series(controls: Sequence[FaceControls], name: str) -> np.ndarray:
    return np.array([getattr(c, name) for c in controls])


def events(values: np.ndarray, threshold: float = 0.5) -> int:
    """How many times ``values`` rises above ``threshold``."""
    above = values > threshold
    return int(np.count_nonzero(above[1:] & ~above[:-1]) + above[0])


@pytest.mark.parametrize(("name", "amplitude"), [("head_yaw", 20.0), ("head_pitch", 12.0)])
def test_head_sweeps_are_recovered(
    mesh: tuple[Renderer, object], name: str, amplitude: float
) -> None:
    truth = np.concatenate([np.zeros(3), amplitude * np.sin(np.linspace(0, 2 * np.pi, 40))])
    out_c = recovered(mesh, [FaceControls(**{name: v}) for v in truth])
    out = series(out_c, name)
    rms = float(np.sqrt(np.mean((out - truth) ** 2)))
    assert rms <= 5.0, f"{name} RMS error {rms:.2f} deg"
    assert np.corrcoef(out, truth)[0, 1] >= 0.98
    # Smoothing must not add enough lag to break the bound (a 1.6 s sweep, up to 80 deg/s).
    smoother = ControlsSmoother()
    smoothed = np.array([getattr(smoother.filter(i / FPS, c), name) for i, c in enumerate(out_c)])
    assert float(np.sqrt(np.mean((smoothed - truth) ** 2))) <= 5.0


def test_every_blink_is_detected_once(mesh: tuple[Renderer, object]) -> None:
    closed = np.zeros(60, bool)
    for start in (6, 18, 31, 45):
        closed[start : start + 4] = True
    clip = [FaceControls(blink_left=float(c), blink_right=float(c)) for c in closed]
    out = recovered(mesh, clip)
    smoother = ControlsSmoother()
    smoothed = [smoother.filter(i / FPS, c) for i, c in enumerate(out)]
    for side in ("blink_left", "blink_right"):
        assert events(series(out, side)) == 4, series(out, side).round(2)
        assert events(series(smoothed, side)) == 4, series(smoothed, side).round(2)
        assert series(out, side)[~closed].max() < 0.5


def test_jaw_follows_the_truth(mesh: tuple[Renderer, object]) -> None:
    truth = 0.4 - 0.4 * np.cos(np.linspace(0, 4 * np.pi, 50))
    out = series(recovered(mesh, [FaceControls(jaw_open=v) for v in truth]), "jaw_open")
    assert np.corrcoef(out, truth)[0, 1] >= 0.8
    assert out.max() >= 0.5


def test_smile_rises(mesh: tuple[Renderer, object]) -> None:
    truth = np.concatenate([np.zeros(3), np.linspace(0, 0.8, 15), np.full(3, 0.8)])
    out = series(recovered(mesh, [FaceControls(smile=v) for v in truth]), "smile")
    assert out[-3:].mean() - out[:3].mean() >= 0.15
    assert np.corrcoef(out, truth)[0, 1] >= 0.8


def test_static_face_is_steady_after_smoothing(mesh: tuple[Renderer, object]) -> None:
    faces = track(render_clip(mesh, [FaceControls()] * 55, noise=3.0))
    assert all(f is not None for f in faces)
    faces = faces[5:]  # after the tracker settled (see ``recovered``)
    neutral = Neutral.from_face(faces[0])  # type: ignore[arg-type]
    smoother = ControlsSmoother()
    out = [
        smoother.filter(i / FPS, controls_from_face(f, neutral))  # type: ignore[arg-type]
        for i, f in enumerate(faces)
    ]
    angles = np.array([[c.head_yaw, c.head_pitch, c.head_roll] for c in out])
    assert np.abs(np.diff(angles, axis=0)).max() < 0.3
    assert np.abs(np.diff(series(out, "jaw_open"))).max() < 0.02
    assert np.abs(angles).max() < 2.0


def test_lost_face_gives_none_and_tracking_resumes(mesh: tuple[Renderer, object]) -> None:
    frames = render_clip(mesh, [FaceControls(head_yaw=10.0)] * 24)
    for i in range(8, 14):
        frames[i] = np.zeros_like(frames[i])
    faces = track(frames)
    assert all(faces[i] is None for i in range(8, 14))
    assert all(f is not None for f in faces[:8] + faces[16:])
    neutral = Neutral.from_face(faces[0])  # type: ignore[arg-type]
    back = controls_from_face(faces[-1], neutral, mirror=False)  # type: ignore[arg-type]
    assert abs(back.head_yaw) < 2.0


def test_neutral_calibration_removes_a_resting_open_mouth(mesh: tuple[Renderer, object]) -> None:
    faces = track(render_clip(mesh, [FaceControls()] * 3 + [FaceControls(jaw_open=0.3)] * 12))
    assert all(f is not None for f in faces)
    closed = Neutral.from_face(faces[2])  # type: ignore[arg-type]
    resting = Neutral.average(faces[6:9])  # type: ignore[arg-type]
    rest = [controls_from_face(f, resting).jaw_open for f in faces[9:]]  # type: ignore[arg-type]
    uncalibrated = [controls_from_face(f, closed).jaw_open for f in faces[9:]]  # type: ignore[arg-type]
    assert max(rest) < 0.05
    assert min(uncalibrated) > 0.15


def test_mirroring_swaps_sides(mesh: tuple[Renderer, object]) -> None:
    clip = [FaceControls()] * 3 + [FaceControls(head_yaw=15.0, blink_left=1.0)] * 4
    faces = track(render_clip(mesh, clip))
    neutral = Neutral.from_face(faces[0])  # type: ignore[arg-type]
    direct = controls_from_face(faces[-1], neutral, mirror=False)  # type: ignore[arg-type]
    mirror = controls_from_face(faces[-1], neutral)  # type: ignore[arg-type]
    assert mirror == mirrored(direct).clamped()
    assert direct.head_yaw > 10 and direct.blink_left > 0.5
    assert mirror.head_yaw < -10 and mirror.blink_right > 0.5


def test_timestamps_must_increase(astronaut: np.ndarray) -> None:
    with FaceTracker() as tracker:
        tracker.track(astronaut, 40)
        with pytest.raises(ValueError, match="increase"):
            tracker.track(astronaut, 40)
        with pytest.raises(ValueError):
            tracker.track(astronaut[..., 0], 80)
    with pytest.raises(RuntimeError):
        tracker.track(astronaut, 120)


def test_one_euro_keeps_a_constant() -> None:
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    assert all(f(i / 30, 3.25) == 3.25 for i in range(50))


def test_one_euro_follows_a_step_quickly_with_beta() -> None:
    fast, slow = OneEuroFilter(1.0, beta=5.0), OneEuroFilter(1.0, beta=0.0)
    out_fast = [fast(i / 30, 0.0 if i < 10 else 1.0) for i in range(20)]
    out_slow = [slow(i / 30, 0.0 if i < 10 else 1.0) for i in range(20)]
    assert out_fast[13] > 0.9  # within three samples of the step
    assert out_slow[13] < out_fast[13]


def test_one_euro_reduces_noise_and_resets() -> None:
    rng = np.random.default_rng(1)
    noisy = 5.0 + rng.normal(0.0, 1.0, 300)
    f = OneEuroFilter(min_cutoff=0.5, beta=0.01)
    out = np.array([f(i / 30, v) for i, v in enumerate(noisy)])
    assert out[30:].std() < 0.35 * noisy[30:].std()
    assert abs(out[30:].mean() - 5.0) < 0.3
    f.reset()
    assert f(100.0, -2.0) == -2.0
