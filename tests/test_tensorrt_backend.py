"""TensorRT back end: pure helpers here; engine building and parity on a CUDA GPU only.

The GPU tests build engines from the ONNX files in ``$AVATAR_LIVEPORTRAIT_ONNX`` and compare
them with onnxruntime on the same files (``warping.onnx`` with its real GridSample nodes is
the reference for the gather-based ``warping_gather`` engine).
"""

from __future__ import annotations

import io
import json
import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from avatar_app import cli
from avatar_app.exit_codes import EXIT_USER_ERROR
from engines.errors import EngineUnavailable, ModelMissing
from engines.liveportrait import tensorrt_backend as tb
from engines.liveportrait.backend import MANIFEST, NETWORKS, RENDER_NETWORKS
from engines.liveportrait.renderer import ONNX_ENV_VAR
from engines.model_cache import sha256_of

KEY: dict[str, Any] = {
    "gpu_name": "NVIDIA GeForce RTX 3090",
    "capability": (8, 6),
    "trt_version": "10.3.0",
    "precision": "fp16",
    "onnx_sha256": "ab" * 32,
}


# --- Cache keys ---------------------------------------------------------------------------


def test_engine_path_is_stable_and_readable() -> None:
    path = tb.engine_relpath("generator", **KEY)
    assert path == tb.engine_relpath("generator", **KEY)
    assert path.parts[0] == "NVIDIA-GeForce-RTX-3090-sm86-trt10.3.0"
    assert path.name.startswith("generator-fp16-abababab")
    assert path.suffix == ".engine"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpu_name", "NVIDIA GeForce RTX 4090"),
        ("capability", (8, 9)),
        ("trt_version", "10.4.0"),
        ("precision", "fp32"),
        ("onnx_sha256", "cd" * 32),
    ],
)
def test_engine_path_changes_with_each_key_part(field: str, value: object) -> None:
    assert tb.engine_relpath("generator", **{**KEY, field: value}) != tb.engine_relpath(
        "generator", **KEY
    )


def test_engine_path_differs_per_network() -> None:
    assert tb.engine_relpath("appearance", **KEY) != tb.engine_relpath("generator", **KEY)


def test_default_cache_dir_is_under_the_user_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tb.default_cache_dir() == tmp_path / "avatar-app" / "models" / "liveportrait" / "trt"


# --- Which file and which precision -------------------------------------------------------


def test_warping_engine_comes_from_the_gather_export() -> None:
    assert tb.engine_network("warping") == "warping_gather"
    assert all(tb.engine_network(n) == n for n in RENDER_NETWORKS if n != "warping")
    assert {tb.engine_network(n) for n in RENDER_NETWORKS} <= set(NETWORKS)


def test_motion_and_stitching_networks_are_always_fp32() -> None:
    for network in ("motion", "stitching", "lip", "eye"):
        assert tb.network_precision(network, fp16=True) == "fp32"
    for network in ("appearance", "warping", "generator"):
        assert tb.network_precision(network, fp16=True) == "fp16"
    assert {tb.network_precision(n, fp16=False) for n in RENDER_NETWORKS} == {"fp32"}


@pytest.mark.parametrize(
    ("network", "layer_type", "op", "fp32"),
    [
        ("motion", "CONVOLUTION", "", True),
        ("motion", "SOFTMAX", "", True),
        ("warping", "GATHER", "", True),
        ("warping_gather", "GATHER", "", True),
        ("warping_gather", "UNARY", "FLOOR", True),
        ("warping_gather", "UNARY", "EXP", True),
        ("warping_gather", "ELEMENTWISE", "", True),
        ("warping_gather", "SOFTMAX", "", True),
        ("warping_gather", "REDUCE", "", True),
        ("warping_gather", "ACTIVATION", "CLIP", True),
        ("warping_gather", "ACTIVATION", "RELU", False),
        ("warping_gather", "CONVOLUTION", "", False),
        ("generator", "ACTIVATION", "SIGMOID", True),
        ("generator", "ACTIVATION", "LEAKY_RELU", False),
        ("generator", "CONVOLUTION", "", False),
        ("generator", "ELEMENTWISE", "", False),
        ("appearance", "CONVOLUTION", "", False),
        ("appearance", "SOFTMAX", "", False),
    ],
)
def test_fp32_layer_policy(network: str, layer_type: str, op: str, fp32: bool) -> None:
    assert tb.keeps_fp32(network, layer_type, op) is fp32


class _FakeLayer:
    """Just enough of tensorrt.ILayer for :func:`tb._pin_fp32_layers`."""

    def __init__(self, layer_type: str, op: str, *dtypes: str) -> None:
        self.type = SimpleNamespace(name=layer_type)
        self.kind = SimpleNamespace(name=op)
        self.outputs = [SimpleNamespace(dtype=dtype) for dtype in dtypes]
        self.num_outputs = len(dtypes)
        self.precision = "default"
        self.output_types: dict[int, str] = {}

    def get_output(self, index: int) -> Any:
        return self.outputs[index]

    def set_output_type(self, index: int, dtype: str) -> None:
        self.output_types[index] = dtype


class _FakeActivation(_FakeLayer):
    @property
    def type(self) -> Any:  # type: ignore[override]  # IActivationLayer.type: ActivationType
        return self.kind


class _FakeUnary(_FakeLayer):
    @property
    def op(self) -> Any:
        return self.kind


def test_pins_float_layers_of_the_policy_only() -> None:
    trt = SimpleNamespace(float32="f32", IActivationLayer=_FakeActivation, IUnaryLayer=_FakeUnary)
    layers = [
        _FakeLayer("GATHER", "", "f32"),
        _FakeLayer("UNARY", "FLOOR", "f32"),
        _FakeLayer("ELEMENTWISE", "", "int32"),  # index arithmetic: left alone
        _FakeLayer("ELEMENTWISE", "", "bool"),  # in-bounds masks: left alone
        _FakeLayer("ACTIVATION", "CLIP", "f32"),
        _FakeLayer("ACTIVATION", "RELU", "f32"),
        _FakeLayer("CONVOLUTION", "", "f32"),
    ]
    network_def = SimpleNamespace(num_layers=len(layers), get_layer=layers.__getitem__)
    assert tb._pin_fp32_layers(trt, network_def, "warping") == 3
    assert [layer.precision for layer in layers] == [
        "f32",
        "f32",
        "default",
        "default",
        "f32",
        "default",
        "default",
    ]
    assert layers[0].output_types == {0: "f32"}
    assert layers[2].output_types == {}


# --- GridSample detection -----------------------------------------------------------------


def _export(module: Any, *args: Any) -> Any:
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, opset_version=20, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def _volume_and_grid() -> tuple[Any, Any]:
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(1)
    volume = torch.randn(1, 2, 3, 4, 5, generator=generator)
    grid = torch.rand(1, 2, 3, 4, 3, generator=generator) * 2 - 1
    return volume, grid


def _grid_sample_model() -> Any:
    torch = pytest.importorskip("torch")

    class Warp(torch.nn.Module):
        def forward(self, volume: Any, grid: Any) -> Any:
            return torch.nn.functional.grid_sample(volume, grid, align_corners=False)

    return _export(Warp(), *_volume_and_grid())


def _gather_model() -> Any:
    torch = pytest.importorskip("torch")
    from engines.liveportrait.sampler import grid_sample_3d

    class Warp(torch.nn.Module):
        def forward(self, volume: Any, grid: Any) -> Any:
            return grid_sample_3d(volume, grid)

    return _export(Warp(), *_volume_and_grid())


def test_finds_the_5d_grid_sample() -> None:
    assert len(tb.grid_sample_nodes(_grid_sample_model())) == 1


def test_gather_sampler_has_no_grid_sample() -> None:
    assert tb.grid_sample_nodes(_gather_model()) == []


def test_finds_grid_sample_inside_a_subgraph() -> None:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inner = _grid_sample_model().graph
    branch = helper.make_graph(list(inner.node), "then", [], list(inner.output))
    other = helper.make_graph(
        [helper.make_node("Identity", ["volume_in"], [inner.output[0].name])],
        "else",
        [],
        list(inner.output),
    )
    node = helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=other)
    graph = helper.make_graph(
        [node],
        "outer",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
    )
    assert len(tb.grid_sample_nodes(helper.make_model(graph))) == 1


def test_refuses_a_model_with_grid_sample(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "warping_gather.onnx"
    onnx.save(_grid_sample_model(), str(path))
    with pytest.raises(EngineUnavailable, match=r"GridSample.*4-D only.*warping_gather\.onnx"):
        tb.check_no_grid_sample(path)
    onnx.save(_gather_model(), str(path))
    tb.check_no_grid_sample(path)


# --- Inputs -------------------------------------------------------------------------------


def test_validate_inputs_returns_contiguous_float32() -> None:
    x = np.ones((1, 126), dtype=np.float64)
    (name, array), *_ = tb.validate_inputs("stitching", {"x": x}).items()
    assert name == "x"
    assert array.dtype == np.float32
    assert array.flags.c_contiguous
    image = np.zeros((1, 256, 256, 3), np.float32).transpose(0, 3, 1, 2)
    assert tb.validate_inputs("motion", {"image": image})["image"].flags.c_contiguous


def test_validate_inputs_names_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown network 'nope'"):
        tb.validate_inputs("nope", {})
    with pytest.raises(ValueError, match=r"missing \['kp_source'\]"):
        tb.validate_inputs(
            "warping",
            {"feature": np.zeros((1, 32, 16, 64, 64)), "kp_driving": np.zeros((1, 21, 3))},
        )
    with pytest.raises(ValueError, match=r"unexpected \['y'\]"):
        tb.validate_inputs("lip", {"x": np.zeros((1, 65)), "y": np.zeros(1)})
    with pytest.raises(ValueError, match=r"'x' must have shape \(1, 66\), got \(66,\)"):
        tb.validate_inputs("eye", {"x": np.zeros(66)})


# --- Missing TensorRT ---------------------------------------------------------------------


def test_missing_tensorrt_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(EngineUnavailable, match=r'pip install "tensorrt>=10,<11"'):
        tb.import_tensorrt()
    with pytest.raises(EngineUnavailable, match="TensorRT is not installed"):
        tb.TensorRTBackend(tmp_path)
    monkeypatch.setenv(ONNX_ENV_VAR, str(tmp_path))
    assert cli.main(["engines", "build-trt"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: TensorRT is not installed")
    assert "pip install" in err


# --- Build and cache logic, with TensorRT and the GPU faked ---------------------------------


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace TensorRT, torch and the build itself; record what gets built and checked."""
    state: dict[str, Any] = {"built": [], "checked": [], "version": "10.3.0"}
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    for network in RENDER_NETWORKS:
        (onnx_dir / f"{tb.engine_network(network)}.onnx").write_bytes(network.encode())
    _write_manifest(onnx_dir)
    state["onnx_dir"] = onnx_dir
    state["cache"] = tmp_path / "cache"

    def fake_trt() -> Any:
        flags = SimpleNamespace(FP16=1, PREFER_PRECISION_CONSTRAINTS=2)
        return SimpleNamespace(__version__=state["version"], BuilderFlag=flags)

    def fake_serialize(trt: Any, source: Path, network: str, precision: str, ws: int) -> bytes:
        state["built"].append((network, source.name, precision))
        return f"{network}:{precision}".encode()

    monkeypatch.setattr(tb, "import_tensorrt", fake_trt)
    monkeypatch.setattr(tb, "_import_cuda_torch", lambda: None)
    monkeypatch.setattr(tb, "_current_gpu", lambda torch: tb._Gpu("Fake GPU", (8, 6), 8 << 30))
    monkeypatch.setattr(tb, "_build_serialized", fake_serialize)
    monkeypatch.setattr(tb, "check_no_grid_sample", lambda path: state["checked"].append(path))
    return state


def _write_manifest(onnx_dir: Path) -> None:
    """What the export records: each ONNX file's SHA-256 (the build checks them)."""
    networks = {
        path.stem: {"file": path.name, "sha256": sha256_of(path)}
        for path in onnx_dir.glob("*.onnx")
    }
    (onnx_dir / MANIFEST).write_text(json.dumps({"networks": networks}))


def _build(state: dict[str, Any], fp16: bool = True) -> dict[str, Path]:
    return tb.build_engines(state["onnx_dir"], state["cache"], fp16=fp16, progress=lambda _: None)


def test_builds_every_network_once_then_reuses_the_cache(fake_build: dict[str, Any]) -> None:
    engines = _build(fake_build)
    assert list(engines) == list(RENDER_NETWORKS)
    built = {network: (source, precision) for network, source, precision in fake_build["built"]}
    assert built["warping"] == ("warping_gather.onnx", "fp16")
    assert built["motion"] == ("motion.onnx", "fp32")
    assert engines["generator"].read_bytes() == b"generator:fp16"
    assert {path.name for path in fake_build["checked"]} >= {"warping_gather.onnx"}
    assert not list(fake_build["cache"].rglob("*.tmp"))

    fake_build["built"].clear()
    assert _build(fake_build) == engines
    assert fake_build["built"] == []


def test_new_onnx_content_or_tensorrt_version_rebuilds(fake_build: dict[str, Any]) -> None:
    first = _build(fake_build)
    (fake_build["onnx_dir"] / "generator.onnx").write_bytes(b"re-exported")
    _write_manifest(fake_build["onnx_dir"])
    fake_build["built"].clear()
    second = _build(fake_build)
    assert [network for network, *_ in fake_build["built"]] == ["generator"]
    assert second["generator"] != first["generator"]
    assert not first["generator"].exists()  # the stale engine is pruned

    fake_build["version"] = "10.4.0"
    fake_build["built"].clear()
    third = _build(fake_build)
    assert len(fake_build["built"]) == len(RENDER_NETWORKS)
    assert third["appearance"].parent != second["appearance"].parent


def test_fp32_and_fp16_engines_live_side_by_side(fake_build: dict[str, Any]) -> None:
    half = _build(fake_build, fp16=True)
    full = _build(fake_build, fp16=False)
    assert half["generator"] != full["generator"]
    assert half["generator"].exists()
    assert half["motion"] == full["motion"]


def test_tensorrt_without_fp16_flag_builds_fp32(
    fake_build: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorRT 11 removed BuilderFlag.FP16: build fp32 and say so."""
    trt11 = SimpleNamespace(__version__="11.4.0", BuilderFlag=SimpleNamespace())
    monkeypatch.setattr(tb, "import_tensorrt", lambda: trt11)
    lines: list[str] = []
    engines = tb.build_engines(fake_build["onnx_dir"], fake_build["cache"], progress=lines.append)
    assert {precision for *_, precision in fake_build["built"]} == {"fp32"}
    assert "generator-fp32" in engines["generator"].name
    assert any("no fp16" in line for line in lines)


def test_a_cached_engine_changed_since_its_build_is_refused(fake_build: dict[str, Any]) -> None:
    engines = _build(fake_build)
    assert (engines["generator"].parent / (engines["generator"].name + ".sha256")).is_file()
    engines["generator"].write_bytes(b"generator:fp17")
    with pytest.raises(ModelMissing, match=r"is damaged.*Delete .*generator-fp16") as info:
        _build(fake_build)
    assert "engines build-trt" in str(info.value)


def test_a_cached_engine_without_a_recorded_digest_is_rebuilt(fake_build: dict[str, Any]) -> None:
    engines = _build(fake_build)
    record = engines["eye"].with_name(engines["eye"].name + ".sha256")
    record.unlink()
    fake_build["built"].clear()
    _build(fake_build)
    assert [network for network, *_ in fake_build["built"]] == ["eye"]
    assert record.is_file()


def test_an_onnx_file_changed_after_the_export_is_not_built(fake_build: dict[str, Any]) -> None:
    (fake_build["onnx_dir"] / "lip.onnx").write_bytes(b"not what the export wrote")
    with pytest.raises(ModelMissing, match=r"lip\.onnx is damaged.*engines export liveportrait"):
        _build(fake_build)
    assert fake_build["built"] == []


def test_missing_onnx_file_is_named(fake_build: dict[str, Any]) -> None:
    (fake_build["onnx_dir"] / "warping_gather.onnx").unlink()
    with pytest.raises(ModelMissing, match=r"warping_gather\.onnx.*engines export liveportrait"):
        _build(fake_build)


def test_build_command_prints_progress_and_errors(
    fake_build: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``avatar-app engines build-trt``: the engine only reports progress; the CLI prints it."""
    monkeypatch.setattr(tb, "default_cache_dir", lambda: fake_build["cache"])
    monkeypatch.setenv(ONNX_ENV_VAR, str(fake_build["onnx_dir"]))
    assert cli.main(["engines", "build-trt"]) == 0
    err = capsys.readouterr().err
    assert "generator: building a fp16 engine" in err
    assert f"{len(RENDER_NETWORKS)} TensorRT engines ready in {fake_build['cache']}" in err
    assert cli.main(["engines", "build-trt", "--fp32"]) == 0
    assert "generator: building a fp32 engine" in capsys.readouterr().err
    (fake_build["onnx_dir"] / "eye.onnx").unlink()
    assert cli.main(["engines", "build-trt"]) == EXIT_USER_ERROR
    assert capsys.readouterr().err.startswith("error: No exported LivePortrait network")


# --- On a CUDA GPU with TensorRT ----------------------------------------------------------


def _onnx_dir() -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    folder = os.environ.get("AVATAR_LIVEPORTRAIT_ONNX")
    if not folder:
        pytest.skip("set AVATAR_LIVEPORTRAIT_ONNX to a folder of exported LivePortrait networks")
    return Path(folder)


def _random_inputs(network: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, shape in NETWORKS[network].inputs.items():
        if name.startswith("kp_"):
            inputs[name] = rng.uniform(-0.6, 0.6, shape).astype(np.float32)
        elif name == "image":
            inputs[name] = rng.uniform(0.0, 1.0, shape).astype(np.float32)
        else:
            inputs[name] = rng.normal(0.0, 1.0, shape).astype(np.float32)
    return inputs


def _reference(onnx_dir: Path, network: str, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(
        str(onnx_dir / f"{network}.onnx"), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


def _compare(backend: Any, onnx_dir: Path, tolerance: float) -> None:
    for index, network in enumerate(RENDER_NETWORKS):
        inputs = _random_inputs(network, seed=index)
        want = _reference(onnx_dir, network, inputs)  # warping.onnx: real GridSample
        got = backend.run(network, inputs)
        assert set(got) == set(want)
        for name, expected in want.items():
            assert got[name].shape == expected.shape
            assert got[name].dtype == np.float32
            scale = max(1.0, float(np.abs(expected).max()))
            error = float(np.abs(got[name] - expected).max()) / scale
            assert error <= tolerance, f"{network}.{name}: error {error:.2e} > {tolerance}"


@pytest.mark.gpu
@pytest.mark.slow
def test_fp32_engines_match_onnxruntime(tmp_path: Path) -> None:
    onnx_dir = _onnx_dir()
    backend = tb.TensorRTBackend(onnx_dir, tmp_path, fp16=False)
    assert backend.providers[0].startswith("TensorRT ")
    assert " fp32 on " in backend.providers[0]
    _compare(backend, onnx_dir, tolerance=1e-3)
    backend.close()


@pytest.mark.gpu
@pytest.mark.slow
def test_fp16_engines_stay_close_to_onnxruntime(tmp_path: Path) -> None:
    onnx_dir = _onnx_dir()
    backend = tb.TensorRTBackend(onnx_dir, tmp_path, fp16=True)
    _compare(backend, onnx_dir, tolerance=3e-2)
    image = backend.run("generator", _random_inputs("generator", seed=9))["image"]
    assert np.isfinite(image).all()
    assert image.max() > 0.0  # no black frame
    backend.close()


@pytest.mark.gpu
@pytest.mark.slow
def test_cache_reuses_built_engines(tmp_path: Path) -> None:
    onnx_dir = _onnx_dir()
    first = tb.build_engines(onnx_dir, tmp_path, fp16=True)
    stamps = {network: path.stat().st_mtime_ns for network, path in first.items()}
    lines: list[str] = []
    second = tb.build_engines(onnx_dir, tmp_path, fp16=True, progress=lines.append)
    assert second == first
    assert {network: path.stat().st_mtime_ns for network, path in second.items()} == stamps
    assert all("cached" in line for line in lines)


@pytest.mark.gpu
@pytest.mark.slow
def test_trt_renderer_matches_onnxruntime_frame_after_frame(
    tmp_path: Path, astronaut: np.ndarray, landmarker: Any
) -> None:
    """Whole frames: the portrait's inputs stay on the GPU and warping feeds the generator there."""
    from engines.controls import FaceControls
    from engines.liveportrait.onnx_backend import OnnxRuntimeBackend
    from engines.liveportrait.renderer import LivePortraitRenderer

    onnx_dir = _onnx_dir()
    trt = LivePortraitRenderer(tb.TensorRTBackend(onnx_dir, tmp_path, fp16=False))
    ort = LivePortraitRenderer(OnnxRuntimeBackend(onnx_dir, providers=("CPUExecutionProvider",)))
    face = landmarker.detect_all(astronaut)[0]
    on_gpu, on_cpu = trt.prepare(astronaut, face), ort.prepare(astronaut, face)
    for controls in (FaceControls(head_yaw=10), FaceControls(jaw_open=1), FaceControls()):
        got = trt.generate(on_gpu, controls)
        want = ort.generate(on_cpu, controls)
        assert np.abs(got - want).max() <= 1e-3
