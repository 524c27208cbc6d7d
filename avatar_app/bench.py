"""``avatar-app bench render``: how fast one renderer prepares and renders, on one thread.

Prints numbers and pass/fail against the targets; a missed target never fails the command
(tests never assert on time).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from avatar_app.framing import frame_face
from avatar_app.process_stats import peak_rss_mb
from avatar_app.sweep import SWEEP_SECONDS, sweep_controls

SIZES: tuple[tuple[int, int], ...] = ((512, 512), (1280, 720))
WARMUP_FRAMES = 5
TARGETS: dict[str, float] = {
    "render_512x512_ms": 8.0,
    "render_1280x720_ms": 15.0,
    "prepare_ms": 1000.0,
    "peak_rss_mb": 400.0,
}
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def single_thread_env() -> None:
    """Ask BLAS and OpenMP for one thread; effective only before numpy is first imported."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = "1"


def _limit_threads() -> object | None:
    """One OpenCV thread, and threadpoolctl's limit when it happens to be installed."""
    import cv2

    cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(1)


def bench_render(
    engine: str = "auto", frames: int = 200, portrait: Path | None = None
) -> dict[str, Any]:
    """Prepare and render the sweep at each size in SIZES; the result is JSON-ready."""
    from avatar_app.portrait_file import bundled_portrait_path, load_portrait
    from engines.face.landmarker import detect_face
    from engines.renderer import create_renderer

    limits = _limit_threads()
    rgb = load_portrait(portrait or bundled_portrait_path())
    started = time.perf_counter()
    face = detect_face(rgb)
    detect_ms = ms_since(started)
    renderer = create_renderer(engine)
    sizes: dict[str, dict[str, float]] = {}
    for width, height in SIZES:
        frame, landmarks = frame_face(rgb, face, (width, height), "fill")
        started = time.perf_counter()
        prepared = renderer.prepare(frame, landmarks)
        prepare_ms = ms_since(started)
        times = _time_renders(renderer, prepared, frames)
        sizes[f"{width}x{height}"] = {
            "prepare_ms": _round(prepare_ms),
            "median_ms": _round(float(np.median(times))),
            "p95_ms": _round(float(np.percentile(times, 95))),
            "frames": frames,
        }
    del limits
    peak_mb = peak_rss_mb()
    prepare_ms = max(s["prepare_ms"] for s in sizes.values())
    measured = {
        "render_512x512_ms": sizes["512x512"]["median_ms"],
        "render_1280x720_ms": sizes["1280x720"]["median_ms"],
        # What a user waits for after picking a photo: detection (with the model load) + prepare.
        "prepare_ms": detect_ms + prepare_ms,
        "peak_rss_mb": peak_mb,
    }
    return {
        "engine": getattr(renderer, "name", engine),
        "threads": 1,
        "detect_ms": _round(detect_ms),
        "prepare_ms": _round(prepare_ms),
        "sizes": sizes,
        "peak_rss_mb": _round(peak_mb),
        "targets": {
            key: {"target": limit, "value": _round(measured[key]), "pass": measured[key] <= limit}
            for key, limit in TARGETS.items()
        },
        "machine": machine_info(),
    }


def _time_renders(renderer: Any, prepared: Any, frames: int) -> np.ndarray:
    """Milliseconds per render for ``frames`` instants spread over the sweep, after warm-up."""
    for i in range(WARMUP_FRAMES):
        renderer.render(prepared, sweep_controls(i * 0.5))
    times = np.empty(frames, dtype=np.float64)
    for i in range(frames):
        controls = sweep_controls(i * SWEEP_SECONDS / frames)
        started = time.perf_counter()
        renderer.render(prepared, controls)
        times[i] = ms_since(started)
    return times


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _round(value: float) -> float:
    return round(float(value), 2)
