"""G, the SPADE decoder: the warped 64x64 feature map -> a 512x512 image.

Structure of ``src/modules/spade_generator.py`` (KwaiVGI/LivePortrait, MIT): a 3x3 conv,
six SPADE residual blocks at 64x64, two upsampling blocks, and a conv + PixelShuffle head
with a sigmoid. The input feature map is also the SPADE label map of every block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engines.liveportrait.blocks import SPADEResBlock

MIDDLE_BLOCKS = 6


@dataclass(frozen=True)
class GeneratorConfig:
    """``spade_generator_params`` of ``src/config/models.yaml`` (``out_channels`` default 64)."""

    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    out_channels: int = 64

    @property
    def input_channels(self) -> int:
        return min(self.max_features, self.block_expansion * 2**self.num_down_blocks)


class SPADEGenerator(nn.Module):
    """``[B, 256, 64, 64]`` -> ``[B, 3, 512, 512]`` in [0, 1] (officially)."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        cfg = config or GeneratorConfig()
        label = cfg.input_channels
        wide = 2 * label
        self.fc = nn.Conv2d(label, wide, kernel_size=3, padding=1)
        for i in range(MIDDLE_BLOCKS):
            setattr(self, f"G_middle_{i}", SPADEResBlock(wide, wide, label))
        self.up_0 = SPADEResBlock(wide, label, label)
        self.up_1 = SPADEResBlock(label, cfg.out_channels, label)
        self.conv_img = nn.Sequential(
            nn.Conv2d(cfg.out_channels, 3 * 4, kernel_size=3, padding=1), nn.PixelShuffle(2)
        )

    def forward(self, feature: Tensor) -> Tensor:
        x = self.fc(feature)
        for i in range(MIDDLE_BLOCKS):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2.0), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2.0), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))
