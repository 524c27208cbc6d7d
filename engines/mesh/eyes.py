"""Paints closing eyelids in the portrait's own skin tone, with a lash line.

The warp slides the upper lid down, which drags lashes and eyeliner across the eye; above the
moving lid edge a lid in sampled skin tone fades in as the eye closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.controls import FaceControls
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


@dataclass(frozen=True)
class Eyelid:
    upper: np.ndarray  # upper lid vertex ids, corner to corner
    opening: np.ndarray  # (len(upper),) distance from each upper lid point to the lower lid
    skin: np.ndarray  # RGB of the lid skin
    lash: np.ndarray  # RGB of the lash line


@dataclass(frozen=True)
class EyelidPainter:
    right: Eyelid
    left: Eyelid
    down: np.ndarray
    lash_width: float

    @staticmethod
    def from_portrait(portrait: np.ndarray, mesh: Mesh) -> EyelidPainter:
        xy = mesh.vertices[:, :2]
        f = mesh.frame
        lids = [
            _eyelid(portrait, xy, f.down, upper, lower, brow)
            for upper, lower, brow in (
                (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER, topo.RIGHT_BROW),
                (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER, topo.LEFT_BROW),
            )
        ]
        return EyelidPainter(lids[0], lids[1], f.down, max(1.0, 0.011 * f.height))

    def paint(
        self, patch: np.ndarray, origin: tuple[int, int], dst_xy: np.ndarray, c: FaceControls
    ) -> None:
        roll = np.radians(c.head_roll)
        down = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]]) @ self.down
        for lid, closed in ((self.right, c.blink_right), (self.left, c.blink_left)):
            if closed > 0.15:
                self._paint_lid(patch, dst_xy[lid.upper] - origin, down, lid, closed)

    def _paint_lid(
        self, patch: np.ndarray, edge: np.ndarray, down: np.ndarray, lid: Eyelid, closed: float
    ) -> None:
        top = edge - (closed * lid.opening)[:, None] * down
        polygon = np.vstack([edge + 0.1 * lid.opening.max() * down, top[::-1]])
        box = box_around(polygon, patch.shape)
        if is_empty(box):
            return
        x0, y0, x1, y1 = box
        size = (y1 - y0, x1 - x0)
        offset = np.array([x0, y0])
        lid_mask = polygon_mask(size, polygon - offset)
        soft = 2 * max(1, round(0.25 * closed * lid.opening.max())) + 1
        lid_mask = cv2.GaussianBlur(lid_mask, (soft, soft), 0)
        lash_mask = np.zeros(size, np.uint8)
        fixed = to_fixed(edge - offset)
        thickness = max(1, round(self.lash_width))
        cv2.polylines(lash_mask, [fixed], False, 255, thickness, cv2.LINE_AA, SUBPIXEL_BITS)

        fade = float(np.clip((closed - 0.15) / 0.6, 0.0, 1.0))
        lash_alpha = lash_mask.astype(np.float32) / 255.0 * 0.8 * fade
        blend_into(patch, box, [(lid_mask * fade, lid.skin), (lash_alpha, lid.lash)])


def _eyelid(
    portrait: np.ndarray,
    xy: np.ndarray,
    down: np.ndarray,
    upper: tuple[int, ...],
    lower: tuple[int, ...],
    brow: tuple[int, ...],
) -> Eyelid:
    up_xy, low_xy = xy[list(upper)], xy[list(lower)]
    opening = np.abs((low_xy - up_xy) @ down)
    # Skin between the lid crease and the brow: a band a third of the way up to the brow.
    lift = float((up_xy.mean(axis=0) - xy[list(brow)].mean(axis=0)) @ down)
    samples = up_xy[1:-1] - 0.4 * lift * down
    skin = _sample(portrait, samples)
    lash_samples = _sample_all(portrait, up_xy[1:-1])
    lash = np.minimum(lash_samples.min(axis=0), 0.45 * skin)
    return Eyelid(np.array(upper), opening, skin, lash)


def _sample_all(portrait: np.ndarray, points: np.ndarray) -> np.ndarray:
    h, w = portrait.shape[:2]
    cols = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    rows = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    return portrait[rows, cols].astype(np.float64)


def _sample(portrait: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.median(_sample_all(portrait, points), axis=0)
