"""Paints the inside of an opened mouth (dark cavity, upper-teeth hint, soft edges) and the
seam of lips pressed together.

A warp can only stretch the lips' own pixels across the gap; wherever the lips part more than
in the photo, a painted interior fades in instead. Where they close more than in the photo
(m, b, p), the photo's teeth would still peep out between the inner lip landmarks, which sit
inside the visible lip edge; a band in the photo's own lip colours with a darker seam covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.face import topology as topo
from engines.mesh.geometry import Mesh
from engines.mesh.painting import (
    SUBPIXEL_BITS,
    blend_into,
    box_around,
    is_empty,
    polygon_mask,
    to_fixed,
)

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
    lip_colours: np.ndarray  # [2, 3] RGB of the upper and the lower lip

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
            lip_colours=np.array(
                [
                    _median_colour(
                        portrait, xy[list(topo.LIPS_UPPER_OUTER + topo.LIPS_UPPER_INNER[::-1])]
                    ),
                    _median_colour(
                        portrait, xy[list(topo.LIPS_LOWER_OUTER + topo.LIPS_LOWER_INNER[::-1])]
                    ),
                ]
            ),
        )

    def paint(self, patch: np.ndarray, origin: tuple[int, int], dst_xy: np.ndarray) -> None:
        gap = _gap(dst_xy, self.upper, self.lower)
        if gap < self.source_gap:
            self._seal(patch, origin, dst_xy, gap)
            return
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

    def _seal(
        self, patch: np.ndarray, origin: tuple[int, int], dst_xy: np.ndarray, gap: float
    ) -> None:
        """Lips closer than in the photo: cover the seam with lip colour, fading in as they meet."""
        opacity = float(np.clip((self.source_gap - gap) / (0.6 * self.source_gap), 0.0, 1.0))
        if opacity <= 0.0:
            return
        upper = dst_xy[self.upper] - origin
        lower = dst_xy[self.lower] - origin
        seam = (upper + lower) / 2
        # Thickest in the middle, nothing at the corners.
        taper = np.sin(np.linspace(0.0, np.pi, len(seam)))[:, None]
        half = taper * (0.2 * self.source_gap + 1.0) * self.down
        top = seam - np.abs(seam - upper) - half
        bottom = seam + np.abs(lower - seam) + half
        box = box_around(np.vstack([top, bottom]), patch.shape)
        if is_empty(box):
            return
        x0, y0, x1, y1 = box
        size = (y1 - y0, x1 - x0)
        shift = np.array([x0, y0])
        upper_half = polygon_mask(size, np.vstack([top, seam[::-1]]) - shift)
        band = polygon_mask(size, np.vstack([top, bottom[::-1]]) - shift)
        band = cv2.GaussianBlur(band, (3, 3), 0)
        colour = self.lip_colours[1] + upper_half[..., None] * (
            self.lip_colours[0] - self.lip_colours[1]
        )
        line = np.zeros(size, np.uint8)
        cv2.polylines(line, [to_fixed(seam - shift)], False, 255, 1, cv2.LINE_AA, SUBPIXEL_BITS)
        line_alpha = cv2.GaussianBlur(line.astype(np.float32) / 255.0, (3, 3), 0) * 0.6
        seam_colour = self.lip_colours.mean(axis=0) * 0.55
        blend_into(patch, box, [(band * opacity, colour), (line_alpha * opacity, seam_colour)])


def _median_colour(portrait: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Median RGB of the photo inside ``polygon`` (a lip), or a neutral lip tone if it is tiny."""
    mask = np.zeros(portrait.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    pixels = portrait[mask.astype(bool)]
    if len(pixels) < 12:
        return np.array([180.0, 110.0, 110.0])
    return np.median(pixels.astype(np.float64), axis=0)


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
