"""The face crop LivePortrait expects, and pasting its output back into the portrait.

LivePortrait's convention (``src/utils/crop.py``, ``src/config/crop_config.py``): a square
2.3 times the face's landmark box, moved up by 0.125 of its side to take in the forehead,
rotated so that the eye-centre -> lip-centre axis points straight down, resampled to 512 px
(and 256 px for the networks). Its landmark set spans brows to chin; from mediapipe's we use
the face oval cut at the brows, the brows, eyes and lips, which spans the same box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.face import topology as topo
from engines.face.landmarker import FaceLandmarks

CROP_SIZE = 512
NETWORK_SIZE = 256
SCALE = 2.3
SHIFT_UP = 0.125
FEATHER = 16
"""Width in crop pixels of the paste-back mask's soft edge."""

_BROWS = topo.LEFT_BROW + topo.RIGHT_BROW
_BOX_POINTS = np.array(
    sorted(
        set(
            topo.FACE_OVAL
            + _BROWS
            + topo.LEFT_EYE_UPPER
            + topo.RIGHT_EYE_UPPER
            + topo.MOUTH_CORNERS
            + (topo.CHIN,)
        )
    )
)


@dataclass(frozen=True)
class FaceCrop:
    """Affine maps between portrait pixels and the ``CROP_SIZE`` crop."""

    to_crop: np.ndarray  # (2, 3)
    to_portrait: np.ndarray  # (2, 3)

    def points_in_crop(self, points_xy: np.ndarray) -> np.ndarray:
        """Portrait pixel coordinates ``(N, 2)`` -> crop pixel coordinates."""
        pts = np.asarray(points_xy, dtype=np.float64)
        return pts @ self.to_crop[:, :2].T + self.to_crop[:, 2]


def face_crop(face: FaceLandmarks, size: int = CROP_SIZE) -> FaceCrop:
    """The similarity transform that puts ``face`` where LivePortrait's crop puts it."""
    xy = face.points[:, :2].astype(np.float64)
    eyes = (
        xy[list(topo.LEFT_EYE_UPPER + topo.LEFT_EYE_LOWER)].mean(0)
        + xy[list(topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER)].mean(0)
    ) / 2
    lips = xy[list(topo.MOUTH_CORNERS)].mean(0)
    down = lips - eyes
    length = np.linalg.norm(down)
    down = down / length if length > 1e-3 else np.array([0.0, 1.0])
    right = np.array([-down[1], down[0]])
    frame = np.stack([right, down])  # rows: the face's x and y axes in the image

    pts = xy[_BOX_POINTS]
    centre0 = pts.mean(0)
    local = (pts - centre0) @ frame.T
    brow_top = ((xy[list(_BROWS)] - centre0) @ frame.T)[:, 1].min()
    local[:, 1] = np.maximum(local[:, 1], brow_top)  # drop the forehead above the brows
    low, high = local.min(0), local.max(0)
    side = float((high - low).max()) * SCALE
    middle = (low + high) / 2
    centre = centre0 + frame.T @ middle - down * (SHIFT_UP * side)

    # Crop pixel p maps to portrait point centre + frame.T @ ((p - size/2) * side/size).
    k = side / size
    to_portrait = np.zeros((2, 3))
    to_portrait[:, :2] = frame.T * k
    to_portrait[:, 2] = centre - to_portrait[:, :2] @ np.array([size / 2, size / 2])
    return FaceCrop(to_crop=cv2.invertAffineTransform(to_portrait), to_portrait=to_portrait)


def crop_image(portrait: np.ndarray, crop: FaceCrop, size: int = CROP_SIZE) -> np.ndarray:
    """The ``size``-pixel crop of an RGB portrait (edges replicated outside the photo).

    As LivePortrait does, the crop is taken at ``CROP_SIZE`` and then area-averaged down:
    ``warpAffine`` has no area filter, so warping straight to 256 px would alias.
    """
    full = cv2.warpAffine(
        portrait, crop.to_crop, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    if size == CROP_SIZE:
        return full
    return cv2.resize(full, (size, size), interpolation=cv2.INTER_AREA)


def feathered_mask(size: int = CROP_SIZE, feather: int = FEATHER) -> np.ndarray:
    """``(size, size)`` float32: 1 inside, a smooth ramp to 0 over ``feather`` px at the edges."""
    ramp = np.clip((np.arange(size) + 0.5) / feather, 0.0, 1.0)
    ramp = np.minimum(ramp, ramp[::-1])
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no visible seam at either end
    return np.outer(ramp, ramp).astype(np.float32)


@dataclass(frozen=True)
class PasteBack:
    """Blends a generated crop into the portrait, touching only the crop's bounding box.

    The feathered mask and the portrait's pixels under it are prepared once per portrait.
    """

    portrait: np.ndarray
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the portrait
    to_box: np.ndarray  # (2, 3) crop pixels -> box pixels
    mask: np.ndarray  # (h, w, 1) float32
    background: np.ndarray  # (h, w, 3) float32, the portrait under the box

    @classmethod
    def for_portrait(cls, portrait: np.ndarray, crop: FaceCrop) -> PasteBack:
        height, width = portrait.shape[:2]
        corners = np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float)
        placed = corners @ crop.to_portrait[:, :2].T + crop.to_portrait[:, 2]
        x0, y0 = np.clip(np.floor(placed.min(0)).astype(int), 0, [width, height])
        x1, y1 = np.clip(np.ceil(placed.max(0)).astype(int) + 1, 0, [width, height])
        to_box = crop.to_portrait.copy()
        to_box[:, 2] -= (x0, y0)
        size = (int(x1 - x0), int(y1 - y0))
        mask = cv2.warpAffine(feathered_mask(), to_box, size, flags=cv2.INTER_LINEAR)
        background = portrait[y0:y1, x0:x1].astype(np.float32)
        return cls(
            portrait, (int(x0), int(y0), int(x1), int(y1)), to_box, mask[:, :, None], background
        )

    def __call__(self, generated: np.ndarray) -> np.ndarray:
        """``generated``: ``(CROP_SIZE, CROP_SIZE, 3)`` uint8 -> the full portrait frame."""
        x0, y0, x1, y1 = self.box
        frame = self.portrait.copy()
        if x1 <= x0 or y1 <= y0:
            return frame
        warped = cv2.warpAffine(generated, self.to_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
        blended = self.background + self.mask * (warped.astype(np.float32) - self.background)
        frame[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return frame
