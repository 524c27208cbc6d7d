"""Head-pose and implicit-keypoint math with LivePortrait's exact conventions, in NumPy.

The renderer runs on ONNX Runtime alone, so this needs no torch. Conventions follow
KwaiVGI/LivePortrait (MIT): ``src/utils/camera.py`` (``headpose_pred_to_degree``,
``get_rotation_matrix``) and ``src/live_portrait_wrapper.py`` (``transform_keypoint``).
Keypoint space: x right, y down, z into the picture, about [-1, 1] across the 256 crop.
"""

from __future__ import annotations

import numpy as np

NUM_POSE_BINS = 66
"""Head-pose classifier bins; bin ``k`` stands for ``3 * k - 97.5`` degrees."""


def headpose_to_degrees(logits: np.ndarray) -> float:
    """Pose logits ``(66,)`` -> degrees: ``3 * E[bin] - 97.5`` under a softmax."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if logits.shape != (NUM_POSE_BINS,):
        raise ValueError(f"expected {NUM_POSE_BINS} pose logits, got shape {logits.shape}")
    weights = np.exp(logits - logits.max())
    expectation = float((weights * np.arange(NUM_POSE_BINS)).sum() / weights.sum())
    return expectation * 3.0 - 97.5


def rotation_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """``(3, 3)`` from degrees: pitch about x, yaw about y, roll about z.

    As camera.py ``get_rotation_matrix``: ``Rz @ Ry @ Rx`` returned *transposed*, because
    keypoints are row vectors multiplied on the right (``kp @ R``).
    """
    x, y, z = np.radians([pitch, yaw, roll])
    rot_x = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    rot_y = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rot_z = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    out: np.ndarray = (rot_z @ rot_y @ rot_x).T
    return out


def transform_keypoints(
    kp_canonical: np.ndarray,
    pitch: float,
    yaw: float,
    roll: float,
    expression: np.ndarray,
    translation: np.ndarray,
    scale: float,
) -> np.ndarray:
    """Posed keypoints ``(K, 3)``: ``scale * (kp @ R + exp) + t`` with ``t_z`` ignored.

    LivePortrait's Eqn. 2 as live_portrait_wrapper.py ``transform_keypoint`` implements it
    (only tx and ty are applied). ``kp_canonical`` and ``expression`` are ``(K, 3)`` or flat.
    """
    kp = np.asarray(kp_canonical, dtype=np.float64).reshape(-1, 3)
    exp = np.asarray(expression, dtype=np.float64).reshape(-1, 3)
    posed = (kp @ rotation_matrix(pitch, yaw, roll) + exp) * float(scale)
    posed[:, :2] += np.asarray(translation, dtype=np.float64).reshape(-1)[:2]
    return posed
