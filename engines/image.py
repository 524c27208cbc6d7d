"""Turn any reasonable pixel array into the one format the engines use: HxWx3 uint8 RGB.

Transparent pixels are composited over neutral mid-grey (``BACKGROUND``) rather than white or
black: cut-out portraits usually have a transparent background, and mid-grey keeps contrast with
both dark and light hair and skin, so the face detector still sees the outline of the head and
the renderer does not drag a bright or dark halo around it when the head moves.
"""

from __future__ import annotations

import numpy as np

from engines.errors import PortraitError

BACKGROUND = 0.5
"""Grey level (0..1) that transparent pixels are composited over."""

_CHANNEL_NAMES = {1: "grey", 2: "grey + alpha", 3: "RGB", 4: "RGBA"}


def to_rgb8(array: np.ndarray) -> np.ndarray:
    """``array`` as a new or shared HxWx3 uint8 RGB array.

    Accepts HxW or HxWx1 grey, HxWx2 grey + alpha, HxWx3 RGB and HxWx4 RGBA, with uint8,
    uint16 (full 0..65535 range), bool, or float (0..1) pixels. Anything else raises
    PortraitError saying what to change.
    """
    array = np.asarray(array)
    pixels = _as_hwc(array)
    if pixels.dtype == np.uint8 and pixels.shape[2] == 3:
        return pixels
    unit = _to_unit_float(pixels)
    channels = unit.shape[2]
    if channels in (2, 4):
        alpha = unit[:, :, -1:]
        unit = unit[:, :, :-1] * alpha + np.float32(BACKGROUND) * (1.0 - alpha)
    if unit.shape[2] == 1:
        unit = np.repeat(unit, 3, axis=2)
    return np.ascontiguousarray(np.rint(unit * 255.0).astype(np.uint8))


def _as_hwc(array: np.ndarray) -> np.ndarray:
    """``array`` with an explicit channel axis, after checking its shape makes sense."""
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3:
        raise PortraitError(
            f"An image must be a 2-D grey or 3-D colour array, got shape {array.shape}. "
            "Did you pass a batch or a video? Pass one image of shape HxW or HxWxC."
        )
    height, width, channels = array.shape
    if height == 0 or width == 0:
        raise PortraitError(
            f"The image is empty (shape {array.shape}). Pick a photo with pixels in it."
        )
    if channels not in _CHANNEL_NAMES:
        hint = (
            " It looks channels-first; move the channel axis last (array.transpose(1, 2, 0))."
            if height in _CHANNEL_NAMES and channels > 4
            else ""
        )
        raise PortraitError(
            f"An image needs 1 to 4 channels (grey, grey + alpha, RGB or RGBA), got shape "
            f"{array.shape}.{hint}"
        )
    return array


def _to_unit_float(pixels: np.ndarray) -> np.ndarray:
    """Pixels scaled to float32 in 0..1."""
    if pixels.dtype == np.bool_:
        return pixels.astype(np.float32)
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / np.float32(255.0)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(pixels.dtype, np.floating):
        unit = pixels.astype(np.float32)
        if not np.isfinite(unit).all():
            raise PortraitError(
                "The image contains NaN or infinite values. Replace them (np.nan_to_num) "
                "or load the photo from its file instead."
            )
        low, high = float(unit.min()), float(unit.max())
        if low < -0.01 or high > 1.01:
            raise PortraitError(
                f"A floating-point image must hold values in 0..1, got {low:g}..{high:g}. "
                "Did you mean to divide by 255 (or 65535 for 16-bit)?"
            )
        return np.clip(unit, 0.0, 1.0)
    raise PortraitError(
        f"Pixels of type {pixels.dtype} are not supported. Convert the image to uint8, "
        "uint16 or float in 0..1 first."
    )
