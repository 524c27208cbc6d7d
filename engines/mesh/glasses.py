"""Tells whether the portrait wears glasses, so that blinks and brows leave the frames alone.

A warp moves whatever lies over the skin it moves: a spectacle frame over the brows bends up
with a raised brow and dips with a blink. Glasses have a bridge: a bar across the nose between
the eyes, where bare skin is smooth. The bridge patch's strongest row of horizontal edges is
compared with an absolute level (so a smooth, evenly lit nose is never taken for a bar) and
with the patch's own typical row (so skin texture or noise is not either).
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.face import topology as topo

BAR_EDGE = 80.0  # |Sobel y| (3x3, 0-255 grey) of a bar's edge; bare nose bridges gave ~30
BAR_OVER_TYPICAL = 2.0  # the bar's row against the patch's median row
BRIDGE_TOP = 168  # landmark between the brows, where the nose begins
BRIDGE_BOTTOM = 6  # landmark on the nose bridge between the eyes


def wears_glasses(portrait: np.ndarray, xy: np.ndarray) -> bool:
    """Whether a frame's bridge crosses the nose between the eyes (``xy``: landmarks, pixels)."""
    inner_right = xy[topo.RIGHT_EYE_UPPER[-1]]
    inner_left = xy[topo.LEFT_EYE_UPPER[0]]
    spacing = float(np.linalg.norm(inner_left - inner_right))
    left, right = sorted((float(inner_right[0]), float(inner_left[0])))
    margin = 0.2 * (right - left)  # the middle of the bridge, clear of the eye corners
    height, width = portrait.shape[:2]
    x0, x1 = max(round(left + margin), 0), min(round(right - margin), width)
    y0 = max(round(float(xy[BRIDGE_TOP][1]) - 0.25 * spacing) - 1, 0)
    y1 = min(round(float(xy[BRIDGE_BOTTOM][1])) + 1, height)
    if x1 - x0 < 3 or y1 - y0 < 5:
        return False
    grey = cv2.cvtColor(portrait[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    rows = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))[1:-1].mean(axis=1)
    strongest = float(rows.max())
    return strongest >= BAR_EDGE and strongest >= BAR_OVER_TYPICAL * float(np.median(rows))
