"""LivePortrait stitching/retargeting MLPs: names, shapes, strict loading, ONNX export."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from engines.errors import ModelMissing  # noqa: E402
from engines.liveportrait.checkpoint_shapes import (  # noqa: E402
    CHECKPOINT_KEYS,
    RETARGETING_SHAPES,
)
from engines.liveportrait.stitching import (  # noqa: E402
    RetargetingMLP,
    eye_mlp,
    lip_mlp,
    load_retargeting,
    stitching_mlp,
)

BUILDERS = {"stitching": stitching_mlp, "lip": lip_mlp, "eye": eye_mlp}
TOL = 1e-5


def _random_checkpoint(seed: int = 0, prefix: str = "") -> dict[str, dict[str, torch.Tensor]]:
    """A checkpoint in the official layout, filled from the recorded shapes.

    Weights are scaled by ``1 / sqrt(fan_in)`` so activations stay O(1), like a trained net.
    """
    generator = torch.Generator().manual_seed(seed)
    return {
        CHECKPOINT_KEYS[name]: {
            prefix + key: torch.randn(shape, generator=generator) / shape[-1] ** 0.5
            for key, shape in shapes.items()
        }
        for name, shapes in RETARGETING_SHAPES.items()
    }


def _reference(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Upstream forward written from the state dict: Linear layers at mlp.0, mlp.2, ...,
    a ReLU after each but the last."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    indices = sorted({int(k.split(".")[1]) for k in state})
    assert indices == list(range(0, 2 * len(indices), 2))
    for n, i in enumerate(indices):
        x = F.linear(x, state[f"mlp.{i}.weight"], state[f"mlp.{i}.bias"])
        if n < len(indices) - 1:
            x = F.relu(x)
    return x


@pytest.mark.parametrize("name", list(BUILDERS))
def test_state_dict_matches_recorded_shapes(name: str) -> None:
    got = {k: tuple(v.shape) for k, v in BUILDERS[name]().state_dict().items()}
    assert got == RETARGETING_SHAPES[name]
    assert list(got) == list(RETARGETING_SHAPES[name])


def test_generic_constructor_layout() -> None:
    model = RetargetingMLP(4, [5, 6], 3)
    assert [type(m).__name__ for m in model.mlp] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    with pytest.raises(ValueError):
        RetargetingMLP(4, [], 3)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_checkpoint_loads_and_matches_reference(prefix: str) -> None:
    checkpoint = _random_checkpoint(seed=1, prefix=prefix)
    checkpoint["extra_top_level"] = {}  # ignored, as upstream does
    models = load_retargeting(checkpoint)
    assert set(models) == {"stitching", "lip", "eye"}
    generator = torch.Generator().manual_seed(2)
    for name, model in models.items():
        assert not model.training
        state = checkpoint[CHECKPOINT_KEYS[name]]
        x = torch.randn(3, model.mlp[0].in_features, generator=generator)
        with torch.no_grad():
            got = model(x)
        want = _reference(state, x)
        assert got.shape == (
            3,
            RETARGETING_SHAPES[name][next(reversed(RETARGETING_SHAPES[name]))][0],
        )
        assert torch.allclose(got, want, atol=1e-6)


def test_missing_unexpected_and_misshapen_keys_are_named() -> None:
    checkpoint = _random_checkpoint()
    shoulder = checkpoint["retarget_shoulder"]
    del shoulder["mlp.2.bias"]
    shoulder["mlp.8.weight"] = torch.zeros(1, 1)
    checkpoint["retarget_eye"]["mlp.10.weight"] = torch.zeros(64, 63)
    with pytest.raises(ModelMissing) as info:
        load_retargeting(checkpoint)
    message = str(info.value)
    assert "missing keys: mlp.2.bias" in message
    assert "unexpected keys: mlp.8.weight" in message
    assert "mlp.10.weight (expected (63, 64), got (64, 63))" in message
    assert "'retarget_shoulder'" in message and "'retarget_eye'" in message
    assert "'retarget_mouth'" not in message


def test_missing_sub_dict_is_named() -> None:
    checkpoint = _random_checkpoint()
    del checkpoint["retarget_mouth"]
    with pytest.raises(ModelMissing, match="'retarget_mouth' \\(lip\\): not in the checkpoint"):
        load_retargeting(checkpoint)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_onnx_export_matches_onnxruntime(name: str) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = load_retargeting(_random_checkpoint(seed=3))[name]
    x = torch.randn(2, model.mlp[0].in_features, generator=torch.Generator().manual_seed(4))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (x,),
            buffer,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            dynamo=False,
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x5 = torch.randn(5, x.shape[1], generator=torch.Generator().manual_seed(5))
    (got,) = session.run(None, {"x": x5.numpy()})
    with torch.no_grad():
        want = model(x5).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOL
