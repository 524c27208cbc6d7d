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
    generator = torch.Generator().manual_seed(3)
    pitch, yaw, roll = (torch.rand(8, generator=generator) * 180 - 90 for _ in range(3))
    rot = rotation_matrix(pitch, yaw, roll)
    assert rot.shape == (8, 3, 3)
    eye = torch.eye(3).expand(8, 3, 3)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(8), atol=1e-5)


def test_zero_angles_give_identity() -> None:
    zero = torch.zeros(2, 1)
    assert torch.allclose(rotation_matrix(zero, zero, zero), torch.eye(3).expand(2, 3, 3))


def test_single_axis_rotations_follow_liveportrait() -> None:
    zero, quarter = torch.zeros(1), torch.full((1,), 90.0)
    # camera.py: R = (Rz @ Ry @ Rx)^T and keypoints are row vectors (kp @ R).
    # Ry(90) = [[0,0,1],[0,1,0],[-1,0,0]], so its transpose maps x -> -z.
    yaw = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.allclose(rotation_matrix(zero, quarter, zero)[0], yaw, atol=1e-6)
    x_axis = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.allclose(
        x_axis @ rotation_matrix(zero, quarter, zero)[0],
        torch.tensor([[0.0, 0.0, -1.0]]),
        atol=1e-6,
    )
    pitch = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    assert torch.allclose(rotation_matrix(quarter, zero, zero)[0], pitch, atol=1e-6)
    roll = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(rotation_matrix(zero, zero, quarter)[0], roll, atol=1e-6)


def test_composition_order_is_roll_yaw_pitch() -> None:
    p, y, r = torch.tensor([20.0]), torch.tensor([-35.0]), torch.tensor([50.0])
    zero = torch.zeros(1)
    rx = rotation_matrix(p, zero, zero)[0].T
    ry = rotation_matrix(zero, y, zero)[0].T
    rz = rotation_matrix(zero, zero, r)[0].T
    assert torch.allclose(rotation_matrix(p, y, r)[0], (rz @ ry @ rx).T, atol=1e-6)


def test_headpose_to_degrees() -> None:
    logits = torch.full((3, 66), -1e4)
    for row, k in enumerate((0, 32, 65)):
        logits[row, k] = 1e4
    assert torch.allclose(headpose_to_degrees(logits), torch.tensor([-97.5, -1.5, 97.5]))
    # Equal mass on bins 32 and 33 is the 0-degree midpoint.
    logits = torch.full((1, 66), -1e4)
    logits[0, 32:34] = 0.0
    assert abs(headpose_to_degrees(logits).item()) < 1e-4
    with pytest.raises(ValueError):
        headpose_to_degrees(torch.zeros(2, 65))


def test_transform_keypoints_identity_and_scale_translation() -> None:
    generator = torch.Generator().manual_seed(11)
    kp = torch.randn(2, 21, 3, generator=generator)
    zero_angle = torch.zeros(2)
    zero_exp = torch.zeros(2, 21, 3)
    out = transform_keypoints(
        kp, zero_angle, zero_angle, zero_angle, zero_exp, torch.zeros(2, 3), torch.ones(2, 1)
    )
    assert torch.allclose(out, kp)

    exp = torch.randn(2, 21, 3, generator=generator)
    t = torch.tensor([[0.1, -0.2, 5.0], [0.3, 0.4, -7.0]])
    s = torch.tensor([[2.0], [0.5]])
    out = transform_keypoints(kp, zero_angle, zero_angle, zero_angle, exp, t, s)
    want = s[:, :, None] * (kp + exp)
    want[..., :2] += t[:, None, :2]  # t_z is ignored
    assert torch.allclose(out, want, atol=1e-6)

    pitch, yaw, roll = (
        torch.tensor([10.0, -5.0]),
        torch.tensor([30.0, 12.0]),
        torch.tensor([-8.0, 3.0]),
    )
    out = transform_keypoints(kp, pitch, yaw, roll, exp, t, s)
    want = s[:, :, None] * (kp @ rotation_matrix(pitch, yaw, roll) + exp)
    want[..., :2] += t[:, None, :2]
    assert torch.allclose(out, want, atol=1e-5)
