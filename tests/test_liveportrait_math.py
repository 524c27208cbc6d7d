"""LivePortrait keypoint math and the ONNX-friendly 5-D grid sampler."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from engines.liveportrait.keypoints import (  # noqa: E402
    headpose_to_degrees,
    rotation_matrix,
    transform_keypoints,
)
from engines.liveportrait.sampler import grid_sample_3d  # noqa: E402

TOL = 1e-5


def _reference(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _grid(generator: torch.Generator, n: int, d: int, h: int, w: int) -> torch.Tensor:
    """Random grid spanning [-1.3, 1.3], with some points exactly on -1, 0, 1."""
    grid = torch.rand(n, d, h, w, 3, generator=generator) * 2.6 - 1.3
    flat = grid.view(-1)
    picks = torch.randint(0, flat.numel(), (max(1, flat.numel() // 5),), generator=generator)
    values = torch.tensor([-1.0, 1.0, 0.0, -1.3, 1.3])
    flat[picks] = values[torch.randint(0, len(values), picks.shape, generator=generator)]
    return grid


@pytest.mark.parametrize(
    ("volume_shape", "grid_shape"),
    [
        ((2, 4, 5, 6, 7), (2, 3, 4, 5)),
        ((1, 3, 1, 1, 1), (1, 2, 2, 2)),
        ((3, 2, 2, 9, 4), (3, 1, 7, 6)),
        ((1, 32, 16, 64, 64), (1, 16, 32, 32)),
    ],
)
def test_grid_sample_3d_matches_torch(
    volume_shape: tuple[int, ...], grid_shape: tuple[int, ...]
) -> None:
    generator = torch.Generator().manual_seed(sum(volume_shape))
    volume = torch.randn(*volume_shape, generator=generator)
    grid = _grid(generator, *grid_shape)
    got = grid_sample_3d(volume, grid)
    want = _reference(volume, grid)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= TOL


def test_grid_sample_3d_voxel_centres_and_far_outside() -> None:
    volume = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(1, 2, 3, 4, 5)
    # Voxel centres under align_corners=False: (2 * i + 1) / size - 1.
    zs, ys, xs = (torch.tensor([(2 * i + 1) / s - 1 for i in range(s)]) for s in (3, 4, 5))
    z, y, x = torch.meshgrid(zs, ys, xs, indexing="ij")
    grid = torch.stack([x, y, z], dim=-1)[None]
    assert (grid_sample_3d(volume, grid) - volume).abs().max().item() <= TOL
    far = torch.full((1, 1, 1, 2, 3), 5.0)
    far[0, 0, 0, 1] = -5.0
    assert grid_sample_3d(volume, far).abs().max().item() == 0.0


class _Sampler(torch.nn.Module):
    def forward(self, volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return grid_sample_3d(volume, grid)


def test_grid_sample_3d_exports_to_onnx_without_gridsample() -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    generator = torch.Generator().manual_seed(7)
    volume = torch.randn(2, 4, 5, 6, 7, generator=generator)
    grid = _grid(generator, 2, 3, 4, 5)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Sampler(),
            (volume, grid),
            buffer,
            opset_version=17,
            input_names=["volume", "grid"],
            output_names=["out"],
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    ops = {node.op_type for node in model.graph.node}
    assert "GridSample" not in ops
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"volume": volume.numpy(), "grid": grid.numpy()})
    want = _reference(volume, grid).numpy()
    assert np.abs(got - want).max() <= TOL


def test_rotation_matrices_are_proper_rotations() -> None:
    rng = np.random.default_rng(3)
    for pitch, yaw, roll in rng.uniform(-90, 90, size=(8, 3)):
        rot = rotation_matrix(pitch, yaw, roll)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        assert abs(np.linalg.det(rot) - 1.0) < 1e-12


def test_zero_angles_give_identity() -> None:
    np.testing.assert_allclose(rotation_matrix(0, 0, 0), np.eye(3))


def test_single_axis_rotations_follow_liveportrait() -> None:
    # camera.py: R = (Rz @ Ry @ Rx)^T and keypoints are row vectors (kp @ R).
    # Ry(90) = [[0,0,1],[0,1,0],[-1,0,0]], so its transpose maps x -> -z.
    yaw = [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    np.testing.assert_allclose(rotation_matrix(0, 90, 0), yaw, atol=1e-12)
    np.testing.assert_allclose(
        np.array([1.0, 0, 0]) @ rotation_matrix(0, 90, 0), [0, 0, -1], atol=1e-12
    )
    pitch = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]
    np.testing.assert_allclose(rotation_matrix(90, 0, 0), pitch, atol=1e-12)
    roll = [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(rotation_matrix(0, 0, 90), roll, atol=1e-12)


def test_composition_order_is_roll_yaw_pitch() -> None:
    rx = rotation_matrix(20, 0, 0).T
    ry = rotation_matrix(0, -35, 0).T
    rz = rotation_matrix(0, 0, 50).T
    np.testing.assert_allclose(rotation_matrix(20, -35, 50), (rz @ ry @ rx).T, atol=1e-12)


def test_headpose_to_degrees() -> None:
    for k, want in ((0, -97.5), (32, -1.5), (65, 97.5)):
        logits = np.full(66, -1e4)
        logits[k] = 1e4
        assert headpose_to_degrees(logits) == pytest.approx(want)
    # Equal mass on bins 32 and 33 is the 0-degree midpoint.
    logits = np.full(66, -1e4)
    logits[32:34] = 0.0
    assert abs(headpose_to_degrees(logits)) < 1e-9
    with pytest.raises(ValueError):
        headpose_to_degrees(np.zeros(65))


def test_transform_keypoints_identity_and_scale_translation() -> None:
    rng = np.random.default_rng(11)
    kp = rng.normal(size=(21, 3))
    np.testing.assert_allclose(
        transform_keypoints(kp, 0, 0, 0, np.zeros((21, 3)), np.zeros(3), 1.0), kp
    )
    exp = rng.normal(size=(21, 3))
    t = np.array([0.1, -0.2, 5.0])
    out = transform_keypoints(kp.reshape(-1), 0, 0, 0, exp.reshape(-1), t, 2.0)
    want = 2.0 * (kp + exp)
    want[:, :2] += t[:2]  # t_z is ignored
    np.testing.assert_allclose(out, want, atol=1e-12)
    out = transform_keypoints(kp, 10, 30, -8, exp, t, 0.5)
    want = 0.5 * (kp @ rotation_matrix(10, 30, -8) + exp)
    want[:, :2] += t[:2]
    np.testing.assert_allclose(out, want, atol=1e-12)
