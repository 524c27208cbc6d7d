"""Run the exported LivePortrait networks with ONNX Runtime (CUDA when present, else CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import EngineUnavailable, ModelMissing
from engines.liveportrait.backend import NETWORKS, RENDER_NETWORKS, onnx_path

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend:
    """One ONNX Runtime session per network.

    ``providers`` are requested in order among what this onnxruntime build offers (CUDA needs
    ``onnxruntime-gpu``); :attr:`providers` reports what the sessions actually got, which is
    less than asked when, say, the CUDA libraries are missing.
    """

    name = "onnxruntime"

    def __init__(
        self,
        onnx_dir: Path,
        *,
        providers: tuple[str, ...] | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineUnavailable(
                "onnxruntime is not installed; run `pip install onnxruntime` "
                "(or onnxruntime-gpu for CUDA, never both)."
            ) from exc
        available = set(ort.get_available_providers())
        wanted = [p for p in (providers or PREFERRED_PROVIDERS) if p in available]
        if not wanted:
            raise EngineUnavailable(
                f"None of the providers {list(providers or PREFERRED_PROVIDERS)} is available in "
                f"this onnxruntime build (it has {sorted(available)})."
            )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self._sessions: dict[str, Any] = {}
        for network in RENDER_NETWORKS:
            path = onnx_path(onnx_dir, network)
            if not path.is_file():
                raise ModelMissing(
                    f"{path} is missing; run `avatar-app engines export liveportrait` to write "
                    "the ONNX models."
                )
            self._sessions[network] = ort.InferenceSession(str(path), options, providers=wanted)

    @property
    def providers(self) -> list[str]:
        """Providers of the heaviest session (the generator), as ONNX Runtime reports them."""
        got: list[str] = self._sessions["generator"].get_providers()
        return got

    def run(self, network: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if network not in self._sessions:
            raise ValueError(f"unknown network {network!r}; expected one of {list(self._sessions)}")
        names = list(NETWORKS[network].outputs)
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
        outputs = self._sessions[network].run(names, feeds)
        return dict(zip(names, outputs, strict=True))
