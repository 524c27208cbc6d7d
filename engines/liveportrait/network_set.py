"""The seven LivePortrait networks as one set: official weights, or random ones for tests.

Random sets use PyTorch's default initialisation with the spectral-norm vectors set to the
exact top singular vectors (what training converges to), so activations keep the scale of
a trained network. ``tiny=True`` shrinks every width and the feature volume's depth for fast
tests while keeping each network's structure, keypoint count and image sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

from engines.liveportrait.appearance import AppearanceConfig, AppearanceExtractor
from engines.liveportrait.checkpoints import load_base_networks, read_checkpoint
from engines.liveportrait.generator import GeneratorConfig, SPADEGenerator
from engines.liveportrait.motion import MotionConfig, MotionExtractor
from engines.liveportrait.stitching import eye_mlp, lip_mlp, load_retargeting, stitching_mlp
from engines.liveportrait.warping import DenseMotionConfig, WarpingConfig, WarpingNetwork

TINY_APPEARANCE = AppearanceConfig(
    block_expansion=8, max_features=16, reshape_channel=4, reshape_depth=4, num_resblocks=1
)
TINY_MOTION = MotionConfig(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))
TINY_WARPING = WarpingConfig(
    block_expansion=8,
    max_features=16,
    reshape_channel=4,
    dense_motion=DenseMotionConfig(
        block_expansion=4, max_features=32, num_blocks=3, reshape_depth=4
    ),
)
TINY_GENERATOR = GeneratorConfig(block_expansion=8, max_features=32, out_channels=8)


@dataclass
class NetworkSet:
    """F, M, W, G and the three stitching/retargeting MLPs, all in eval mode."""

    appearance: nn.Module
    motion: nn.Module
    warping: nn.Module
    generator: nn.Module
    stitching: nn.Module
    lip: nn.Module
    eye: nn.Module

    def items(self) -> list[tuple[str, nn.Module]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


def official_networks(paths: dict[str, Path]) -> NetworkSet:
    """Load the official files (``weights.find_weights()``) strictly."""
    base = load_base_networks(paths)
    retargeting = load_retargeting(read_checkpoint(paths["stitching_retargeting_module"]))
    return NetworkSet(**base, **retargeting)


def random_networks(seed: int = 0, *, tiny: bool = False) -> NetworkSet:
    """A randomly initialised set (deterministic for a seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        nets = NetworkSet(
            appearance=AppearanceExtractor(TINY_APPEARANCE if tiny else None),
            motion=MotionExtractor(TINY_MOTION if tiny else None),
            warping=WarpingNetwork(TINY_WARPING if tiny else None),
            generator=SPADEGenerator(TINY_GENERATOR if tiny else None),
            stitching=stitching_mlp(),
            lip=lip_mlp(),
            eye=eye_mlp(),
        )
    for _, model in nets.items():
        converge_spectral_norms(model)
        model.eval()
    return nets


@torch.no_grad()
def converge_spectral_norms(model: nn.Module) -> None:
    """Set every spectral norm's ``u``/``v`` to the weight's top singular vectors."""
    for module in model.modules():
        weight = getattr(module, "weight_orig", None)
        u, v = getattr(module, "weight_u", None), getattr(module, "weight_v", None)
        if (
            isinstance(weight, torch.Tensor)
            and isinstance(u, torch.Tensor)
            and isinstance(v, torch.Tensor)
        ):
            left, _, right = torch.linalg.svd(
                weight.reshape(weight.shape[0], -1), full_matrices=False
            )
            u.copy_(left[:, 0])
            v.copy_(right[0])
