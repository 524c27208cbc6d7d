"""What every LivePortrait back end runs: the networks' ONNX files and their inputs and outputs.

The renderer only talks to a :class:`Backend`; ONNX Runtime (CPU or CUDA) and TensorRT both
implement it. Each network is exported to ``<onnx_dir>/<name>.onnx`` with the input and
output names below (batch 1, float32, fixed shapes). ``warping_gather.onnx`` is the warping
network with its two 5-D ``grid_sample`` calls replaced by the gather-based sampler, for
TensorRT, whose GridSample layer is 4-D only.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engines.errors import ModelMissing
from engines.model_cache import check_sha256

NUM_KP = 21


@dataclass(frozen=True)
class NetworkIO:
    """Input and output names and shapes of one exported network."""

    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]


_WARPING_IO = NetworkIO(
    inputs={
        "feature": (1, 32, 16, 64, 64),
        "kp_driving": (1, NUM_KP, 3),
        "kp_source": (1, NUM_KP, 3),
    },
    outputs={"warped": (1, 256, 64, 64)},
)

NETWORKS: dict[str, NetworkIO] = {
    "appearance": NetworkIO({"image": (1, 3, 256, 256)}, {"feature": (1, 32, 16, 64, 64)}),
    "motion": NetworkIO(
        {"image": (1, 3, 256, 256)},
        {
            "pitch": (1, 66),
            "yaw": (1, 66),
            "roll": (1, 66),
            "t": (1, 3),
            "exp": (1, 3 * NUM_KP),
            "scale": (1, 1),
            "kp": (1, 3 * NUM_KP),
        },
    ),
    "warping": _WARPING_IO,
    "warping_gather": _WARPING_IO,
    "generator": NetworkIO({"warped": (1, 256, 64, 64)}, {"image": (1, 3, 512, 512)}),
    "stitching": NetworkIO({"x": (1, 126)}, {"delta": (1, 65)}),
    "lip": NetworkIO({"x": (1, 65)}, {"delta": (1, 63)}),
    "eye": NetworkIO({"x": (1, 66)}, {"delta": (1, 63)}),
}
"""Network name -> its ONNX file's inputs and outputs (file ``<name>.onnx``)."""

RENDER_NETWORKS = ("appearance", "motion", "warping", "generator", "stitching", "lip", "eye")
"""The networks a renderer needs; a TensorRT back end uses ``warping_gather`` for ``warping``."""


class Backend(Protocol):
    """Runs the exported networks."""

    name: str
    """E.g. ``"onnxruntime"`` or ``"tensorrt"``."""

    @property
    def providers(self) -> list[str]:
        """What actually runs the networks, e.g. ``["CUDAExecutionProvider", ...]``."""
        ...

    def run(self, network: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one network (a key of :data:`NETWORKS`); float32 arrays in, float32 out."""
        ...


def onnx_path(onnx_dir: Path, network: str) -> Path:
    return onnx_dir / f"{network}.onnx"


MANIFEST = "manifest.json"
"""Written by the export next to the ONNX files: each network's file name and SHA-256."""
_REEXPORT = "Run `avatar-app engines export liveportrait` again to write the models afresh."


def checked_onnx_path(onnx_dir: Path, network: str) -> Path:
    """``network``'s ONNX file, after checking it against the SHA-256 in ``manifest.json``.

    ModelMissing, saying to export again, when the manifest or the file is missing, or the file
    was changed or damaged since the export wrote it.
    """
    path = onnx_path(onnx_dir, network)
    manifest = onnx_dir / MANIFEST
    try:
        entry = json.loads(manifest.read_text())["networks"][network]
        expected = entry["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelMissing(
            f"{manifest} is missing or does not list the {network} network ({exc}). {_REEXPORT}"
        ) from exc
    if not path.is_file():
        raise ModelMissing(f"{path} is missing. {_REEXPORT}")
    return check_sha256(path, str(expected), f"{_REEXPORT} (Or delete {onnx_dir}.)")


def write_atomically(path: Path, data: Any) -> None:
    """Write bytes (or any buffer) through a temporary file and a rename, so a crash never
    leaves a half-written model or engine under its real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
