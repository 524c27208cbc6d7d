"""M, the motion extractor: ConvNeXt-V2-tiny predicting keypoints, pose and expression.

Structure of ``src/modules/convnextv2.py`` and ``motion_extractor.py`` (KwaiVGI/LivePortrait,
MIT): the backbone sits under ``detector`` (so checkpoint keys start ``detector.``); a stem and
three downsamplers, four stages of ConvNeXt-V2 blocks, a final LayerNorm on the pooled
features, and seven linear heads.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from engines.liveportrait.blocks import ChannelsFirstLayerNorm, GlobalResponseNorm

HEADS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")
"""Output order of :class:`MotionExtractor` (and of the exported ONNX model)."""


@dataclass(frozen=True)
class MotionConfig:
    """ConvNeXt-V2-tiny with LivePortrait's heads (``num_kp`` 21, 66 pose bins)."""

    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    num_kp: int = 21
    num_bins: int = 66


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 -> LayerNorm -> 4x MLP with GELU and GRN, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GlobalResponseNorm(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    """The backbone and heads; ``forward`` returns the heads in :data:`HEADS` order."""

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        dims = cfg.dims
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(3, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0])
                )
            ]
        )
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(
                    ChannelsFirstLayerNorm(dims[i]),
                    nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2),
                )
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim) for _ in range(depth)))
            for dim, depth in zip(dims, cfg.depths, strict=True)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        width = dims[-1]
        self.fc_kp = nn.Linear(width, 3 * cfg.num_kp)
        self.fc_scale = nn.Linear(width, 1)
        self.fc_pitch = nn.Linear(width, cfg.num_bins)
        self.fc_yaw = nn.Linear(width, cfg.num_bins)
        self.fc_roll = nn.Linear(width, cfg.num_bins)
        self.fc_t = nn.Linear(width, 3)
        self.fc_exp = nn.Linear(width, 3 * cfg.num_kp)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        pooled = self.norm(x.mean(dim=(-2, -1)))
        return tuple(getattr(self, f"fc_{head}")(pooled) for head in HEADS)


class MotionExtractor(nn.Module):
    """``[B, 3, 256, 256]`` in [0, 1] -> pitch, yaw, roll logits ``[B, 66]``, t ``[B, 3]``,
    exp ``[B, 63]``, scale ``[B, 1]``, canonical kp ``[B, 63]`` (the :data:`HEADS` order)."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        super().__init__()
        self.config = config or MotionConfig()
        self.detector = ConvNeXtV2(self.config)

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        out: tuple[Tensor, ...] = self.detector(image)
        return out
