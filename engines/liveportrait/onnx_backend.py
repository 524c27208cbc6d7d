"""Run the exported LivePortrait networks with ONNX Runtime (CUDA when present, else CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import EngineUnavailable
from engines.liveportrait.backend import NETWORKS, RENDER_NETWORKS, checked_onnx_path

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend:
    """One ONNX Runtime session per network, run through IO bindings.

    ``providers`` are requested in order among what this onnxruntime build offers (CUDA needs
    ``onnxruntime-gpu``); :attr:`providers` reports what the sessions actually got, which is
    less than asked when, say, the CUDA libraries are missing.

    Tensors live on the device of the generator's session. Read-only inputs (the portrait's
    feature volume and keypoints, which the renderer freezes) are uploaded once, and the
    warping output is handed to the generator where it lies, so a CUDA frame moves only the
    driving keypoints in and the image out.
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
            path = checked_onnx_path(onnx_dir, network)  # ModelMissing if absent or changed
            self._sessions[network] = ort.InferenceSession(str(path), options, providers=wanted)
        self._ort = ort
        on_cuda = self.providers[0] == "CUDAExecutionProvider"
        self._device = "cuda" if on_cuda else "cpu"
        self._resident: dict[tuple[str, str], tuple[np.ndarray, Any]] = {}
        """(network, input) -> (the read-only array, its OrtValue on the device)."""

    @property
    def providers(self) -> list[str]:
        """Providers of the heaviest session (the generator), as ONNX Runtime reports them."""
        got: list[str] = self._sessions["generator"].get_providers()
        return got

    def run(self, network: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if network not in self._sessions:
            raise ValueError(f"unknown network {network!r}; expected one of {list(self._sessions)}")
        session = self._sessions[network]
        binding = session.io_binding()
        for name, array in inputs.items():
            binding.bind_ortvalue_input(name, self._on_device(network, name, array))
        names = list(NETWORKS[network].outputs)
        for name in names:
            binding.bind_output(name, self._device)
        session.run_with_iobinding(binding)
        values = binding.get_outputs()
        outputs = {name: value.numpy() for name, value in zip(names, values, strict=True)}
        if network == "warping":
            warped = outputs["warped"]
            warped.setflags(write=False)
            self._resident[("generator", "warped")] = (warped, values[0])
        return outputs

    def _on_device(self, network: str, name: str, array: np.ndarray) -> Any:
        """``array`` as an OrtValue on the device; read-only arrays are uploaded only once."""
        known = self._resident.get((network, name))
        if known is not None and known[0] is array:
            return known[1]
        contiguous = np.ascontiguousarray(array, dtype=np.float32)
        value = self._ort.OrtValue.ortvalue_from_numpy(contiguous, self._device, 0)
        if not array.flags.writeable:
            self._resident[(network, name)] = (array, value)
        return value
