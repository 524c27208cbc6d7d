"""Framing a portrait to the output size: crop to fill, letterbox to fit, landmark mapping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avatar_app.framing import Mode, check_size, fit_portrait, frame_face, parse_size
from engines.errors import AvatarError
from engines.face.landmarker import FaceLandmarks


def _grid(width: int, height: int) -> np.ndarray:
    """A photo whose pixels tell where they are: R = x // 2, G = y // 2."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x // 2, y // 2, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def test_fill_covers_the_frame_and_centres_on_focus() -> None:
    photo = _grid(400, 300)
    frame, scale, offset = fit_portrait(photo, (200, 300), "fill", focus=(200.0, 150.0))
    assert frame.shape == (300, 200, 3)
    assert scale == pytest.approx(1.0)
    assert offset == pytest.approx((-100.0, 0.0))
    # The focus point lands on the frame centre.
    centre = np.array([200.0, 150.0]) * scale + offset
    np.testing.assert_allclose(centre, (100.0, 150.0))
    assert frame[150, 100, 0] == photo[150, 200, 0]


@pytest.mark.parametrize(
    ("focus", "expected_x"),
    [((0.0, 150.0), 0.0), ((399.0, 150.0), -200.0), ((50.0, 150.0), 0.0)],
)
def test_fill_clamps_the_crop_at_the_edges(focus: tuple[float, float], expected_x: float) -> None:
    photo = _grid(400, 300)
    frame, _, offset = fit_portrait(photo, (200, 300), "fill", focus=focus)
    assert offset[0] == pytest.approx(expected_x)
    assert offset[1] == pytest.approx(0.0)
    # The crop stays inside the photo: no replicated border columns.
    assert frame[:, 0, 0].tolist() == photo[: frame.shape[0], int(-offset[0]), 0].tolist()


def test_fill_scales_up_a_small_photo(astronaut: np.ndarray) -> None:
    frame, scale, offset = fit_portrait(astronaut, (1280, 720), "fill", focus=(256.0, 180.0))
    assert frame.shape == (720, 1280, 3)
    assert scale == pytest.approx(2.5)
    assert offset[0] == pytest.approx(0.0)
    assert -(512 * 2.5 - 720) <= offset[1] <= 0.0


def test_fit_letterboxes_over_a_dark_blurred_copy(astronaut: np.ndarray) -> None:
    frame, scale, offset = fit_portrait(astronaut, (1280, 720), "fit")
    assert frame.shape == (720, 1280, 3)
    assert scale == pytest.approx(720 / 512)
    assert offset == pytest.approx(((1280 - 720) / 2, 0.0))
    side = frame[:, :200].astype(np.float64)
    assert side.mean() > 5.0, "the side bands should show the blurred photo, not black"
    assert side.mean() < astronaut.mean() * 0.7, "the backdrop should be darker than the photo"
    middle = frame[:, 300:980]
    assert (
        np.abs(np.diff(middle.astype(np.float64), axis=1)).mean()
        > np.abs(np.diff(side, axis=1)).mean()
    ), "the photo should be sharper than its backdrop"


def test_fit_shows_the_whole_photo_in_a_tall_frame(astronaut: np.ndarray) -> None:
    frame, scale, offset = fit_portrait(astronaut, (256, 512), "fit")
    assert frame.shape == (512, 256, 3)
    assert scale == pytest.approx(0.5)
    assert offset == pytest.approx((0.0, 128.0))


@pytest.mark.parametrize("mode", ["fill", "fit"])
@pytest.mark.parametrize("size", [(512, 512), (1280, 720), (200, 600), (64, 48)])
def test_mapped_points_land_on_the_same_content(mode: Mode, size: tuple[int, int]) -> None:
    y, x = np.mgrid[0:200, 0:250]
    photo = np.stack([x, y, np.full_like(x, 128)], axis=-1).astype(np.uint8)  # R = x, G = y
    frame, scale, offset = fit_portrait(photo, size, mode, focus=(150.0, 90.0))
    # Pixel centres of the photo, in pixel-edge coordinates like FaceLandmarks.
    points = np.array([[x + 0.5, y + 0.5, 0.0] for x in (20, 125, 226) for y in (15, 100, 188)])
    face = FaceLandmarks(points.astype(np.float32), np.zeros(0), (), np.eye(4))
    mapped = face.scaled(scale, offset).points
    height, width = frame.shape[:2]
    checked = 0
    for src, dst in zip(points, mapped, strict=True):
        if not (1 <= dst[0] < width - 1 and 1 <= dst[1] < height - 1):
            continue  # cropped away by "fill"
        centre = (float(dst[0]) - 0.5, float(dst[1]) - 0.5)  # OpenCV samples at pixel centres
        sampled = cv2.getRectSubPix(frame.astype(np.float32), (1, 1), centre)[0, 0, :2]
        # Within a fraction of a pixel of both images: catches a half-pixel convention slip.
        np.testing.assert_allclose(sampled, src[:2] - 0.5, atol=0.15 + 0.15 / scale)
        checked += 1
    assert checked >= 3


def test_frame_face_maps_the_landmarks(astronaut: np.ndarray) -> None:
    points = np.array([[180.0, 80.0, 0.0], [300.0, 220.0, 0.0]], dtype=np.float32)
    face = FaceLandmarks(points, np.zeros(0), (), np.eye(4))
    frame, mapped = frame_face(astronaut, face, (256, 256), "fill")
    assert frame.shape == (256, 256, 3)
    np.testing.assert_allclose(mapped.points[:, :2], points[:, :2] * 0.5, atol=1e-4)


@pytest.mark.parametrize(
    ("text", "size"), [("512", (512, 512)), ("1280x720", (1280, 720)), ("640X480", (640, 480))]
)
def test_parse_size(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("513", "odd side"),
        ("1280x721", "Try 1280x722"),
        ("0x720", "positive"),
        ("7680x4320", "larger than 3840x2160"),
        ("4000x100", "larger than"),
        ("big", "Cannot read the size"),
        ("1x2x3", "WxH"),
    ],
)
def test_bad_sizes_are_rejected_with_a_message(text: str, message: str) -> None:
    with pytest.raises(AvatarError, match=message):
        parse_size(text)


def test_portrait_4k_sizes_are_allowed() -> None:
    check_size((3840, 2160))
    check_size((2160, 3840))


def test_odd_size_is_rejected_by_fit_portrait(astronaut: np.ndarray) -> None:
    with pytest.raises(AvatarError, match="even"):
        fit_portrait(astronaut, (511, 512))


def test_unknown_mode_is_rejected(astronaut: np.ndarray) -> None:
    with pytest.raises(AvatarError, match="fill"):
        fit_portrait(astronaut, (512, 512), "stretch")  # type: ignore[arg-type]


def test_not_rgb_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        fit_portrait(np.zeros((10, 10), np.uint8), (8, 8))
