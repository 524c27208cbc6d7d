"""Official parameter names and shapes of LivePortrait's stitching/retargeting networks.

Plain data, no torch import. Derived from KwaiVGI/LivePortrait (MIT) at commit
1986663be3b6902605d32200c01f4bfd36cda83d:

- ``src/modules/stitching_retargeting_network.py`` lines 18-29: ``StitchingRetargetingNetwork``
  builds ``self.mlp = nn.Sequential(Linear, ReLU, Linear, ReLU, ..., Linear)``: one
  ``Linear`` + ``ReLU(inplace=True)`` per hidden size, then a final ``Linear``. Linear layers
  therefore sit at the even indices ``0, 2, 4, ...`` (keys ``mlp.<i>.weight`` of shape
  ``(out, in)`` and ``mlp.<i>.bias`` of shape ``(out,)``); ReLUs (odd indices) have no
  parameters.
- ``src/config/models.yaml`` lines 31-43 (``stitching_retargeting_module_params``):
  stitching 126 -> [128, 128, 64] -> 65, lip 65 -> [128, 128, 64] -> 63,
  eye 66 -> [256, 256, 128, 128, 64] -> 63.
- ``src/utils/helper.py`` lines 142-166 (``load_model``): one checkpoint file holds the three
  state dicts under ``retarget_shoulder`` (stitching), ``retarget_mouth`` (lip) and
  ``retarget_eye`` (eye); each passes through ``remove_ddp_dumplicate_key`` (lines 124-128,
  drops ``"module."``) and then strict ``load_state_dict``.
"""

from __future__ import annotations

Shape = tuple[int, ...]

CHECKPOINT_KEYS: dict[str, str] = {
    "stitching": "retarget_shoulder",
    "lip": "retarget_mouth",
    "eye": "retarget_eye",
}
"""Our network name -> top-level key of the retargeting checkpoint (helper.py 148/153/158)."""

STITCHING_SHAPES: dict[str, Shape] = {
    "mlp.0.weight": (128, 126),
    "mlp.0.bias": (128,),
    "mlp.2.weight": (128, 128),
    "mlp.2.bias": (128,),
    "mlp.4.weight": (64, 128),
    "mlp.4.bias": (64,),
    "mlp.6.weight": (65, 64),
    "mlp.6.bias": (65,),
}

LIP_SHAPES: dict[str, Shape] = {
    "mlp.0.weight": (128, 65),
    "mlp.0.bias": (128,),
    "mlp.2.weight": (128, 128),
    "mlp.2.bias": (128,),
    "mlp.4.weight": (64, 128),
    "mlp.4.bias": (64,),
    "mlp.6.weight": (63, 64),
    "mlp.6.bias": (63,),
}

EYE_SHAPES: dict[str, Shape] = {
    "mlp.0.weight": (256, 66),
    "mlp.0.bias": (256,),
    "mlp.2.weight": (256, 256),
    "mlp.2.bias": (256,),
    "mlp.4.weight": (128, 256),
    "mlp.4.bias": (128,),
    "mlp.6.weight": (128, 128),
    "mlp.6.bias": (128,),
    "mlp.8.weight": (64, 128),
    "mlp.8.bias": (64,),
    "mlp.10.weight": (63, 64),
    "mlp.10.bias": (63,),
}

RETARGETING_SHAPES: dict[str, dict[str, Shape]] = {
    "stitching": STITCHING_SHAPES,
    "lip": LIP_SHAPES,
    "eye": EYE_SHAPES,
}
"""Network name -> parameter name -> shape, exactly as in the official state dicts."""
