"""Fits a portrait to an output frame size: crop to fill, or letterbox over a blurred copy.

Both modes are one similarity transform ``out = scale * src + offset`` in pixel-edge
coordinates (x = 0 at the left edge of the first pixel), the convention FaceLandmarks uses,
so ``landmarks.scaled(scale, offset)`` gives the face in the framed image.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from engines.errors import AvatarError
from engines.face.landmarker import FaceLandmarks

Mode = Literal["fill", "fit"]
MODES: tuple[Mode, ...] = ("fill", "fit")
MAX_LONG_SIDE = 3840
MAX_SHORT_SIDE = 2160
SMALL_FACE_SHARE = 0.15
"""A face smaller than this share of the frame's height is shown in a close-up instead."""
CLOSE_UP_FACE_SHARE = 0.35
BACKDROP_DIM = 0.45
"""Brightness of the blurred backdrop behind a letterboxed portrait."""


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"1280x720"`` -> (1280, 720); then validated."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers *= 2
    if len(numbers) != 2:
        raise AvatarError(
            f"Cannot read the size {text!r}: write one number (512) or WxH (1280x720)."
        )
    size = (numbers[0], numbers[1])
    check_size(size)
    return size


def check_size(size: tuple[int, int]) -> None:
    """Raise AvatarError unless the size is positive, even and at most 4K."""
    width, height = size
    if width <= 0 or height <= 0:
        raise AvatarError(f"The output size {width}x{height} must be positive, e.g. 512x512.")
    if max(size) > MAX_LONG_SIDE or min(size) > MAX_SHORT_SIDE:
        raise AvatarError(
            f"The output size {width}x{height} is larger than {MAX_LONG_SIDE}x{MAX_SHORT_SIDE} "
            f"(or {MAX_SHORT_SIDE}x{MAX_LONG_SIDE}); choose a smaller one, e.g. 1280x720."
        )
    if width % 2 or height % 2:
        raise AvatarError(
            f"The output size {width}x{height} has an odd side; H.264 video needs even sides. "
            f"Try {width + width % 2}x{height + height % 2}."
        )


def fit_portrait(
    rgb: np.ndarray,
    size: tuple[int, int],
    mode: Mode = "fill",
    focus: tuple[float, float] | None = None,
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The portrait resized to ``size`` = (width, height); returns (frame, scale, offset).

    ``fill`` scales the photo to cover the frame and crops it, centring the crop on ``focus``
    (a point of the photo, e.g. the face centre; the photo centre when None) as far as the
    photo reaches. ``fit`` shows the whole photo, centred, over a blurred and darkened copy.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if mode not in MODES:
        raise AvatarError(f"Unknown framing mode {mode!r}: use 'fill' or 'fit'.")
    check_size(size)
    width, height = size
    src_h, src_w = rgb.shape[:2]
    if focus is None:
        focus = (src_w / 2.0, src_h / 2.0)
    fill_scale, fill_offset = _fill_transform((src_w, src_h), size, focus)
    if mode == "fill":
        return _warp(rgb, size, fill_scale, fill_offset), fill_scale, fill_offset

    scale = min(width / src_w, height / src_h)
    offset = ((width - src_w * scale) / 2.0, (height - src_h * scale) / 2.0)
    backdrop = _backdrop(_warp(rgb, size, fill_scale, fill_offset))
    photo = _warp(rgb, size, scale, offset).astype(np.float32)
    coverage = _warp(np.full((src_h, src_w), 255, np.uint8), size, scale, offset, border=0)
    alpha = coverage.astype(np.float32)[..., None] / 255.0
    frame = photo * alpha + backdrop.astype(np.float32) * (1.0 - alpha)
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8), scale, offset


def frame_face(
    rgb: np.ndarray, face: FaceLandmarks, size: tuple[int, int], mode: Mode = "fill"
) -> tuple[np.ndarray, FaceLandmarks]:
    """The portrait framed around ``face``, and the face's landmarks in the framed image.

    A face that would come out smaller than ``SMALL_FACE_SHARE`` of the frame's height (a
    group photo, a half-body or 4K shot) is first cropped to head and shoulders, so the face
    fills ``CLOSE_UP_FACE_SHARE`` of the height.
    """
    crop = _close_up(rgb.shape[1], rgb.shape[0], face, size, mode)
    if crop is not None:
        cx0, cy0, cx1, cy1 = crop
        rgb = rgb[cy0:cy1, cx0:cx1]
        face = face.scaled(1.0, (-cx0, -cy0))
    x0, y0, x1, y1 = face.box
    frame, scale, offset = fit_portrait(rgb, size, mode, focus=((x0 + x1) / 2, (y0 + y1) / 2))
    return frame, face.scaled(scale, offset)


def _close_up(
    src_w: int, src_h: int, face: FaceLandmarks, size: tuple[int, int], mode: Mode
) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a head-and-shoulders crop when the face would come out small."""
    width, height = size
    if mode == "fill":
        scale = max(width / src_w, height / src_h)
    else:
        scale = min(width / src_w, height / src_h)
    if face.size * scale >= SMALL_FACE_SHARE * height:
        return None
    crop_h = face.size / CLOSE_UP_FACE_SHARE
    crop_w = crop_h * width / height
    if crop_w >= src_w or crop_h >= src_h:
        return None
    x0, y0, x1, y1 = face.box
    # The face a little above the middle: the shoulders show below it.
    left = (x0 + x1) / 2 - crop_w / 2
    top = (y0 + y1) / 2 - 0.45 * crop_h
    left = min(max(left, 0.0), src_w - crop_w)
    top = min(max(top, 0.0), src_h - crop_h)
    return round(left), round(top), round(left + crop_w), round(top + crop_h)


def _fill_transform(
    src: tuple[int, int], size: tuple[int, int], focus: tuple[float, float]
) -> tuple[float, tuple[float, float]]:
    scale = max(size[0] / src[0], size[1] / src[1])
    offset = tuple(
        min(max(out / 2.0 - f * scale, out - length * scale), 0.0)
        for out, length, f in zip(size, src, focus, strict=True)
    )
    return scale, (offset[0], offset[1])


def _warp(
    image: np.ndarray,
    size: tuple[int, int],
    scale: float,
    offset: tuple[float, float],
    border: int | None = None,
) -> np.ndarray:
    """Resample ``image`` by ``out = scale * src + offset`` (pixel-edge coordinates)."""
    src_h, src_w = image.shape[:2]
    if scale < 1.0:
        # Shrink with area averaging first so that large photos do not alias.
        small = (max(1, round(src_w * scale)), max(1, round(src_h * scale)))
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    kx = image.shape[1] / src_w
    ky = image.shape[0] / src_h
    ax, ay = scale / kx, scale / ky
    # Pixel-edge to pixel-centre coordinates (what OpenCV uses): x_c = x_e - 0.5.
    matrix = np.array(
        [[ax, 0.0, 0.5 * ax - 0.5 + offset[0]], [0.0, ay, 0.5 * ay - 0.5 + offset[1]]],
        dtype=np.float64,
    )
    if border is None:
        return cv2.warpAffine(
            image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return cv2.warpAffine(
        image,
        matrix,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def _backdrop(frame: np.ndarray) -> np.ndarray:
    """A heavily blurred, darkened copy; blurred at low resolution to stay cheap at 4K."""
    height, width = frame.shape[:2]
    small = cv2.resize(
        frame, (max(8, width // 8), max(8, height // 8)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(2.0, min(width, height) / 80.0))
    blurred = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return (blurred.astype(np.float32) * BACKDROP_DIM).astype(np.uint8)
