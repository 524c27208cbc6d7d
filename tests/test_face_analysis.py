"""Face landmarks on real and awkward images: engines.face and engines.image."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.errors import ModelMissing, PortraitError
from engines.face import model_file
from engines.face.landmarker import (
    DETECT_MAX_SIDE,
    MIN_FACE_PX,
    N_LANDMARKS,
    FaceLandmarker,
    FaceLandmarks,
    detect_face,
)
from engines.image import BACKGROUND, to_rgb8
from engines.model_cache import cached_sha256, user_model_dir
from engines.resources import resources_dir

REPO = Path(__file__).resolve().parent.parent


def resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if width < rgb.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(rgb, (width, height), interpolation=interpolation)


def two_heads(astronaut: np.ndarray, big_on_left: bool) -> tuple[np.ndarray, int]:
    """The astronaut's head twice, side by side, the second copy at 70 %; and the big one's x0."""
    head = astronaut[0:300, 80:380]
    h, w = head.shape[:2]
    small = resized(head, round(w * 0.7), round(h * 0.7))
    sh, sw = small.shape[:2]
    canvas = np.full((h, w + sw, 3), 128, np.uint8)
    top = (h - sh) // 2
    if big_on_left:
        canvas[:, :w] = head
        canvas[top : top + sh, w:] = small
        return canvas, 0
    canvas[top : top + sh, :sw] = small
    canvas[:, sw:] = head
    return canvas, sw


# --- landmarks -------------------------------------------------------------------------------


def test_astronaut_has_one_face_with_all_points_inside(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    faces = landmarker.detect_all(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.points.shape == (N_LANDMARKS, 3)
    assert face.points.dtype == np.float32
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= astronaut.shape[1]
    assert 0 <= y0 < y1 <= astronaut.shape[0]
    assert 80 < face.size < 160  # the head is about a fifth of the 512 px photo
    assert len(face.blendshape_names) == 52
    assert 0.0 <= face.blendshape("eyeBlinkLeft") <= 1.0
    assert face.transform.shape == (4, 4)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8),
        np.full((480, 640, 3), 200, np.uint8),
    ],
    ids=["noise", "flat"],
)
def test_no_face_says_what_photo_to_use(image: np.ndarray, landmarker: FaceLandmarker) -> None:
    with pytest.raises(PortraitError, match="No face") as info:
        detect_face(image, landmarker)
    assert "photo" in str(info.value)


@pytest.mark.parametrize("big_on_left", [True, False], ids=["big-left", "big-right"])
def test_several_faces_pick_the_largest(
    astronaut: np.ndarray,
    landmarker: FaceLandmarker,
    big_on_left: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    image, big_x0 = two_heads(astronaut, big_on_left)
    assert len(landmarker.detect_all(image)) == 2
    with caplog.at_level(logging.WARNING, logger="engines.face.landmarker"):
        face = detect_face(image, landmarker)
    assert "2 faces" in caplog.text
    x0, _, x1, _ = face.box
    assert big_x0 <= x0 and x1 <= big_x0 + 300
    assert face.size > 95  # the full-size head, not the 70 % copy (about 75 px)


def test_tiny_photo_finds_no_face_and_asks_for_a_larger_one(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    with pytest.raises(PortraitError, match="larger") as info:
        detect_face(resized(astronaut, 40, 40), landmarker)
    assert "40x40" in str(info.value)


def test_small_face_is_refused_with_advice(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    small = resized(astronaut, 128, 128)
    assert landmarker.detect_all(small), "the detector should still see this face"
    with pytest.raises(PortraitError, match="too small") as info:
        detect_face(small, landmarker)
    message = str(info.value)
    assert f"{MIN_FACE_PX} px" in message
    assert "closer" in message and "photo" in message


def test_huge_photo_gives_full_resolution_landmarks(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    huge = resized(astronaut, 6000, 6000)
    face = detect_face(huge, landmarker)
    reference = detect_face(astronaut, landmarker)
    scale = 6000 / 512
    assert face.size == pytest.approx(reference.size * scale, rel=0.03)
    error = np.abs(face.points - reference.points * np.float32(scale))
    # x, y and z all follow the scale: errors stay within a few 6000-px pixels.
    assert error.mean(axis=0).max() < 0.01 * face.size
    assert error.max() < 0.03 * face.size
    assert face.points[:, 0].max() <= 6000 and face.points[:, 1].max() <= 6000


def test_wide_photo_is_analysed_downscaled_with_matching_coordinates(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    """A 1401x1103 canvas: longer than DETECT_MAX_SIDE, so the copy's scale is uneven."""
    canvas = np.full((1103, 1401, 3), 90, np.uint8)
    canvas[40:1064, 300:1324] = resized(astronaut, 1024, 1024)
    assert max(canvas.shape) > DETECT_MAX_SIDE
    face = detect_face(canvas, landmarker)
    reference = detect_face(astronaut, landmarker).scaled(2.0, offset=(300, 40))
    assert np.abs(face.points[:, :2] - reference.points[:, :2]).mean() < 0.01 * face.size


def test_detect_face_without_a_landmarker_opens_and_closes_its_own(
    astronaut: np.ndarray,
) -> None:
    assert detect_face(astronaut).points.shape == (N_LANDMARKS, 3)


def test_closed_landmarker_refuses_work_and_close_is_idempotent(astronaut: np.ndarray) -> None:
    landmarker = FaceLandmarker()
    landmarker.close()
    landmarker.close()
    with pytest.raises(RuntimeError, match="closed"):
        landmarker.detect_all(astronaut)


@pytest.mark.parametrize(
    "make_and_use",
    [
        "from engines.face.landmarker import FaceLandmarker\n"
        "kept = FaceLandmarker()\n"
        "kept.detect_all(np.zeros((64, 64, 3), np.uint8))\n",
        "from engines.face.tracker import FaceTracker\n"
        "kept = FaceTracker()\n"
        "kept.track(np.zeros((64, 64, 3), np.uint8), 1)\n",
    ],
    ids=["image", "video"],
)
def test_unclosed_landmarker_exits_quietly(tmp_path: Path, make_and_use: str) -> None:
    """No mediapipe TypeError at interpreter exit and no absl chatter on stderr, for still
    images and for video tracking alike."""
    script = tmp_path / "leak.py"
    script.write_text(f"import numpy as np\n{make_and_use}print('done')\n")
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert result.stderr == ""


# --- model file --------------------------------------------------------------------------------


def test_bundled_model_is_found_and_verified() -> None:
    path = model_file.face_landmarker_path()
    assert path.name == model_file.FILE_NAME
    assert path.stat().st_size == model_file.SIZE
    assert cached_sha256(path) == model_file.SHA256


def test_override_pointing_nowhere_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(model_file.ENV_VAR, str(tmp_path / "missing.task"))
    with pytest.raises(ModelMissing, match="unset"):
        model_file.face_landmarker_path()


def test_override_with_wrong_content_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "face_landmarker.task"
    fake.write_bytes(b"not a model")
    monkeypatch.setenv(model_file.ENV_VAR, str(fake))
    with pytest.raises(ModelMissing, match="SHA-256"):
        model_file.face_landmarker_path()


def test_user_cache_is_used_when_the_bundled_copy_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = resources_dir() / "models" / model_file.FILE_NAME
    monkeypatch.setenv("AVATAR_APP_RESOURCES", str(tmp_path / "empty-resources"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(model_file.ENV_VAR, raising=False)
    with pytest.raises(ModelMissing, match="download it from"):
        model_file.face_landmarker_path()
    cached = user_model_dir() / model_file.FILE_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"damaged")
    with pytest.raises(ModelMissing, match="Damaged copies"):
        model_file.face_landmarker_path()
    cached.write_bytes(bundled.read_bytes())
    assert model_file.face_landmarker_path() == cached


# --- to_rgb8 -----------------------------------------------------------------------------------


def test_rgb8_passes_through_unchanged(astronaut: np.ndarray) -> None:
    assert to_rgb8(astronaut) is astronaut


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1)])
def test_grey_becomes_three_equal_channels(shape: tuple[int, ...]) -> None:
    grey = np.arange(20, dtype=np.uint8).reshape(shape) * 10
    rgb = to_rgb8(grey)
    assert rgb.shape == (4, 5, 3)
    assert (rgb == grey.reshape(4, 5, 1)).all()


def test_alpha_is_composited_over_mid_grey() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # invisible red
    rgba[1, 0] = (0, 0, 0, 128)  # half black
    rgb = to_rgb8(rgba)
    grey = round(BACKGROUND * 255)
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[0, 1]) == (grey, grey, grey)
    assert abs(int(rgb[1, 0, 0]) - grey // 2) <= 1
    la = np.stack([np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8)], axis=2)
    assert (to_rgb8(la) == grey).all()


def test_sixteen_bit_and_float_are_rescaled() -> None:
    sixteen = np.array([[0, 257 * 128, 65535]], np.uint16)
    assert to_rgb8(sixteen)[0, :, 0].tolist() == [0, 128, 255]
    floats = np.array([[0.0, 0.5, 1.0]], np.float64)
    assert to_rgb8(floats)[0, :, 1].tolist() == [0, 128, 255]
    assert to_rgb8(np.array([[True, False]]))[0, :, 2].tolist() == [255, 0]


@pytest.mark.parametrize(
    ("array", "advice"),
    [
        (np.zeros((2, 3, 4, 3), np.uint8), "one image"),
        (np.zeros((3, 64, 64), np.uint8), "transpose"),
        (np.zeros((8, 8, 5), np.uint8), "1 to 4 channels"),
        (np.zeros((0, 8, 3), np.uint8), "Pick a photo"),
        (np.zeros(5, np.uint8), "one image"),
        (np.full((4, 4, 3), 255.0), "divide by 255"),
        (np.full((4, 4, 3), np.nan), "nan_to_num"),
        (np.zeros((4, 4, 3), np.int32), "Convert the image"),
    ],
    ids=["batch", "channels-first", "five-channels", "empty", "1-d", "float-255", "nan", "int32"],
)
def test_nonsense_arrays_are_refused_with_advice(array: np.ndarray, advice: str) -> None:
    with pytest.raises(PortraitError, match=advice):
        to_rgb8(array)


# --- small faces in large photos --------------------------------------------------------------


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A textured background (soft blobs of colour, like an out-of-focus room), no face."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 220, (max(2, height // 64), max(2, width // 64), 3), np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def paste_astronaut(
    canvas: np.ndarray,
    astronaut: np.ndarray,
    reference: FaceLandmarks,
    across: float,
    at: tuple[int, int],
) -> FaceLandmarks:
    """The astronaut scaled so her face is ``across`` px from cheek to cheek, its top-left
    corner at ``at``; returns her reference landmarks moved to match."""
    from engines.face import topology as topo

    scale = across / float(np.ptp(reference.points[list(topo.FACE_OVAL), 0]))
    small = resized(astronaut, round(512 * scale), round(512 * scale))
    x, y = at
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return reference.scaled(small.shape[1] / 512, (x, y))


def test_small_face_in_a_twelve_megapixel_photo_is_found_and_framed(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    from avatar_app.framing import frame_face

    reference = landmarker.detect_all(astronaut)[0]
    photo = scene(4000, 3000)
    expected = paste_astronaut(photo, astronaut, reference, 60, (2630, 1710))
    face = detect_face(photo, landmarker)
    assert np.abs(face.points[:, :2] - expected.points[:, :2]).mean() < 0.05 * expected.size
    # Framed as a close-up: the face fills a good part of the frame, and is found there again.
    frame, framed = frame_face(photo, face, (1280, 720))
    assert framed.size >= 0.3 * 720
    again = landmarker.detect_all(frame)
    assert again and np.abs(again[0].points[:, :2] - framed.points[:, :2]).mean() < 0.05 * 720


def test_the_largest_of_several_small_faces_is_used_and_named(
    astronaut: np.ndarray, landmarker: FaceLandmarker, caplog: pytest.LogCaptureFixture
) -> None:
    reference = landmarker.detect_all(astronaut)[0]
    photo = scene(3000, 2000, seed=1)
    paste_astronaut(photo, astronaut, reference, 60, (300, 400))
    big = paste_astronaut(photo, astronaut, reference, 80, (1900, 900))
    with caplog.at_level(logging.WARNING, logger="engines.face.landmarker"):
        face = detect_face(photo, landmarker)
    assert np.abs(face.points[:, :2] - big.points[:, :2]).mean() < 0.05 * big.size
    assert "2 faces" in caplog.text and "largest" in caplog.text
    x0, y0, x1, y1 = big.box
    where = re.search(r"x=(\d+), y=(\d+)", caplog.text)  # the message says which face
    assert where, caplog.text
    assert abs(int(where[1]) - (x0 + x1) / 2) < 10 and abs(int(where[2]) - (y0 + y1) / 2) < 10
