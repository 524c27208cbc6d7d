"""F, the appearance feature extractor: a 256x256 photo -> a 3-D feature volume.

Structure of ``src/modules/appearance_feature_extractor.py`` (KwaiVGI/LivePortrait, MIT):
a same-resolution block, two down blocks, a 1x1 conv, a reshape of the channels into
depth, then 3-D residual blocks (named ``3dr0``, ``3dr1`` ... as in the checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from engines.liveportrait.blocks import DownBlock2d, ResBlock3d, SameBlock2d


@dataclass(frozen=True)
class AppearanceConfig:
    """``appearance_feature_extractor_params`` of ``src/config/models.yaml``."""

    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


class AppearanceExtractor(nn.Module):
    """``[B, 3, 256, 256]`` in [0, 1] -> ``[B, C, D, 64, 64]`` (C=32, D=16 officially)."""

    def __init__(self, config: AppearanceConfig | None = None) -> None:
        super().__init__()
        cfg = config or AppearanceConfig()
        if cfg.reshape_channel * cfg.reshape_depth != cfg.max_features:
            raise ValueError("reshape_channel * reshape_depth must equal max_features")
        self.config = cfg
        widths = [
            min(cfg.max_features, cfg.block_expansion * 2**i)
            for i in range(cfg.num_down_blocks + 1)
        ]
        self.first = SameBlock2d(3, cfg.block_expansion)
        self.down_blocks = nn.ModuleList(
            DownBlock2d(widths[i], widths[i + 1]) for i in range(cfg.num_down_blocks)
        )
        self.second = nn.Conv2d(widths[-1], cfg.max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(cfg.reshape_channel))

    def forward(self, image: Tensor) -> Tensor:
        out = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        batch, _, height, width = out.shape
        volume = out.reshape(
            batch, self.config.reshape_channel, self.config.reshape_depth, height, width
        )
        result: Tensor = self.resblocks_3d(volume)
        return result
