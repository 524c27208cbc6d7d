"""``avatar-app bench gui``: how the window feels. Prints JSON.

- launch to window: a new ``avatar-app`` process until its window is shown and painted;
- Go live to the first frame the virtual camera gets (the portrait already chosen);
- the longest stall of the GUI thread's event loop while live with the preview on, and the
  fps the session holds meanwhile.

Runs offscreen when there is no display. The virtual camera is a backend registered for the
run that notes when each frame arrives (this machine may have no camera device).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, ClassVar

import numpy as np

TARGETS = {"launch_to_window_s": 2.0, "go_live_to_first_frame_s": 1.0, "gui_stall_ms": 16.0}
BACKEND = "bench-gui"
PLACEHOLDER_GREY = 32
TICK_MS = 5


class TimingBackend:
    """A pyvirtualcam backend that notes when the first rendered (not placeholder) frame came."""

    first_frame_at: ClassVar[float | None] = None

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, **kw: Any) -> None:
        self.fourcc = fourcc

    def send(self, frame: np.ndarray) -> None:
        if TimingBackend.first_frame_at is None and np.any(frame != PLACEHOLDER_GREY):
            TimingBackend.first_frame_at = time.perf_counter()

    def close(self) -> None:
        pass

    def device(self) -> str:
        return "bench-gui-camera"

    def native_fourcc(self) -> int:
        return self.fourcc


def bench_gui(seconds: float = 30.0) -> dict[str, Any]:
    launch = _launch_to_window()
    live = _live_in_window(seconds)
    measured = {"launch_to_window_s": launch, **live}
    return {
        **{key: round(value, 3) for key, value in measured.items()},
        "platform": os.environ.get("QT_QPA_PLATFORM") or "native",
        "targets": {
            key: {"target": limit, "value": round(measured[key], 3), "pass": measured[key] <= limit}
            for key, limit in TARGETS.items()
        },
        "all_figures": "measured in this run",
    }


def _launch_to_window() -> float:
    """Seconds from starting a new process to its window shown (interpreter start included)."""
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "ui.bench_gui", "--probe-launch", repr(started)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the window did not open: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _probe_launch(started: float) -> int:
    """In the child: open the window, print the seconds since ``started`` once it is painted."""
    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    from PySide6.QtWidgets import QApplication

    from avatar_app.app_settings import AppSettings
    from ui.app import app_icon
    from ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    window = MainWindow(AppSettings(), app_icon())
    window.show()
    app.processEvents()
    window.repaint()
    print(time.time() - started)
    return 0


def _live_in_window(seconds: float) -> dict[str, float]:
    import pyvirtualcam
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from avatar_app.app_settings import AppSettings
    from avatar_app.pipeline.session import State
    from ui.app import app_icon
    from ui.main_window import MainWindow

    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(AppSettings(), app_icon())
    window.camera_backend = BACKEND
    window.audio_file = _speech_file()
    window.show()
    stalls: list[float] = []
    clock = QElapsedTimer()
    result: dict[str, float] = {}

    def tick() -> None:
        elapsed = clock.restart()
        if window.session is not None and window.session.state is State.LIVE:
            stalls.append(max(0.0, elapsed - TICK_MS))

    def finish() -> None:
        session = window.session
        assert session is not None
        result["live_fps"] = session.snapshot().fps
        window.quit()

    pyvirtualcam.register_backend(BACKEND, TimingBackend)
    try:
        _wait_for(app, lambda: window.checked is not None, 30)  # the portrait is chosen
        TimingBackend.first_frame_at = None
        started = time.perf_counter()
        window.go_live()
        _wait_for(app, lambda: TimingBackend.first_frame_at is not None, 30)
        assert TimingBackend.first_frame_at is not None
        result["go_live_to_first_frame_s"] = TimingBackend.first_frame_at - started
        _wait_for(app, lambda: window.session is not None and window.session.state is State.LIVE)
        ticker = QTimer()
        ticker.timeout.connect(tick)
        clock.start()
        ticker.start(TICK_MS)
        QTimer.singleShot(int(seconds * 1000), finish)
        app.exec()
    finally:
        del pyvirtualcam.camera.BACKENDS[BACKEND]
    result["gui_stall_ms"] = max(stalls, default=0.0)
    result["gui_stall_ms_p99"] = float(np.percentile(stalls, 99)) if stalls else 0.0
    return result


def _wait_for(app: Any, condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.005)


def _speech_file() -> Any:
    import tempfile
    from pathlib import Path

    from scipy.io import wavfile

    from avatar_app.bench_speech import speech_for_bench
    from engines.speech.features import RATE

    speech, _ = speech_for_bench(20.0)
    path = Path(tempfile.mkdtemp()) / "speech.wav"
    wavfile.write(path, RATE, (np.clip(speech, -1, 1) * 32767).astype(np.int16))
    return path


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe-launch"]:
        sys.exit(_probe_launch(float(sys.argv[2])))
    print(json.dumps(bench_gui(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0), indent=2))
