"""Small drawing helpers shared by the mouth and eyelid painters."""

from __future__ import annotations

import cv2
import numpy as np

SUBPIXEL_BITS = 2


def box_around(points: np.ndarray, shape: tuple[int, ...], margin: int = 3) -> tuple[int, ...]:
    """(x0, y0, x1, y1) around ``points`` plus a margin, clipped to an image of ``shape``;
    empty (x1 - x0 < 2 or y1 - y0 < 2) when the points fall outside."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + margin + 1
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def is_empty(box: tuple[int, ...]) -> bool:
    x0, y0, x1, y1 = box
    return x1 - x0 < 2 or y1 - y0 < 2


def to_fixed(points: np.ndarray) -> np.ndarray:
    """Sub-pixel coordinates for OpenCV's drawing functions (``shift=SUBPIXEL_BITS``)."""
    return np.round(points * (1 << SUBPIXEL_BITS)).astype(np.int32)


def polygon_mask(size: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Anti-aliased float32 mask in [0, 1] of one filled polygon."""
    mask = np.zeros(size, np.uint8)
    cv2.fillPoly(mask, [to_fixed(points)], 255, cv2.LINE_AA, SUBPIXEL_BITS)
    return mask.astype(np.float32) / 255.0


def blend_into(
    patch: np.ndarray, box: tuple[int, ...], layers: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    """Paint ``(alpha HxW, colour HxWx3 or 3)`` layers in order over ``patch[box]``, in place."""
    x0, y0, x1, y1 = box
    region = patch[y0:y1, x0:x1].astype(np.float32)
    for alpha, colour in layers:
        region += alpha[..., None] * (colour - region)
    patch[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
