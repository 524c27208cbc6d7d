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
FOLD_JUMP = 4.0  # px beyond the grid step between neighbouring shifts: a fold, not a stretch
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

    Where the surface folds (a turned head's far cheek behind the nose or over the hair),
    neighbouring grid samples map to distant parts of the photo, and blending them would draw
    whatever lies between as a dark crack; pixels near such a tear are rasterized one by one.
    """
    bias = depth_bias + np.where(winding(triangles, dst_xy) * orientation < 0, BACKFACE_BIAS, 0.0)
    # Contiguous copies: gathering rows from strided views (columns of the posed vertices) is
    # several times slower.
    dst_xy, dst_depth, src_xy = (np.ascontiguousarray(a) for a in (dst_xy, dst_depth, src_xy))
    parts = (triangles, dst_xy, dst_depth, src_xy, bias)
    rows, cols = region.grid_shape
    shift = np.zeros((rows * cols, 2))
    winner = np.full(rows * cols, -1)
    sample, tri, exact = _nearest_surface(region, *parts)
    shift[sample], winner[sample] = exact, tri
    coarse = shift.reshape(rows, cols, 2).astype(np.float32)
    full = _upsample(region, coarse)
    if region.step > 1:
        torn = _torn(coarse, FOLD_JUMP + region.step)
        if torn.any():
            _refine_tears(full, region, torn, winner.reshape(rows, cols), parts)
    xs = np.arange(region.x, region.x + region.width, dtype=np.float32)
    ys = np.arange(region.y, region.y + region.height, dtype=np.float32)
    return full[..., 0] + xs[None, :], full[..., 1] + ys[:, None]


def _nearest_surface(
    grid: Region,
    triangles: np.ndarray,
    dst_xy: np.ndarray,
    dst_depth: np.ndarray,
    src_xy: np.ndarray,
    bias: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every sample of ``grid`` that a triangle covers: its flat index, the nearest
    covering triangle and that triangle's source-minus-destination shift there."""
    rows, cols = grid.grid_shape
    g = grid.to_grid(dst_xy)[triangles]  # (T, 3, 2) vertices in grid coordinates
    e1, e2 = g[:, 1] - g[:, 0], g[:, 2] - g[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    lo = np.ceil(g.min(axis=1) - EDGE_TOLERANCE).astype(np.int64)
    hi = np.floor(g.max(axis=1) + EDGE_TOLERANCE).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [cols - 1, rows - 1])
    keep = (np.abs(det) > 1e-9) & (hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1])
    tri_ids = np.nonzero(keep)[0]
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
    sample = grid.to_frame(np.stack([px[win], py[win]], axis=1))
    b0, b1, b2 = b0[win, None], b1[win, None], b2[win, None]
    src = b0 * src_xy[corners[:, 0]] + b1 * src_xy[corners[:, 1]] + b2 * src_xy[corners[:, 2]]
    return pixel, tri_ids[pair_tri[win]], src - sample


def _torn(coarse: np.ndarray, jump: float) -> np.ndarray:
    """(rows, cols) samples whose shift differs from a neighbour's by more than ``jump``."""
    torn = np.zeros(coarse.shape[:2], bool)
    across = np.abs(np.diff(coarse, axis=1)).max(axis=2) > jump
    down = np.abs(np.diff(coarse, axis=0)).max(axis=2) > jump
    torn[:, 1:] |= across
    torn[:, :-1] |= across
    torn[1:] |= down
    torn[:-1] |= down
    return torn


def _refine_tears(
    full: np.ndarray,
    region: Region,
    torn: np.ndarray,
    winner: np.ndarray,
    parts: tuple[np.ndarray, ...],
) -> None:
    """Rasterize the pixels around torn samples one by one (in place in ``full``).

    A pixel there is covered by one of the triangles that won the samples around it, so only
    those (at most nine) are tested: the cost follows the length of the tear, not the size of
    the triangles along it (the hair ring's are large).
    """
    triangles, dst_xy, dst_depth, src_xy, bias = parts
    step = region.step
    # Both samples either side of a jump are torn, and each one's block reaches halfway to
    # the other: together they hold every pixel that blends across the jump.
    blocks = np.argwhere(torn)
    # Candidates: the winners at each block's sample and its eight neighbours, each once.
    padded = np.pad(winner, 1, constant_values=-1)
    around = np.sort(
        np.stack(
            [padded[blocks[:, 0] + dy, blocks[:, 1] + dx] for dy in range(3) for dx in range(3)],
            axis=1,
        ),
        axis=1,
    )  # (B, 9)
    around[:, 1:][around[:, 1:] == around[:, :-1]] = -1
    # The pixels whose nearest sample is each block's: a step x step square around it.
    offsets = np.arange(step) - (step - 1) // 2
    oy, ox = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij"))
    py = (blocks[:, 0, None] * step + (step - 1) // 2 + oy[None, :]).ravel()  # (B * S,)
    px = (blocks[:, 1, None] * step + (step - 1) // 2 + ox[None, :]).ravel()
    cand = np.repeat(around, step * step, axis=0)  # (B * S, 9)
    valid = (cand >= 0) & (py < region.height)[:, None] & (px < region.width)[:, None]
    pix, slot = np.nonzero(valid)
    tri = cand[pix, slot]
    x = region.x + px[pix].astype(np.float64)
    y = region.y + py[pix].astype(np.float64)
    corners = triangles[tri]
    a, b, c = dst_xy[corners[:, 0]], dst_xy[corners[:, 1]], dst_xy[corners[:, 2]]
    e1, e2 = b - a, c - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-9
    det = np.where(ok, det, 1.0)
    dx, dy = x - a[:, 0], y - a[:, 1]
    b1 = (dx * e2[:, 1] - dy * e2[:, 0]) / det
    b2 = (e1[:, 0] * dy - e1[:, 1] * dx) / det
    b0 = 1.0 - b1 - b2
    inside = ok & (b0 >= -EDGE_TOLERANCE) & (b1 >= -EDGE_TOLERANCE) & (b2 >= -EDGE_TOLERANCE)
    depth = (
        b0 * dst_depth[corners[:, 0]]
        + b1 * dst_depth[corners[:, 1]]
        + b2 * dst_depth[corners[:, 2]]
        + bias[tri]
    )
    depth = np.where(inside, depth, np.inf)
    flat = py[pix] * region.width + px[pix]
    nearest = np.full(region.height * region.width, np.inf)
    np.minimum.at(nearest, flat, depth)
    win = inside & (depth <= nearest[flat])
    src = (
        b0[win, None] * src_xy[corners[win, 0]]
        + b1[win, None] * src_xy[corners[win, 1]]
        + b2[win, None] * src_xy[corners[win, 2]]
    )
    out = full.reshape(-1, 2)
    out[flat[win]] = src - np.stack([x[win], y[win]], axis=1)


def _upsample(region: Region, coarse: np.ndarray) -> np.ndarray:
    """Coarse source-minus-destination shifts (rows, cols, 2) -> (height, width, 2) float32.

    Interpolating the shift, not the absolute map, keeps the identity exact at the region's
    edges, where the bilinear resize clamps.
    """
    rows, cols = coarse.shape[:2]
    size = (cols * region.step, rows * region.step)
    full = cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR) if region.step > 1 else coarse
    return np.ascontiguousarray(full[: region.height, : region.width])


def winding(triangles: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(T,) +1 or -1: the sign of each triangle's signed area."""
    g = xy[triangles]
    e1, e2 = g[:, 1] - g[:, 0], g[:, 2] - g[:, 0]
    return np.sign(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
