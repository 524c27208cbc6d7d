"""Paints the inside of an opened mouth: dark cavity, upper-teeth hint, soft edges.

A warp can only stretch the lips' own pixels across the gap; wherever the lips part more than
in the photo, a painted interior fades in instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.face import topology as topo
from engines.mesh.geometry import Mesh
from engines.mesh.painting import blend_into, box_around, is_empty, polygon_mask

CAVITY_TOP = np.array([112.0, 48.0, 46.0])
CAVITY_DEEP = np.array([46.0, 16.0, 18.0])
DEFAULT_TEETH = np.array([222.0, 214.0, 200.0])


@dataclass(frozen=True)
class MouthPainter:
    inner_contour: np.ndarray  # vertex ids of the inner lip loop
    upper: np.ndarray  # inner upper lip, corner to corner
    lower: np.ndarray  # inner lower lip, corner to corner
    source_gap: float  # mean distance between the inner lips in the photo, pixels
    fade_gap: float  # extra opening over which the interior fades fully in, pixels
    teeth_height: float  # visible height of the upper teeth when wide open, pixels
    down: np.ndarray  # the face's down axis
    teeth: np.ndarray  # RGB of the upper teeth

    @staticmethod
    def from_portrait(portrait: np.ndarray, mesh: Mesh) -> MouthPainter:
        upper = np.array(topo.LIPS_UPPER_INNER)
        lower = np.array(topo.LIPS_LOWER_INNER)
        xy = mesh.vertices[:, :2]
        contour = np.array(topo.inner_mouth_contour())
        return MouthPainter(
            inner_contour=contour,
            upper=upper,
            lower=lower,
            source_gap=_gap(xy, upper, lower),
            fade_gap=0.03 * mesh.frame.height,
            teeth_height=0.055 * mesh.frame.height,
            down=mesh.frame.down,
            teeth=_teeth_colour(portrait, xy[contour]),
        )

    def paint(self, patch: np.ndarray, origin: tuple[int, int], dst_xy: np.ndarray) -> None:
        gap = _gap(dst_xy, self.upper, self.lower)
        opacity = float(np.clip((gap - self.source_gap) / self.fade_gap, 0.0, 1.0))
        if opacity <= 0.0:
            return
        contour = dst_xy[self.inner_contour] - origin
        box = box_around(contour, patch.shape)
        if is_empty(box):
            return
        x0, y0, x1, y1 = box
        local = contour - (x0, y0)
        size = (y1 - y0, x1 - x0)

        mask = polygon_mask(size, local)
        soft = max(1, round(gap * 0.06)) * 2 + 1
        mask = cv2.GaussianBlur(mask, (soft, soft), 0)

        rows = np.linspace(0.0, 1.0, size[0])[:, None, None]
        inside = CAVITY_TOP + (CAVITY_DEEP - CAVITY_TOP) * np.sqrt(rows)
        inside = np.broadcast_to(inside, (*size, 3)).copy()
        teeth_height = min(0.3 * gap, self.teeth_height)
        upper = dst_xy[self.upper] - origin - (x0, y0)
        band = np.vstack([upper, upper[::-1] + teeth_height * self.down])
        teeth = cv2.GaussianBlur(polygon_mask(size, band), (3, 3), 0)[..., None] * mask[..., None]
        shade = 1.0 - 0.35 * np.abs(np.linspace(-1.0, 1.0, size[1]))[None, :, None]
        inside += teeth * (self.teeth * shade - inside)

        blend_into(patch, box, [(mask * opacity, inside)])


def _gap(xy: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> float:
    """Mean distance between the three middle pairs of inner lip points."""
    middle = slice(len(upper) // 2 - 1, len(upper) // 2 + 2)
    return float(np.linalg.norm(xy[lower[middle]] - xy[upper[middle]], axis=1).mean())


def _teeth_colour(portrait: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """The photo's own teeth where they show (bright pixels inside the lips), else a default."""
    mask = np.zeros(portrait.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(contour).astype(np.int32)], 1)
    pixels = portrait[mask.astype(bool)].astype(np.float64)
    if len(pixels) >= 12:
        brightness = pixels.mean(axis=1)
        bright = pixels[brightness >= np.percentile(brightness, 75)]
        if bright.mean() > 150 and np.ptp(bright.mean(axis=0)) < 60:
            return bright.mean(axis=0)
    return DEFAULT_TEETH
