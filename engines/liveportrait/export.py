"""Export the LivePortrait networks to ONNX and prove each file computes what PyTorch does.

One file per network (names and tensor names in :mod:`engines.liveportrait.backend`), opset
20, fixed batch 1. Spectral norms are folded into plain weights first. The warping network
is written twice: ``warping.onnx`` with ONNX's GridSample (ONNX Runtime) and
``warping_gather.onnx`` with the exact gather-based sampler (TensorRT). Every file is run
by ONNX Runtime on the example inputs and compared with PyTorch; ``manifest.json`` records
the differences, the opset and where the weights came from.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from engines.errors import ModelMissing
from engines.liveportrait.backend import NETWORKS, onnx_path, write_atomically
from engines.liveportrait.blocks import fold_spectral_norm
from engines.liveportrait.motion import HEADS
from engines.liveportrait.network_set import NetworkSet
from engines.liveportrait.warping import WarpingNetwork
from engines.model_cache import sha256_of

OPSET = 20
MANIFEST = "manifest.json"
PARITY_TOLERANCE = 1e-3
"""Largest allowed |PyTorch - ONNX Runtime| of any output element."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportedNetwork:
    path: Path
    max_abs_diff: float


def example_inputs(nets: NetworkSet, seed: int = 0) -> dict[str, tuple[Tensor, ...]]:
    """Realistic inputs for every network: a random image and keypoints near the source's."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 256, 256, generator=generator)
    with torch.no_grad():
        feature = nets.appearance(image)
        kp_source = torch.rand(1, 21, 3, generator=generator) * 1.2 - 0.6
        kp_driving = kp_source + 0.03 * torch.randn(1, 21, 3, generator=generator)
        warped = nets.warping(feature, kp_driving, kp_source)
    return {
        "appearance": (image,),
        "motion": (image,),
        "warping": (feature, kp_driving, kp_source),
        "warping_gather": (feature, kp_driving, kp_source),
        "generator": (warped,),
        "stitching": (torch.randn(1, 126, generator=generator) * 0.3,),
        "lip": (torch.randn(1, 65, generator=generator) * 0.3,),
        "eye": (torch.randn(1, 66, generator=generator) * 0.3,),
    }


def exportable_modules(nets: NetworkSet) -> dict[str, nn.Module]:
    """Every file's module: spectral norms folded, the warping net also with gather sampling."""
    gather = copy.deepcopy(nets.warping)
    assert isinstance(gather, WarpingNetwork)
    gather.set_gather(True)
    modules = dict(nets.items())
    modules["generator"] = fold_spectral_norm(copy.deepcopy(nets.generator))
    modules["warping_gather"] = gather
    return {name: modules[name].eval() for name in NETWORKS}


def onnx_bytes(model: nn.Module, name: str, inputs: tuple[Tensor, ...]) -> bytes:
    io_names = NETWORKS[name]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape arithmetic
        torch.onnx.export(
            model,
            inputs,
            buffer,  # type: ignore[arg-type]  # torch accepts file-like objects
            opset_version=OPSET,
            input_names=list(io_names.inputs),
            output_names=list(io_names.outputs),
            dynamo=False,
        )
    return buffer.getvalue()


def parity(model: nn.Module, name: str, data: bytes, inputs: tuple[Tensor, ...]) -> float:
    """Max |PyTorch - ONNX Runtime (CPU)| over all outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {key: t.numpy() for key, t in zip(NETWORKS[name].inputs, inputs, strict=True)}
    got = session.run(None, feeds)
    with torch.no_grad():
        want = model(*inputs)
    wanted = want if isinstance(want, tuple) else (want,)
    return max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, wanted, strict=True))


def export_onnx(
    nets: NetworkSet,
    out_dir: Path,
    *,
    source: str,
    verify: bool = True,
    progress: Progress | None = None,
) -> dict[str, ExportedNetwork]:
    """Write every network's ONNX file and ``manifest.json`` into ``out_dir``.

    ``source`` says where the weights came from (recorded in the manifest). With ``verify``
    each file must match PyTorch within :data:`PARITY_TOLERANCE`, else ModelMissing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(nets)
    exported: dict[str, ExportedNetwork] = {}
    for name, model in exportable_modules(nets).items():
        if progress:
            progress(name)
        data = onnx_bytes(model, name, inputs[name])
        diff = parity(model, name, data, inputs[name]) if verify else float("nan")
        if verify and not diff <= PARITY_TOLERANCE:
            raise ModelMissing(
                f"The exported {name} network differs from PyTorch by {diff:.2e} "
                f"(allowed {PARITY_TOLERANCE:.0e}); please report this with your versions of "
                f"torch ({torch.__version__}) and onnxruntime."
            )
        path = onnx_path(out_dir, name)
        write_atomically(path, data)
        exported[name] = ExportedNetwork(path, diff)
    _write_manifest(out_dir, exported, source)
    return exported


def _write_manifest(out_dir: Path, exported: dict[str, ExportedNetwork], source: str) -> None:
    manifest = {
        "opset": OPSET,
        "source": source,
        "torch": torch.__version__,
        "motion_outputs": list(HEADS),
        "networks": {
            name: {
                "file": item.path.name,
                "sha256": sha256_of(item.path),
                "max_abs_diff": item.max_abs_diff,
            }
            for name, item in exported.items()
        },
    }
    write_atomically(out_dir / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def export_official(out_dir: Path, progress: Progress | None = None) -> dict[str, ExportedNetwork]:
    """Export the official weights from ``weights.verified_weights()`` (ModelMissing if absent
    or damaged)."""
    from engines.liveportrait.network_set import official_networks
    from engines.liveportrait.weights import FILES, verified_weights

    nets = official_networks(verified_weights())
    source = "official LivePortrait weights: " + ", ".join(
        f"{f.file_name} {f.sha256[:12]}" for f in FILES
    )
    return export_onnx(nets, out_dir, source=source, progress=progress)
