"""The renderer contract, for every registered engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.controls import FaceControls
from engines.errors import EngineUnavailable
from engines.face.landmarker import FaceLandmarker
from engines.liveportrait.renderer import ONNX_ENV_VAR
from engines.renderer import create_renderer, renderer_names


@pytest.fixture
def engine_setup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """LivePortrait engines run on shrunk random-weight models (no official weights here)."""
    if request.node.callspec.params["name"].startswith("liveportrait"):
        folder: Path = request.getfixturevalue("tiny_liveportrait_onnx")
        monkeypatch.setenv(ONNX_ENV_VAR, str(folder))


@pytest.mark.parametrize("name", renderer_names())
def test_contract(
    name: str, engine_setup: None, astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    try:
        renderer = create_renderer(name)
    except EngineUnavailable as exc:
        if name == "liveportrait-trt":
            pytest.skip(f"TensorRT cannot run here: {exc}")
        raise
    assert renderer.name == name
    prepared = renderer.prepare(astronaut, landmarker.detect_all(astronaut)[0])
    rng = np.random.default_rng(7)
    for _ in range(5):
        values = {n: rng.uniform(low, high) for n, (low, high) in FaceControls.RANGES.items()}
        controls = FaceControls(**values)
        frame = renderer.render(prepared, controls)
        assert frame.shape == astronaut.shape and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, renderer.render(prepared, controls))
    nan = FaceControls(**{n: float("nan") for n in FaceControls.NAMES})
    np.testing.assert_array_equal(
        renderer.render(prepared, nan), renderer.render(prepared, FaceControls())
    )


def test_auto_finds_an_engine_and_unknown_names_are_explained() -> None:
    assert create_renderer("auto").name in renderer_names()
    with pytest.raises(EngineUnavailable, match="Did you mean one of: mesh"):
        create_renderer("no-such-engine")
