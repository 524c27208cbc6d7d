"""Backward warp maps for a deformed triangle mesh, with a depth test, in numpy.

The map is sampled on a coarse grid (every ``step`` pixels) and upsampled bilinearly: a
piecewise-affine map is linear inside each triangle, so the upsampling is exact there and
smooth across edges, while the per-frame cost drops by ``step**2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EDGE_TOLERANCE = 1e-4
BACKFACE_BIAS = 1e9


@dataclass(frozen=True)
class Region:
    """The part of the frame the mesh can change: top-left corner, size, grid step (pixels)."""

    x: int
    y: int
    width: int
    height: int
    step: int

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, cols) of the coarse grid."""
        return -(-self.height // self.step), -(-self.width // self.step)

    def to_grid(self, xy: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates -> coarse grid coordinates (sample centres are integers)."""
        origin = np.array([self.x, self.y], dtype=np.float64)
        return (xy - origin + 0.5) / self.step - 0.5

    def to_frame(self, grid_xy: np.ndarray) -> np.ndarray:
        """Coarse grid coordinates -> frame pixel coordinates (the inverse of ``to_grid``)."""
        origin = np.array([self.x, self.y], dtype=np.float64)
        return origin + (grid_xy + 0.5) * self.step - 0.5


def warp_maps(
    region: Region,
    triangles: np.ndarray,
    dst_xy: np.ndarray,
    dst_depth: np.ndarray,
    src_xy: np.ndarray,
    depth_bias: np.ndarray,
    orientation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution float32 maps (height, width) from frame pixels back to source pixels.

    Where triangles overlap, the one nearest the camera (least depth + bias) wins; triangles
    whose winding flipped against ``orientation`` (their sign in the photo) face away and lose
    to every other one, so they only fill what nothing else covers. Pixels no triangle covers
    map to themselves.
    """
    rows, cols = region.grid_shape
    shift = np.zeros((rows * cols, 2))

    g = region.to_grid(dst_xy)[triangles]  # (T, 3, 2) vertices in grid coordinates
    e1, e2 = g[:, 1] - g[:, 0], g[:, 2] - g[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    lo = np.ceil(g.min(axis=1) - EDGE_TOLERANCE).astype(np.int64)
    hi = np.floor(g.max(axis=1) + EDGE_TOLERANCE).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [cols - 1, rows - 1])
    keep = (np.abs(det) > 1e-9) & (hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1])
    if not keep.any():
        return _upsample(region, shift)
    tri_ids = np.nonzero(keep)[0]
    bias = depth_bias + np.where(det * orientation < 0, BACKFACE_BIAS, 0.0)
    lo, hi, g, e1, e2, det = lo[keep], hi[keep], g[keep], e1[keep], e2[keep], det[keep]

    # Every (triangle, grid sample) pair inside the triangle's bounding box.
    box_w = hi[:, 0] - lo[:, 0] + 1
    counts = box_w * (hi[:, 1] - lo[:, 1] + 1)
    pair_tri = np.repeat(np.arange(len(tri_ids)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = lo[pair_tri, 0] + offset % box_w[pair_tri]
    py = lo[pair_tri, 1] + offset // box_w[pair_tri]

    # Barycentric coordinates of each sample in its triangle.
    dx = px - g[pair_tri, 0, 0]
    dy = py - g[pair_tri, 0, 1]
    inv = 1.0 / det[pair_tri]
    b1 = (dx * e2[pair_tri, 1] - dy * e2[pair_tri, 0]) * inv
    b2 = (e1[pair_tri, 0] * dy - e1[pair_tri, 1] * dx) * inv
    b0 = 1.0 - b1 - b2
    inside = (b0 >= -EDGE_TOLERANCE) & (b1 >= -EDGE_TOLERANCE) & (b2 >= -EDGE_TOLERANCE)
    pair_tri, b0, b1, b2 = pair_tri[inside], b0[inside], b1[inside], b2[inside]
    px, py = px[inside], py[inside]
    pixel = py * cols + px

    corners = triangles[tri_ids[pair_tri]]  # (P, 3) vertex ids
    depth = (
        b0 * dst_depth[corners[:, 0]]
        + b1 * dst_depth[corners[:, 1]]
        + b2 * dst_depth[corners[:, 2]]
        + bias[tri_ids[pair_tri]]
    )
    nearest = np.full(rows * cols, np.inf)
    np.minimum.at(nearest, pixel, depth)
    win = depth <= nearest[pixel]
    corners, pixel = corners[win], pixel[win]
    sample = region.to_frame(np.stack([px[win], py[win]], axis=1))
    b0, b1, b2 = b0[win, None], b1[win, None], b2[win, None]
    src = b0 * src_xy[corners[:, 0]] + b1 * src_xy[corners[:, 1]] + b2 * src_xy[corners[:, 2]]
    shift[pixel] = src - sample
    return _upsample(region, shift)


def _upsample(region: Region, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coarse source-minus-destination shifts -> full-resolution absolute maps.

    Interpolating the shift, not the absolute map, keeps the identity exact at the region's
    edges, where the bilinear resize clamps.
    """
    rows, cols = region.grid_shape
    coarse = shift.reshape(rows, cols, 2).astype(np.float32)
    size = (cols * region.step, rows * region.step)
    full = cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR) if region.step > 1 else coarse
    full = full[: region.height, : region.width]
    xs = np.arange(region.x, region.x + region.width, dtype=np.float32)
    ys = np.arange(region.y, region.y + region.height, dtype=np.float32)
    return full[..., 0] + xs[None, :], full[..., 1] + ys[:, None]


def winding(triangles: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(T,) +1 or -1: the sign of each triangle's signed area."""
    g = xy[triangles]
    e1, e2 = g[:, 1] - g[:, 0], g[:, 2] - g[:, 0]
    return np.sign(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
