"""Load the official LivePortrait checkpoints strictly into our networks.

Every file is read with ``torch.load(weights_only=True)`` (plain tensors only, no pickled
code). A state dict with missing, extra or misshapen keys is refused with an error that
names them; the expected names and shapes are recorded in ``official_shapes.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from engines.errors import ModelMissing
from engines.liveportrait.appearance import AppearanceExtractor
from engines.liveportrait.generator import SPADEGenerator
from engines.liveportrait.motion import MotionExtractor
from engines.liveportrait.warping import WarpingNetwork
from engines.liveportrait.weights import FETCH_COMMAND

Shape = tuple[int, ...]

BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "appearance": AppearanceExtractor,
    "motion": MotionExtractor,
    "warping": WarpingNetwork,
    "generator": SPADEGenerator,
}
"""Base network -> its official-size builder."""


@cache
def _recorded() -> dict[str, Any]:
    path = Path(__file__).with_name("official_shapes.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def official_shapes(network: str) -> dict[str, Shape]:
    """Parameter and buffer names -> shapes of a base network's official state dict."""
    shapes = _recorded()["networks"][network]["shapes"]
    return {k: tuple(v) for k, v in shapes.items()}


def official_file(network: str) -> str:
    """Name (without ``.pth``) of the official file holding ``network``'s weights."""
    name: str = _recorded()["networks"][network]["file"]
    return name


def mismatches(expected: Mapping[str, Shape], state: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between expected names/shapes and a state dict."""
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{k} (expected {expected[k]}, got {tuple(getattr(v, 'shape', ()))})"
        for k, v in state.items()
        if k in expected and tuple(getattr(v, "shape", ())) != expected[k]
    ]
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if misshapen:
        problems.append("misshapen keys: " + ", ".join(misshapen))
    return problems


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A ``.pth`` file's dict of tensors; ModelMissing when it cannot be read safely."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelMissing(f"{path} does not exist; run `{FETCH_COMMAND}`.") from None
    except Exception as exc:  # torch raises many types for damaged or unsafe pickles
        raise ModelMissing(
            f"Could not read {path} as a PyTorch checkpoint ({exc}). The file is damaged or "
            f"not a LivePortrait weight file; delete it and run `{FETCH_COMMAND}` again."
        ) from exc
    if not isinstance(state, dict):
        raise ModelMissing(f"{path} holds a {type(state).__name__}, not a state dict.")
    return state


def load_network(network: str, state: Mapping[str, Tensor], source: str = "") -> nn.Module:
    """Build ``network`` at official size and load ``state`` strictly; eval mode."""
    problems = mismatches(official_shapes(network), state)
    if problems:
        where = source or f"{official_file(network)}.pth"
        raise ModelMissing(
            f"{where} does not match LivePortrait's {network} network: "
            + "; ".join(problems)
            + f". Download the official file again with `{FETCH_COMMAND}`."
        )
    model = BUILDERS[network]()
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_base_networks(paths: Mapping[str, Path]) -> dict[str, nn.Module]:
    """F, M, W and G from the files of ``weights.find_weights()`` (keyed by file name)."""
    models = {}
    for network in BUILDERS:
        path = paths[official_file(network)]
        models[network] = load_network(network, read_checkpoint(path), str(path))
    return models
