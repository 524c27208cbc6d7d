"""Building blocks shared by LivePortrait's networks, named so the official checkpoints load.

Attribute names (``conv``, ``norm``, ``conv_0``, ``mlp_shared`` ...) are what the official
state-dict keys spell; the layer structure follows ``src/modules/util.py`` of
KwaiVGI/LivePortrait (MIT) at commit 1986663be3b6902605d32200c01f4bfd36cda83d.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SameBlock2d(nn.Module):
    """Conv 3x3 -> BatchNorm -> ReLU (or LeakyReLU), same resolution."""

    def __init__(self, in_ch: int, out_ch: int, *, leaky: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_ch)
        self.ac: nn.Module = nn.LeakyReLU() if leaky else nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.ac(self.norm(self.conv(x)))
        return out


class DownBlock2d(nn.Module):
    """Conv 3x3 -> BatchNorm -> ReLU -> 2x2 average pool."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_ch)
        self.pool = nn.AvgPool2d(kernel_size=2)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.pool(F.relu(self.norm(self.conv(x))))
        return out


class ResBlock3d(nn.Module):
    """Pre-activation 3-D residual block: (BN, ReLU, conv 3x3x3) twice, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels)
        self.norm2 = nn.BatchNorm3d(channels)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class DownBlock3d(nn.Module):
    """Conv 3x3x3 -> BatchNorm -> ReLU -> pool height and width by 2 (depth kept)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_ch)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.pool(F.relu(self.norm(self.conv(x))))
        return out


class UpBlock3d(nn.Module):
    """Nearest upsampling of height and width by 2 -> conv 3x3x3 -> BatchNorm -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        out = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0))
        return F.relu(self.norm(self.conv(out)))


def _width(expansion: int, level: int, cap: int) -> int:
    return min(cap, expansion * 2**level)


class _Encoder(nn.Module):
    def __init__(self, expansion: int, in_ch: int, levels: int, cap: int) -> None:
        super().__init__()
        widths = [in_ch] + [_width(expansion, i + 1, cap) for i in range(levels)]
        self.down_blocks = nn.ModuleList(
            DownBlock3d(widths[i], widths[i + 1]) for i in range(levels)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class _Decoder(nn.Module):
    def __init__(self, expansion: int, in_ch: int, levels: int, cap: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(levels)):
            # The deepest level gets the encoder output alone, the others its concat with a skip.
            fan_in = (1 if i == levels - 1 else 2) * _width(expansion, i + 1, cap)
            blocks.append(UpBlock3d(fan_in, _width(expansion, i, cap)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = expansion + in_ch
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters)

    def forward(self, skips: list[Tensor]) -> Tensor:
        out = skips[-1]
        for block, skip in zip(self.up_blocks, reversed(skips[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass3d(nn.Module):
    """3-D U-Net: ``levels`` down blocks, then up blocks concatenated with the skips."""

    def __init__(self, expansion: int, in_ch: int, levels: int, cap: int) -> None:
        super().__init__()
        self.encoder = _Encoder(expansion, in_ch, levels, cap)
        self.decoder = _Decoder(expansion, in_ch, levels, cap)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.decoder(self.encoder(x))
        return out


class SPADE(nn.Module):
    """Spatially adaptive normalisation: instance norm modulated by maps from ``segmap``."""

    HIDDEN = 128

    def __init__(self, channels: int, label_ch: int) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_ch, self.HIDDEN, kernel_size=3, padding=1), nn.ReLU()
        )
        self.mlp_gamma = nn.Conv2d(self.HIDDEN, channels, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(self.HIDDEN, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(segmap)
        out: Tensor = self.param_free_norm(x) * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)
        return out


def _spectral(conv: nn.Conv2d) -> nn.Conv2d:
    """Spectral norm as the checkpoints store it: ``weight_orig``, ``weight_u``, ``weight_v``."""
    out: nn.Conv2d = nn.utils.spectral_norm(conv)
    return out


class SPADEResBlock(nn.Module):
    """Residual block of two SPADE-normalised, spectrally normalised 3x3 convs.

    A learned 1x1 shortcut (with its own SPADE) exists only when the width changes.
    """

    def __init__(self, in_ch: int, out_ch: int, label_ch: int) -> None:
        super().__init__()
        mid = min(in_ch, out_ch)
        self.learned_shortcut = in_ch != out_ch
        self.conv_0 = _spectral(nn.Conv2d(in_ch, mid, kernel_size=3, padding=1))
        self.conv_1 = _spectral(nn.Conv2d(mid, out_ch, kernel_size=3, padding=1))
        if self.learned_shortcut:
            self.conv_s = _spectral(nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False))
        self.norm_0 = SPADE(in_ch, label_ch)
        self.norm_1 = SPADE(mid, label_ch)
        if self.learned_shortcut:
            self.norm_s = SPADE(in_ch, label_ch)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmap), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmap), 0.2))
        out: Tensor = shortcut + dx
        return out


def fold_spectral_norm(model: nn.Module) -> nn.Module:
    """Replace every spectral-norm hook by the plain weight it computes in eval mode.

    In eval mode the hook divides ``weight_orig`` by ``u . (W v)`` with the stored ``u``
    and ``v`` (no power iteration), so folding changes no output and leaves plain convs
    that every exporter and runtime understands.
    """
    for module in model.modules():
        hooks = getattr(module, "_forward_pre_hooks", {})
        if any(type(h).__name__ == "SpectralNorm" for h in hooks.values()):
            nn.utils.remove_spectral_norm(module)
    return model


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[N, C, H, W]`` (ConvNeXt's stem and downsamplers)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2's GRN on channels-last ``[N, H, W, C]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x: Tensor) -> Tensor:
        spatial_norm = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        relative = spatial_norm / (spatial_norm.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * relative) + self.beta + x
