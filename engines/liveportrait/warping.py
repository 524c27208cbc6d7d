"""W, the warping network: moves the source feature volume from source to driving keypoints.

Structure of ``src/modules/warping_network.py`` and ``dense_motion.py`` (KwaiVGI/LivePortrait,
MIT). The dense-motion network compresses the volume, warps it once per keypoint by that
keypoint's translation (plus an identity "background" warp), stacks the warps with Gaussian
heat-map differences, and lets a 3-D hourglass predict per-voxel soft masks over the 22
candidate flows and a 2-D occlusion map. The blended flow samples the full volume, which
two 2-D convs turn into the decoder's input.

Both 5-D samplings run either through ``F.grid_sample`` or, for TensorRT, through the exact
gather-based :func:`~engines.liveportrait.sampler.grid_sample_3d`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engines.liveportrait.blocks import Hourglass3d, SameBlock2d
from engines.liveportrait.sampler import grid_sample_3d

KP_VARIANCE = 0.01


@dataclass(frozen=True)
class DenseMotionConfig:
    """``dense_motion_params`` of ``src/config/models.yaml``."""

    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4


@dataclass(frozen=True)
class WarpingConfig:
    """``warping_module_params`` of ``src/config/models.yaml``."""

    num_kp: int = 21
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)

    @property
    def out_channels(self) -> int:
        return self.block_expansion * 2**self.num_down_blocks


def sample_volume(volume: Tensor, grid: Tensor, *, gather: bool) -> Tensor:
    """Trilinear sampling with zero padding and ``align_corners=False``."""
    if gather:
        return grid_sample_3d(volume, grid)
    return F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def coordinate_grid(depth: int, height: int, width: int, like: Tensor) -> Tensor:
    """``[D, H, W, 3]`` voxel centres as ``(x, y, z)`` in [-1, 1], corners included.

    LivePortrait spaces the grid with ``2 * i / (n - 1) - 1`` (corner-aligned) although its
    ``grid_sample`` calls use ``align_corners=False``; the trained weights expect exactly that.
    """

    def axis(n: int) -> Tensor:
        return torch.arange(n, dtype=like.dtype, device=like.device) * (2.0 / (n - 1)) - 1.0

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def gaussian_heatmaps(kp: Tensor, grid: Tensor) -> Tensor:
    """``[B, K, D, H, W]``: an isotropic Gaussian around each keypoint ``kp [B, K, 3]``."""
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / KP_VARIANCE)


class DenseMotionNetwork(nn.Module):
    """Predicts the flow ``[B, D, H, W, 3]`` and the occlusion map ``[B, 1, H, W]``."""

    def __init__(
        self, cfg: DenseMotionConfig, num_kp: int, feature_channel: int, *, gather: bool
    ) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.gather = gather
        self.hourglass = Hourglass3d(
            cfg.block_expansion, (num_kp + 1) * (cfg.compress + 1), cfg.num_blocks, cfg.max_features
        )
        hidden = self.hourglass.out_filters
        self.mask = nn.Conv3d(hidden, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, cfg.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(cfg.compress)
        self.occlusion = nn.Conv2d(hidden * cfg.reshape_depth, 1, kernel_size=7, padding=3)

    def forward(
        self, feature: Tensor, kp_driving: Tensor, kp_source: Tensor
    ) -> tuple[Tensor, Tensor]:
        feature = F.relu(self.norm(self.compress(feature)))
        batch, channels, depth, height, width = feature.shape
        candidates = self.num_kp + 1
        grid = coordinate_grid(depth, height, width, feature)

        # Candidate flows: identity, then for each keypoint a shift by (source - driving).
        shift = (kp_source - kp_driving)[:, :, None, None, None, :]
        identity = grid[None, None].expand(batch, 1, depth, height, width, 3)
        flows = torch.cat([identity, grid[None, None] + shift], dim=1)

        volumes = feature[:, None].expand(batch, candidates, channels, depth, height, width)
        warped = sample_volume(
            volumes.reshape(batch * candidates, channels, depth, height, width),
            flows.reshape(batch * candidates, depth, height, width, 3),
            gather=self.gather,
        ).reshape(batch, candidates, channels, depth, height, width)

        heat = gaussian_heatmaps(kp_driving, grid) - gaussian_heatmaps(kp_source, grid)
        heat = torch.cat([heat.new_zeros(batch, 1, depth, height, width), heat], dim=1)
        stacked = torch.cat([heat[:, :, None], warped], dim=2)
        prediction = self.hourglass(stacked.reshape(batch, -1, depth, height, width))

        masks = F.softmax(self.mask(prediction), dim=1)
        flow = (flows * masks[..., None]).sum(dim=1)
        occlusion = torch.sigmoid(self.occlusion(prediction.reshape(batch, -1, height, width)))
        return flow, occlusion


class WarpingNetwork(nn.Module):
    """``(feature [B, 32, 16, 64, 64], kp_driving [B, 21, 3], kp_source [B, 21, 3])``
    -> warped features ``[B, 256, 64, 64]`` (officially), already masked by occlusion."""

    def __init__(self, config: WarpingConfig | None = None, *, gather: bool = False) -> None:
        super().__init__()
        cfg = config or WarpingConfig()
        self.gather = gather
        self.dense_motion_network = DenseMotionNetwork(
            cfg.dense_motion, cfg.num_kp, cfg.reshape_channel, gather=gather
        )
        self.third = SameBlock2d(cfg.max_features, cfg.out_channels, leaky=True)
        self.fourth = nn.Conv2d(cfg.out_channels, cfg.out_channels, kernel_size=1)

    def set_gather(self, gather: bool) -> None:
        """Sample with the gather-based sampler (True) or ``F.grid_sample`` (False)."""
        self.gather = gather
        self.dense_motion_network.gather = gather

    def forward(self, feature: Tensor, kp_driving: Tensor, kp_source: Tensor) -> Tensor:
        flow, occlusion = self.dense_motion_network(feature, kp_driving, kp_source)
        out = sample_volume(feature, flow, gather=self.gather)
        batch, channels, depth, height, width = out.shape
        out = self.fourth(self.third(out.reshape(batch, channels * depth, height, width)))
        masked: Tensor = out * occlusion
        return masked
