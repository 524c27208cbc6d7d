"""Trilinear 5-D ``grid_sample`` built from plain ops, so it exports without a GridSample node.

TensorRT's GridSample layer is 4-D only; LivePortrait's warping module and dense-motion
network (``src/modules/warping_network.py``, ``src/modules/dense_motion.py``) sample a
3-D feature volume with ``F.grid_sample(..., align_corners=False)`` and the default
bilinear mode and zero padding. :func:`grid_sample_3d` reproduces exactly that.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _source_index(coord: Tensor, size: int) -> Tensor:
    """Normalised ``[-1, 1]`` coordinate to pixel index, ``align_corners=False``."""
    return ((coord + 1.0) * size - 1.0) * 0.5


def grid_sample_3d(volume: Tensor, grid: Tensor) -> Tensor:
    """Sample ``volume [N, C, D, H, W]`` at ``grid [N, Do, Ho, Wo, 3]`` -> ``[N, C, Do, Ho, Wo]``.

    Equals ``F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros",
    align_corners=False)``. The grid's last axis is ``(x, y, z)`` indexing ``(W, H, D)``.
    Each of the eight corners is gathered from the flattened volume with a clamped index
    and weighted by zero when it lies outside the volume.
    """
    if volume.ndim != 5 or grid.ndim != 5 or grid.shape[-1] != 3:
        raise ValueError(
            f"expected volume [N, C, D, H, W] and grid [N, Do, Ho, Wo, 3], "
            f"got {tuple(volume.shape)} and {tuple(grid.shape)}"
        )
    n, c, d, h, w = volume.shape
    _, d_out, h_out, w_out, _ = grid.shape
    points = d_out * h_out * w_out

    # [N*D*H*W, C]: one row per voxel, so a single 1-D index gathers all channels.
    rows = volume.permute(0, 2, 3, 4, 1).reshape(n * d * h * w, c)
    coords = grid.reshape(n, points, 3)
    ix = _source_index(coords[..., 0], w)
    iy = _source_index(coords[..., 1], h)
    iz = _source_index(coords[..., 2], d)
    x0, y0, z0 = ix.floor(), iy.floor(), iz.floor()
    fx, fy, fz = ix - x0, iy - y0, iz - z0
    batch_offset = (torch.arange(n, device=volume.device) * (d * h * w)).reshape(n, 1)

    out = volume.new_zeros(n, points, c)
    for dz in (0, 1):
        z = z0 + dz
        wz = fz if dz else 1.0 - fz
        z_ok = (z >= 0) & (z <= d - 1)
        for dy in (0, 1):
            y = y0 + dy
            wy = fy if dy else 1.0 - fy
            y_ok = (y >= 0) & (y <= h - 1)
            for dx in (0, 1):
                x = x0 + dx
                wx = fx if dx else 1.0 - fx
                inside = z_ok & y_ok & (x >= 0) & (x <= w - 1)
                weight = wx * wy * wz * inside.to(volume.dtype)
                flat = (
                    z.clamp(0, d - 1).long() * (h * w)
                    + y.clamp(0, h - 1).long() * w
                    + x.clamp(0, w - 1).long()
                    + batch_offset
                )
                corner = rows.index_select(0, flat.reshape(-1)).reshape(n, points, c)
                out = out + corner * weight.unsqueeze(-1)
    return out.permute(0, 2, 1).reshape(n, c, d_out, h_out, w_out)
