"""LivePortrait's F, M, W and G: official names and shapes, strict loading, ONNX parity."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engines.controls import FaceControls  # noqa: E402
from engines.errors import ModelMissing  # noqa: E402
from engines.face.landmarker import FaceLandmarker  # noqa: E402
from engines.liveportrait.backend import NETWORKS  # noqa: E402
from engines.liveportrait.blocks import fold_spectral_norm  # noqa: E402
from engines.liveportrait.checkpoints import (  # noqa: E402
    BUILDERS,
    load_base_networks,
    load_network,
    official_file,
    official_shapes,
    read_checkpoint,
)
from engines.liveportrait.export import MANIFEST, OPSET, example_inputs, export_onnx  # noqa: E402
from engines.liveportrait.network_set import random_networks  # noqa: E402
from engines.liveportrait.onnx_backend import OnnxRuntimeBackend  # noqa: E402
from engines.liveportrait.renderer import LivePortraitRenderer  # noqa: E402
from engines.liveportrait.warping import WarpingNetwork  # noqa: E402
from tests.liveportrait_reference import reference_face  # noqa: E402

# Parameter counts LivePortrait reports for its networks (FACTS.md), in millions.
PUBLISHED_MILLIONS = {"appearance": 0.84, "motion": 28.1, "warping": 45.5, "generator": 55.4}


@pytest.fixture(scope="module")
def official_size() -> dict[str, torch.nn.Module]:
    return {name: build() for name, build in BUILDERS.items()}


@pytest.mark.parametrize("network", list(BUILDERS))
def test_state_dict_names_and_shapes_equal_the_official_ones(
    network: str, official_size: dict[str, torch.nn.Module]
) -> None:
    ours = {k: tuple(v.shape) for k, v in official_size[network].state_dict().items()}
    recorded = official_shapes(network)
    assert list(ours) == list(recorded)  # same names, same order
    assert ours == recorded


@pytest.mark.parametrize("network", list(BUILDERS))
def test_recorded_shapes_match_the_published_parameter_counts(network: str) -> None:
    learned = sum(
        int(np.prod(shape))
        for key, shape in official_shapes(network).items()
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked", "_u", "_v"))
    )
    assert learned / 1e6 == pytest.approx(PUBLISHED_MILLIONS[network], rel=0.02)


def test_the_recorded_data_names_its_source() -> None:
    data = json.loads(Path("engines/liveportrait/official_shapes.json").read_text())
    assert "1986663be3b6902605d32200c01f4bfd36cda83d" in data["source"]
    assert official_file("generator") == "spade_generator"
    assert any(k.endswith("conv_0.weight_orig") for k in official_shapes("generator"))


def _random_state(network: str, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes(network).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


def test_official_checkpoint_files_load_strictly(tmp_path: Path) -> None:
    paths = {}
    for network in ("appearance", "motion"):
        state = _random_state(network, seed=3)
        paths[official_file(network)] = tmp_path / f"{official_file(network)}.pth"
        torch.save(state, paths[official_file(network)])
    models = {
        n: load_network(n, read_checkpoint(paths[official_file(n)]))
        for n in ("appearance", "motion")
    }
    loaded = models["motion"].state_dict()
    saved = torch.load(paths["motion_extractor"], weights_only=True)
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert not models["appearance"].training


def test_load_base_networks_reads_every_file(tmp_path: Path) -> None:
    paths = {}
    for network in BUILDERS:
        path = tmp_path / f"{official_file(network)}.pth"
        torch.save(_random_state(network, seed=5), path)
        paths[official_file(network)] = path
    models = load_base_networks(paths)
    assert set(models) == set(BUILDERS)
    gen = models["generator"].state_dict()
    assert torch.equal(
        gen["G_middle_0.conv_0.weight_v"],
        _random_state("generator", 5)["G_middle_0.conv_0.weight_v"],
    )


def test_missing_extra_and_misshapen_keys_are_named() -> None:
    state = _random_state("appearance", seed=1)
    del state["second.bias"]
    state["third.weight"] = torch.zeros(1)
    state["first.conv.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(ModelMissing) as info:
        load_network("appearance", state, "/models/appearance_feature_extractor.pth")
    message = str(info.value)
    assert "/models/appearance_feature_extractor.pth" in message
    assert "missing keys: second.bias" in message
    assert "unexpected keys: third.weight" in message
    assert "first.conv.weight (expected (64, 3, 3, 3), got (64, 3, 5, 5))" in message
    assert "models fetch liveportrait" in message


class _Payload:
    """Not a tensor: ``weights_only`` loading must refuse to unpickle it."""


def test_unsafe_or_damaged_files_are_refused(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"first.conv.weight": _Payload()}, unsafe)
    with pytest.raises(ModelMissing, match="delete it and run"):
        read_checkpoint(unsafe)
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelMissing, match=r"damaged\.pth"):
        read_checkpoint(damaged)
    with pytest.raises(ModelMissing, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pth")


def test_folding_spectral_norm_changes_no_output() -> None:
    generator = random_networks(seed=2, tiny=True).generator
    warped = torch.rand(1, 32, 64, 64)
    with torch.no_grad():
        want = generator(warped)
        folded = fold_spectral_norm(copy.deepcopy(generator))
        got = folded(warped)
    assert not any(k.endswith("weight_orig") for k in folded.state_dict())
    assert (got - want).abs().max().item() <= 1e-5


def test_gather_sampling_equals_grid_sample_in_the_warping_network() -> None:
    nets = random_networks(seed=4, tiny=True)
    feature, kp_driving, kp_source = example_inputs(nets)["warping"]
    gather = copy.deepcopy(nets.warping)
    assert isinstance(gather, WarpingNetwork)
    gather.set_gather(True)
    with torch.no_grad():
        want = nets.warping(feature, kp_driving, kp_source)
        got = gather(feature, kp_driving, kp_source)
    assert want.abs().max().item() > 0.01  # the check below is not vacuous
    assert (got - want).abs().max().item() <= 1e-5


def test_tiny_export_matches_pytorch_and_writes_a_manifest(tiny_liveportrait_onnx: Path) -> None:
    onnx = pytest.importorskip("onnx")
    manifest = json.loads((tiny_liveportrait_onnx / MANIFEST).read_text())
    assert manifest["opset"] == OPSET >= 20
    assert set(manifest["networks"]) == set(NETWORKS)
    for name, entry in manifest["networks"].items():
        assert entry["max_abs_diff"] <= 1e-3, name
        model = onnx.load(str(tiny_liveportrait_onnx / entry["file"]))
        assert [i.name for i in model.graph.input] == list(NETWORKS[name].inputs)
        assert [o.name for o in model.graph.output] == list(NETWORKS[name].outputs)
        ops = {node.op_type for node in model.graph.node}
        assert ("GridSample" in ops) == (name == "warping"), name


@pytest.mark.slow
def test_official_size_export_matches_pytorch_per_network_and_end_to_end(
    tmp_path: Path, astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    """Full-size networks, randomly initialised: ONNX Runtime within 1e-3 of PyTorch."""
    nets = random_networks(seed=0)
    exported = export_onnx(nets, tmp_path, source="random (test)")
    diffs = {name: item.max_abs_diff for name, item in exported.items()}
    assert set(diffs) == set(NETWORKS)
    assert max(diffs.values()) <= 1e-3, diffs

    engine = LivePortraitRenderer(OnnxRuntimeBackend(tmp_path))
    face = landmarker.detect_all(astronaut)[0]
    controls = FaceControls(head_yaw=-12, head_roll=5, jaw_open=0.6, blink_right=0.7, brow_left=0.4)
    got = engine.generate(engine.prepare(astronaut, face), controls)
    want = reference_face(nets, astronaut, face, controls)
    assert np.abs(got - want).max() <= 1e-3
