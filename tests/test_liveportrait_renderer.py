"""The LivePortrait engine: crop, FaceControls mapping, ONNX Runtime back end, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.controls import FaceControls
from engines.errors import EngineUnavailable, PortraitError
from engines.face import topology as topo
from engines.face.landmarker import FaceLandmarker
from engines.liveportrait.backend import RENDER_NETWORKS
from engines.liveportrait.crop import CROP_SIZE, PasteBack, crop_image, face_crop, feathered_mask
from engines.liveportrait.keypoints import transform_keypoints
from engines.liveportrait.mapping import (
    NUM_KP,
    YAW_SIGN,
    KeypointDriver,
    Retargeting,
    SourceState,
    expression_delta,
    open_ratios,
    target_lip_ratio,
)
from engines.liveportrait.onnx_backend import OnnxRuntimeBackend
from engines.liveportrait.renderer import ONNX_ENV_VAR, LivePortraitRenderer
from engines.renderer import create_renderer

SOURCE = SourceState(
    kp=np.random.default_rng(0).uniform(-0.5, 0.5, (NUM_KP, 3)),
    pitch=3.0,
    yaw=-8.0,
    roll=2.0,
    exp=np.random.default_rng(1).normal(0, 0.01, (NUM_KP, 3)),
    t=np.array([0.01, -0.02, 0.0]),
    scale=1.4,
    eye_ratios=np.array([0.32, 0.30]),
    lip_ratio=0.05,
)


def _linear(seed: int, n_in: int, n_out: int):  # type: ignore[no-untyped-def]
    """A fixed random linear map standing in for a retargeting MLP (pure math under test)."""
    weights = np.random.default_rng(seed).normal(0, 0.05, (n_out, n_in))
    return lambda x: weights @ x


LINEAR = Retargeting(stitching=_linear(2, 126, 65), lip=_linear(3, 65, 63), eye=_linear(4, 66, 63))


# --- mapping -------------------------------------------------------------------------------


def test_neutral_controls_drive_the_source_keypoints_exactly() -> None:
    np.testing.assert_array_equal(
        KeypointDriver(SOURCE, LINEAR).keypoints(FaceControls()), SOURCE.keypoints()
    )
    assert not expression_delta(FaceControls()).any()
    assert target_lip_ratio(0.05, FaceControls()) == 0.05


def test_head_pose_edits_the_source_pose() -> None:
    zero = Retargeting(*(lambda x, n=n: np.zeros(n) for n in (65, 63, 63)))
    got = KeypointDriver(SOURCE, zero).keypoints(FaceControls(head_yaw=20.0, head_scale=1.1))
    s = SOURCE
    want = transform_keypoints(
        s.kp, s.pitch, s.yaw + YAW_SIGN * 20.0, s.roll, s.exp, s.t, s.scale * 1.1
    )
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_a_nose_in_front_turns_the_way_facecontrols_say() -> None:
    nose = SourceState(
        np.array([[0.0, 0.0, -0.5]] * NUM_KP),
        0,
        0,
        0,
        np.zeros((NUM_KP, 3)),
        np.zeros(3),
        1.0,
        np.array([0.3, 0.3]),
        0.0,
    )
    zero = Retargeting(*(lambda x, n=n: np.zeros(n) for n in (65, 63, 63)))
    right = KeypointDriver(nose, zero).keypoints(FaceControls(head_yaw=20.0))[0]
    up = KeypointDriver(nose, zero).keypoints(FaceControls(head_pitch=15.0))[0]
    assert right[0] > 0.1  # +yaw: the nose goes to the image right
    assert up[1] < -0.1  # +pitch: the nose goes up (y points down)


def test_lip_and_eye_deltas_are_relative_to_the_portrait() -> None:
    driver = KeypointDriver(SOURCE, LINEAR)
    x_s = driver.x_s
    np.testing.assert_allclose(driver.lip_delta(0.05), 0.0, atol=1e-15)
    opened = driver.lip_delta(target_lip_ratio(0.05, FaceControls(jaw_open=1.0)))
    assert np.abs(opened).max() > 1e-3
    assert target_lip_ratio(0.2, FaceControls(jaw_open=1.0, lip_press=1.0)) == 0.0
    wink = driver.eye_delta((1.0, 0.0))
    image_right = x_s[:, 0] > 0
    assert np.abs(wink[image_right]).max() > 0 and not wink[~image_right].any()


def test_expression_controls_move_the_editor_keypoints() -> None:
    smile = expression_delta(FaceControls(smile=1.0))
    assert smile[14, 1] < 0 and smile[20, 1] < 0  # mouth corners up
    frown = expression_delta(FaceControls(smile=-1.0))
    assert frown[14, 1] > 0 and abs(frown[14, 1]) < abs(smile[14, 1])
    gaze = expression_delta(FaceControls(gaze_x=1.0, gaze_y=1.0))
    assert gaze[11, 0] > 0 and gaze[15, 0] > 0 and gaze[11, 1] > 0
    assert expression_delta(FaceControls(brow_left=1.0, brow_right=1.0))[1, 1] > 0
    assert expression_delta(FaceControls(mouth_round=1.0))[14, 1] > 0


def test_stitching_is_zero_at_the_source_and_shifts_xy_only() -> None:
    x_s = SOURCE.keypoints()
    np.testing.assert_allclose(KeypointDriver(SOURCE, LINEAR).stitch(x_s), x_s, atol=1e-15)
    shift = Retargeting(
        stitching=lambda x: np.r_[np.zeros(63), x[63:65] * 0 + 0.1], lip=LINEAR.lip, eye=LINEAR.eye
    )
    moved = x_s + 0.01
    np.testing.assert_allclose(
        KeypointDriver(SOURCE, shift).stitch(moved), moved, atol=1e-15
    )  # same delta at x_s


def test_open_ratios_follow_the_face(astronaut: np.ndarray, landmarker: FaceLandmarker) -> None:
    face = landmarker.detect_all(astronaut)[0]
    eyes, lip = open_ratios(face.points[:, :2])
    assert np.all((eyes > 0.15) & (eyes < 0.6))
    closed = face.points[:, :2].copy()
    closed[374] = closed[386]  # the left eye's lids meet
    assert open_ratios(closed)[0][0] < 0.02 < open_ratios(closed)[0][1]
    assert 0.0 <= lip < 0.5


# --- crop and paste-back -------------------------------------------------------------------


def _rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("degrees", [0.0, 25.0])
def test_the_crop_centres_and_uprights_the_face(
    astronaut: np.ndarray, landmarker: FaceLandmarker, degrees: float
) -> None:
    portrait = _rotated(astronaut, degrees)
    face = landmarker.detect_all(portrait)[0]
    crop = face_crop(face)
    inside = crop.points_in_crop(face.points[:, :2])
    left_eye = inside[list(topo.LEFT_EYE_UPPER)].mean(0)
    right_eye = inside[list(topo.RIGHT_EYE_UPPER)].mean(0)
    assert abs(left_eye[1] - right_eye[1]) < 6  # eyes level whatever the head roll
    assert abs(inside[topo.NOSE_TIP, 0] - CROP_SIZE / 2) < 25
    face_height = inside[topo.CHIN, 1] - inside[list(topo.LEFT_BROW + topo.RIGHT_BROW), 1].min()
    assert 0.3 < face_height / CROP_SIZE < 0.5  # the face is about 1/2.3 of the crop
    redetected = landmarker.detect_all(crop_image(portrait, crop))
    assert redetected, "the crop must still show a face"


def test_paste_back_changes_only_the_feathered_crop(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    face = landmarker.detect_all(astronaut)[0]
    crop = face_crop(face)
    paste = PasteBack.for_portrait(astronaut, crop)
    grey = np.full((CROP_SIZE, CROP_SIZE, 3), 128, np.uint8)
    frame = paste(grey)
    x0, y0, x1, y1 = paste.box
    outside = np.ones(astronaut.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(frame[outside], astronaut[outside])
    centre = crop.to_portrait @ np.array([CROP_SIZE / 2, CROP_SIZE / 2, 1.0])
    assert np.all(frame[int(centre[1]), int(centre[0])] == 128)
    round_trip = paste(crop_image(astronaut, crop))
    assert np.abs(round_trip.astype(int) - astronaut).mean() < 2.0
    mask = feathered_mask()
    assert mask[0, 0] < 0.01 and mask[CROP_SIZE // 2, CROP_SIZE // 2] == 1.0


# --- the engine ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tiny_liveportrait_onnx: Path) -> LivePortraitRenderer:
    return LivePortraitRenderer(OnnxRuntimeBackend(tiny_liveportrait_onnx, threads=2))


def test_the_backend_reports_what_runs(engine: LivePortraitRenderer) -> None:
    assert engine.backend.providers == ["CPUExecutionProvider"]
    with pytest.raises(EngineUnavailable, match="None of the providers"):
        OnnxRuntimeBackend(Path("."), providers=("NoSuchExecutionProvider",))


def test_missing_models_say_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ONNX_ENV_VAR, str(tmp_path))
    with pytest.raises(EngineUnavailable) as info:
        create_renderer("liveportrait")
    assert "models fetch liveportrait" in str(info.value)
    assert "engines export liveportrait" in str(info.value)


def test_a_photo_without_a_face_is_refused(engine: LivePortraitRenderer) -> None:
    with pytest.raises(PortraitError):
        engine.prepare(np.full((256, 256, 3), 200, np.uint8))
    with pytest.raises(PortraitError, match="RGB"):
        engine.prepare(np.zeros((64, 64), np.uint8))


def test_onnx_engine_equals_the_pytorch_pipeline_end_to_end(
    engine: LivePortraitRenderer, astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    pytest.importorskip("torch")
    from engines.liveportrait.network_set import random_networks
    from tests.liveportrait_reference import reference_face

    nets = random_networks(seed=1, tiny=True)  # the weights the fixture exported
    face = landmarker.detect_all(astronaut)[0]
    prepared = engine.prepare(astronaut, face)
    controls = FaceControls(
        head_yaw=15, head_pitch=-5, jaw_open=0.8, blink_left=1, smile=0.5, gaze_x=0.5
    )
    got = engine.generate(prepared, controls)
    want = reference_face(nets, astronaut, face, controls)
    assert got.shape == want.shape == (3, CROP_SIZE, CROP_SIZE)
    assert np.abs(got - want).max() <= 1e-3
    neutral = engine.generate(prepared, FaceControls())
    assert np.abs(neutral - got).max() > 1e-3  # the controls reach the picture


def test_the_runtime_needs_no_torch() -> None:
    """Users of onnxruntime-gpu run the engine without PyTorch installed."""
    code = (
        "import sys, engines.renderer as r; r.renderer_names();"
        "import engines.liveportrait.renderer, engines.liveportrait.onnx_backend;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "avatar_app.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def test_export_without_weights_says_what_to_download(tmp_path: Path) -> None:
    done = _cli("engines", "export", "liveportrait", env={"AVATAR_LIVEPORTRAIT_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "error:" in done.stderr and "models fetch liveportrait" in done.stderr
    assert not list(tmp_path.iterdir())


def test_bench_reports_every_network_at_one_and_two_threads(tiny_liveportrait_onnx: Path) -> None:
    done = _cli(
        "bench", "render", "--engine", "liveportrait", "--frames", "1",
        env={ONNX_ENV_VAR: str(tiny_liveportrait_onnx)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (
        result["providers"] == ["CPUExecutionProvider"]
        and result["weights"] == "random tiny (tests)"
    )
    for threads in ("threads_1", "threads_2"):
        assert set(result[threads]["networks_ms"]) == set(RENDER_NETWORKS)
        assert result[threads]["1280x720"]["frame_ms"] > 0


def test_frozen_inputs_are_uploaded_once_and_fresh_ones_every_call(
    engine: LivePortraitRenderer, astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    backend = engine.backend
    prepared = engine.prepare(astronaut, landmarker.detect_all(astronaut)[0])
    assert not prepared.feature.flags.writeable
    driving = prepared.kp_source + np.float32(0.02)
    inputs = {"feature": prepared.feature, "kp_driving": driving, "kp_source": prepared.kp_source}
    first = backend.run("warping", inputs)["warped"]
    copies = {name: array.copy() for name, array in inputs.items()}  # writeable: never cached
    np.testing.assert_array_equal(backend.run("warping", copies)["warped"], first)
    copies["kp_driving"] += np.float32(0.05)  # a changed writeable input is sent again
    moved = backend.run("warping", copies)["warped"]
    assert np.abs(moved - first).max() > 0
    chained = backend.run("generator", {"warped": moved})["image"]  # handed over in place
    np.testing.assert_array_equal(
        chained, backend.run("generator", {"warped": moved.copy()})["image"]
    )
