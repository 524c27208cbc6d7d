"""LivePortrait's stitching and retargeting MLPs (the "S" networks) and their loader.

Mirrors KwaiVGI/LivePortrait (MIT) at commit 1986663be3b6902605d32200c01f4bfd36cda83d:
``src/modules/stitching_retargeting_network.py`` lines 18-38 (``StitchingRetargetingNetwork``:
``mlp = Sequential(Linear, ReLU, ..., Linear)``, forward ``mlp(x)``), sizes from
``src/config/models.yaml`` lines 31-43, checkpoint layout from ``src/utils/helper.py``
lines 124-166. Names and shapes are recorded in :mod:`engines.liveportrait.checkpoint_shapes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from engines.errors import ModelMissing
from engines.liveportrait.checkpoint_shapes import CHECKPOINT_KEYS
from engines.liveportrait.checkpoints import mismatches

DDP_PREFIX = "module."


class RetargetingMLP(nn.Module):
    """``Linear -> ReLU`` per hidden size, then a final ``Linear``, held in ``self.mlp``.

    Parameter names are ``mlp.<i>.weight`` / ``mlp.<i>.bias`` at even ``i``, as in
    LivePortrait's ``StitchingRetargetingNetwork``.
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes must not be empty")
        layers: list[nn.Module] = []
        width = input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, input_size] -> [B, output_size]``."""
        out: Tensor = self.mlp(x)
        return out


def stitching_mlp() -> RetargetingMLP:
    """Stitching: source + driving keypoints (126) -> keypoint delta + (tx, ty) (65)."""
    return RetargetingMLP(126, (128, 128, 64), 65)


def lip_mlp() -> RetargetingMLP:
    """Lip retargeting: keypoints + lip-close ratios (65) -> keypoint delta (63)."""
    return RetargetingMLP(65, (128, 128, 64), 63)


def eye_mlp() -> RetargetingMLP:
    """Eye retargeting: keypoints + eye-close ratios (66) -> keypoint delta (63)."""
    return RetargetingMLP(66, (256, 256, 128, 128, 64), 63)


_BUILDERS = {"stitching": stitching_mlp, "lip": lip_mlp, "eye": eye_mlp}


def _strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop a leading ``"module."`` (DataParallel) from each key."""
    return {k.removeprefix(DDP_PREFIX): v for k, v in state.items()}


def load_retargeting(state: Mapping[str, Mapping[str, Tensor]]) -> dict[str, RetargetingMLP]:
    """Build and strictly load ``{"stitching", "lip", "eye"}`` from a retargeting checkpoint.

    ``state`` is the loaded ``stitching_retargeting_module.pth``: sub-dicts under
    ``retarget_shoulder``, ``retarget_mouth`` and ``retarget_eye`` (other top-level entries
    are ignored, as upstream does). A leading ``"module."`` is stripped from each key
    (upstream replaces ``"module."`` anywhere; no real key contains it otherwise). Raises
    :class:`ModelMissing` naming missing, unexpected and misshapen keys. Modules are
    returned in eval mode.
    """
    problems: list[str] = []
    models: dict[str, RetargetingMLP] = {}
    for name, top_key in CHECKPOINT_KEYS.items():
        if top_key not in state:
            problems.append(f"{top_key!r} ({name}): not in the checkpoint")
            continue
        sub = _strip_prefix(state[top_key])
        model = _BUILDERS[name]()
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = mismatches(expected, sub)
        if found:
            problems.append(f"{top_key!r} ({name}): " + "; ".join(found))
            continue
        model.load_state_dict(sub, strict=True)
        models[name] = model.eval()
    if problems:
        raise ModelMissing(
            "The LivePortrait stitching/retargeting checkpoint does not match the expected "
            "networks; download stitching_retargeting_module.pth again. " + " | ".join(problems)
        )
    return models
