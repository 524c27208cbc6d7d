"""Head-pose and implicit-keypoint math with LivePortrait's exact conventions.

Conventions follow KwaiVGI/LivePortrait (MIT): ``src/utils/camera.py``
(``headpose_pred_to_degree``, ``get_rotation_matrix``) and
``src/live_portrait_wrapper.py`` (``LivePortraitWrapper.transform_keypoint``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NUM_POSE_BINS = 66
"""Head-pose classifier bins; bin ``k`` stands for ``3 * k - 97.5`` degrees."""


def headpose_to_degrees(pred: Tensor) -> Tensor:
    """Turn pose logits ``[B, 66]`` into angles ``[B]`` in degrees.

    Softmax expectation over the bins: ``3 * E[bin] - 97.5`` (camera.py,
    ``headpose_pred_to_degree``).
    """
    if pred.ndim != 2 or pred.shape[1] != NUM_POSE_BINS:
        raise ValueError(
            f"expected pose logits of shape [B, {NUM_POSE_BINS}], got {tuple(pred.shape)}"
        )
    bins = torch.arange(NUM_POSE_BINS, dtype=pred.dtype, device=pred.device)
    expectation = (torch.softmax(pred, dim=1) * bins).sum(dim=1)
    return expectation * 3.0 - 97.5


def _as_column(angle: Tensor) -> Tensor:
    """Degrees ``[B]`` or ``[B, 1]`` to radians ``[B, 1]``."""
    if angle.ndim == 1:
        angle = angle.unsqueeze(1)
    if angle.ndim != 2 or angle.shape[1] != 1:
        raise ValueError(f"expected angles of shape [B] or [B, 1], got {tuple(angle.shape)}")
    return angle * (math.pi / 180.0)


def rotation_matrix(pitch: Tensor, yaw: Tensor, roll: Tensor) -> Tensor:
    """Rotation matrices ``[B, 3, 3]`` from angles in degrees (``[B]`` or ``[B, 1]`` each).

    As in camera.py ``get_rotation_matrix``: pitch about x, yaw about y, roll about z,
    composed ``Rz @ Ry @ Rx`` and returned *transposed*, because keypoints are row
    vectors multiplied on the right (``kp @ R``).
    """
    x, y, z = _as_column(pitch), _as_column(yaw), _as_column(roll)
    ones = torch.ones_like(x)
    zeros = torch.zeros_like(x)
    batch = x.shape[0]

    def _matrix(*entries: Tensor) -> Tensor:
        return torch.cat(entries, dim=1).reshape(batch, 3, 3)

    rot_x = _matrix(ones, zeros, zeros, zeros, x.cos(), -x.sin(), zeros, x.sin(), x.cos())
    rot_y = _matrix(y.cos(), zeros, y.sin(), zeros, ones, zeros, -y.sin(), zeros, y.cos())
    rot_z = _matrix(z.cos(), -z.sin(), zeros, z.sin(), z.cos(), zeros, zeros, zeros, ones)
    return (rot_z @ rot_y @ rot_x).transpose(1, 2)


def transform_keypoints(
    kp_canonical: Tensor,
    pitch: Tensor,
    yaw: Tensor,
    roll: Tensor,
    expression: Tensor,
    translation: Tensor,
    scale: Tensor,
) -> Tensor:
    """Posed keypoints ``[B, K, 3]``: ``scale * (kp @ R + exp) + t`` with ``t_z`` ignored.

    ``kp_canonical`` and ``expression`` are ``[B, K, 3]`` (or flat ``[B, 3K]``), the
    angles are degrees (``[B]`` or ``[B, 1]``), ``translation`` is ``[B, 3]`` and
    ``scale`` is ``[B, 1]``. LivePortrait's Eqn. 2 as implemented in
    live_portrait_wrapper.py ``transform_keypoint`` (only tx and ty are applied).
    """
    batch = kp_canonical.shape[0]
    kp = kp_canonical.reshape(batch, -1, 3)
    exp = expression.reshape(batch, -1, 3)
    rot = rotation_matrix(pitch, yaw, roll)
    posed = (kp @ rot + exp) * scale.reshape(batch, 1, 1)
    shift = torch.cat([translation[:, :2], torch.zeros_like(translation[:, 2:3])], dim=1)
    return posed + shift[:, None, :]
