"""``avatar-app bench render --engine liveportrait``: per-network and per-frame cost.

Speed does not depend on the weights' values, so without the official weights the
benchmark exports randomly initialised networks of the official sizes once (cached).
ONNX Runtime runs with 1 and with 2 intra-op threads; every network gets its real input
shapes, and whole frames include the FaceControls mapping and the paste-back.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from avatar_app.bench import machine_info, ms_since
from avatar_app.framing import frame_face
from avatar_app.process_stats import peak_rss_mb
from avatar_app.sweep import sweep_controls
from engines.errors import EngineUnavailable

SIZES: tuple[tuple[int, int], ...] = ((512, 512), (1280, 720))
GPU_TARGET_MS = 10.0
"""End-to-end frame target with TensorRT fp16 on an RTX 4090-class GPU (not measurable here)."""


def models_for_bench() -> tuple[Path, str]:
    """The engine's exported models if there are any, else random official-size ones (cached).

    Returns the folder and where its weights came from (the export manifest's ``source``).
    """
    from engines.liveportrait.renderer import onnx_dir
    from engines.liveportrait.weights import weights_dir

    folder = onnx_dir()
    if not (folder / "manifest.json").is_file():
        folder = weights_dir() / "onnx-random"
    if not (folder / "manifest.json").is_file():
        try:
            from engines.liveportrait.export import export_onnx
            from engines.liveportrait.network_set import random_networks
        except ImportError as exc:
            raise EngineUnavailable(
                "Without the official LivePortrait models, the benchmark exports random ones, "
                "which needs PyTorch: pip install 'avatar-app[neural]'."
            ) from exc
        print(
            f"No LivePortrait models set up: exporting random ones to {folder} once ...",
            file=sys.stderr,
        )
        export_onnx(random_networks(seed=0), folder, source="random weights, official sizes")
    source: str = json.loads((folder / "manifest.json").read_text())["source"]
    return folder, source


def bench_liveportrait(
    engine: str = "liveportrait", frames: int = 3, portrait: Path | None = None
) -> dict[str, Any]:
    from avatar_app.portrait_file import bundled_portrait_path, load_portrait
    from engines.face.landmarker import detect_face
    from engines.liveportrait.onnx_backend import OnnxRuntimeBackend
    from engines.liveportrait.renderer import LivePortraitRenderer

    if engine != "liveportrait":
        raise EngineUnavailable(f"{engine} cannot be benchmarked here: it needs a CUDA GPU.")
    folder, weights = models_for_bench()
    rgb = load_portrait(portrait or bundled_portrait_path())
    face = detect_face(rgb)
    runs = {}
    providers: list[str] = []
    for threads in (1, 2):
        renderer = LivePortraitRenderer(OnnxRuntimeBackend(folder, threads=threads))
        providers = renderer.backend.providers
        runs[f"threads_{threads}"] = _bench_threads(renderer, rgb, face, frames)
        del renderer  # one set of sessions in memory at a time
    return {
        "engine": "liveportrait",
        "backend": "onnxruntime",
        "providers": providers,
        "weights": weights,
        "models": str(folder),
        "frames": frames,
        **runs,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "gpu_target_ms": GPU_TARGET_MS,
        "machine": machine_info(),
    }


def _bench_threads(renderer: Any, rgb: np.ndarray, face: Any, frames: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for width, height in SIZES:
        frame, landmarks = frame_face(rgb, face, (width, height), "fill")
        started = time.perf_counter()
        prepared = renderer.prepare(frame, landmarks)
        prepare_ms = ms_since(started)
        renderer.render(prepared, sweep_controls(0.5))  # warm-up
        times = []
        for i in range(frames):
            started = time.perf_counter()
            renderer.render(prepared, sweep_controls(1.0 + i))
            times.append(ms_since(started))
        result[f"{width}x{height}"] = {
            "prepare_ms": round(prepare_ms, 1),
            "frame_ms": round(float(np.median(times)), 1),
        }
    result["networks_ms"] = _network_times(renderer, prepared, frames)
    return result


def _network_times(renderer: Any, prepared: Any, repeats: int) -> dict[str, float]:
    """Median milliseconds of each network on its real inputs."""
    from engines.liveportrait.backend import NETWORKS, RENDER_NETWORKS

    feeds = {
        "warping": {
            "feature": prepared.feature,
            "kp_driving": prepared.kp_source,
            "kp_source": prepared.kp_source,
        }
    }
    feeds["generator"] = {"warped": renderer.backend.run("warping", feeds["warping"])["warped"]}
    image = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    feeds["appearance"] = feeds["motion"] = {"image": image}
    for mlp in ("stitching", "lip", "eye"):
        size = NETWORKS[mlp].inputs["x"][1]
        feeds[mlp] = {"x": np.zeros((1, size), np.float32)}
    times = {}
    for network in RENDER_NETWORKS:
        samples = []
        for _ in range(max(repeats, 1) + 1):
            started = time.perf_counter()
            renderer.backend.run(network, feeds[network])
            samples.append(ms_since(started))
        times[network] = round(float(np.median(samples[1:])), 2)
    return times
