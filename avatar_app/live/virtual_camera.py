"""Sends RGB frames to a virtual camera (pyvirtualcam) on a thread of its own.

The live session calls ``submit(rgb, pts_ns)``, which only stores the frame in a latest-value
slot. The sink thread ticks at ``fps`` on the monotonic clock, sends the newest frame, and
repeats the last one when the renderer is late, so the call app never sees the camera stall.
Until the first frame arrives the camera shows a dark grey frame, so call apps (and
v4l2loopback's ``exclusive_caps=1``) see a live device as soon as ``start()`` returns.

Frames are RGB all the way: the camera is opened with ``PixelFormat.RGB``, so pure red in is
pure red at the backend (pyvirtualcam converts to the device's native format itself).
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any, TypedDict

import numpy as np

from avatar_app.live.pacer import Pacer
from avatar_app.pipeline.frames import RenderedFrame
from engines.errors import DeviceError, VirtualCameraUnavailable

log = logging.getLogger(__name__)

LATENCY_WINDOW = 300
"""Fresh frames kept for the latency percentiles (10 s at 30 fps)."""
ERROR_LOG_INTERVAL_NS = 5_000_000_000
"""A failing backend is logged at most once per this interval (the count keeps going)."""
PLACEHOLDER_GREY = 32
STOP_TIMEOUT_S = 5.0
"""How long ``stop()`` waits for a send that hangs in the backend."""

LOAD_LOOPBACK = "sudo modprobe v4l2loopback exclusive_caps=1 card_label='Avatar Camera'"
"""The command that makes a virtual camera on Linux (module from v4l2loopback-dkms)."""
LINUX_FIX = (
    f"No v4l2loopback device: run `{LOAD_LOOPBACK}` (install v4l2loopback-dkms), and make "
    "sure you are in the `video` group"
)
OBS_FIX = {
    "Windows": (
        "Install OBS Studio 30 or newer from https://obsproject.com, open it and click "
        "'Start Virtual Camera' once (that registers the camera), then close OBS"
    ),
    "Darwin": (
        "Install OBS Studio 30 or newer from https://obsproject.com, click 'Start Virtual "
        "Camera' once and, on macOS 13+, allow OBS's system extension in System Settings > "
        "Privacy & Security"
    ),
}
"""What makes OBS's virtual camera available, by ``platform.system()``."""


class SinkStats(TypedDict):
    """What ``VirtualCameraSink.stats()`` reports; latencies are ``None`` before any frame."""

    sent: int
    repeated: int
    errors: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None


def virtual_camera_backends() -> list[str]:
    """Names of the backends pyvirtualcam has registered on this OS (``[]`` without it).

    pyvirtualcam registers its built-in backends at import time by OS (``v4l2loopback`` on
    Linux, ``obs`` on macOS, ``obs`` and ``unitycapture`` on Windows) into
    ``pyvirtualcam.camera.BACKENDS``; ``register_backend`` adds to the same table.
    """
    try:
        from pyvirtualcam import camera
    except ImportError:
        return []
    return list(camera.BACKENDS)


def open_fix(system: str | None = None) -> str:
    """What to do when no virtual camera opens, for ``system`` (default: this OS), as a
    sentence without its full stop."""
    system = system or platform.system()
    return LINUX_FIX if system == "Linux" else OBS_FIX.get(system, OBS_FIX["Windows"])


class VirtualCameraSink:
    """``with VirtualCameraSink(1280, 720, 30) as cam: cam.submit(rendered_frame)``.

    ``start`` opens the camera (``DeviceError`` with the fix for this OS if it cannot) and
    starts the sink thread; ``stop`` is idempotent, joins the thread and closes the camera.
    A frame the backend refuses is counted in ``stats()["errors"]`` and logged; the sink keeps
    sending. With ``test_pattern=True`` it sends moving, labelled colour bars with a frame
    counter instead of the submitted frames.
    """

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 30,
        device: str | None = None,
        backend: str | None = None,
        test_pattern: bool = False,
    ) -> None:
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"Bad virtual camera format {width}x{height} at {fps} fps.")
        self.width = width
        self.height = height
        self.fps = fps
        self.device = device
        self.backend = backend
        self._pattern = ColourBars(width, height, fps) if test_pattern else None
        self._slot_lock = threading.Lock()
        placeholder = _placeholder(width, height)
        self._latest: np.ndarray | None = placeholder  # newest frame not yet sent
        self._latest_pts: int | None = None
        self._shown = placeholder  # what the camera shows now
        self._stats_lock = threading.Lock()
        self._sent = 0
        self._repeated = 0
        self._errors = 0
        self._latencies_ns: deque[int] = deque(maxlen=LATENCY_WINDOW)
        self._last_error_log_ns: int | None = None
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._camera: Any = None

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._thread is not None

    @property
    def device_name(self) -> str | None:
        """The device in use (e.g. ``/dev/video10``, ``OBS Virtual Camera``) once started."""
        return None if self._camera is None else str(self._camera.device)

    @property
    def backend_name(self) -> str | None:
        """The pyvirtualcam backend in use once started."""
        return None if self._camera is None else str(self._camera.backend)

    def start(self) -> None:
        """Open the camera and start the sink thread (does nothing when already running)."""
        if self._thread is not None:
            return
        self._camera = _open_camera(self.width, self.height, self.fps, self.device, self.backend)
        log.info("Virtual camera %s (%s) open", self.device_name, self.backend_name)
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name="virtual-camera", daemon=True)
        self._thread.start()

    def submit(self, frame: RenderedFrame) -> None:
        """Hand over a frame (HxWx3 uint8 RGB at the camera's size); never blocks. Its handoff
        latency is measured from ``frame.shaped_ns``."""
        _check_frame(frame.rgb, self.width, self.height)
        rgb = frame.rgb.copy()
        with self._slot_lock:
            self._latest, self._latest_pts = rgb, frame.shaped_ns

    def stats(self) -> SinkStats:
        """Frames sent, sends that repeated the last frame, failed sends, handoff latency."""
        with self._stats_lock:
            latencies = np.array(self._latencies_ns, dtype=np.float64) / 1e6
            sent, repeated, errors = self._sent, self._repeated, self._errors
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies.size else (None, None)
        return SinkStats(
            sent=sent,
            repeated=repeated,
            errors=errors,
            latency_ms_p50=None if p50 is None else float(p50),
            latency_ms_p95=None if p95 is None else float(p95),
        )

    def stop(self) -> None:
        """Stop the thread and close the camera; safe to call more than once."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            stuck = self._thread.is_alive()
            self._thread = None
            if stuck:  # closing under a send that hangs could crash the native backend
                log.warning(
                    "The virtual camera did not stop within %s s; leaving it open", STOP_TIMEOUT_S
                )
                self._camera = None
        if self._camera is not None:
            camera, self._camera = self._camera, None
            try:
                camera.close()
            except Exception:
                log.warning("Closing the virtual camera failed", exc_info=True)

    def __enter__(self) -> VirtualCameraSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        pacer = Pacer(self.fps)  # skips ticks it is late for, restarts after a long stall
        while pacer.wait(self._stop_event) is not None:
            frame, fresh, pts_ns = self._next_frame()
            self._send(frame, fresh, pts_ns)

    def _next_frame(self) -> tuple[np.ndarray, bool, int | None]:
        """(frame, is it new, its pts or None) for this tick."""
        if self._pattern is not None:
            return self._pattern.next(), True, None
        with self._slot_lock:
            frame, pts_ns = self._latest, self._latest_pts
            self._latest = None
        if frame is None:
            return self._shown, False, None
        self._shown = frame
        return frame, True, pts_ns

    def _send(self, frame: np.ndarray, fresh: bool, pts_ns: int | None) -> None:
        try:
            self._camera.send(frame)
        except Exception:
            with self._stats_lock:
                self._errors += 1
            self._log_send_error()
            return
        handed_on_ns = time.monotonic_ns()
        with self._stats_lock:
            self._sent += 1
            if not fresh:
                self._repeated += 1
            elif pts_ns is not None:
                self._latencies_ns.append(handed_on_ns - pts_ns)

    def _log_send_error(self) -> None:
        now = time.monotonic_ns()
        last = self._last_error_log_ns
        if last is None or now - last >= ERROR_LOG_INTERVAL_NS:
            self._last_error_log_ns = now
            log.warning(
                "Virtual camera send failed (%d failures so far); still sending",
                self._errors,
                exc_info=True,
            )


class ColourBars:
    """Seven colour bars named in their own colour, scrolling sideways, with a frame counter.

    If the call app shows the word RED on a blue bar, something swapped red and blue.
    """

    NAMES_AND_COLOURS = (
        ("WHITE", (255, 255, 255)),
        ("YELLOW", (255, 255, 0)),
        ("CYAN", (0, 255, 255)),
        ("GREEN", (0, 255, 0)),
        ("MAGENTA", (255, 0, 255)),
        ("RED", (255, 0, 0)),
        ("BLUE", (0, 0, 255)),
    )

    def __init__(self, width: int, height: int, fps: float) -> None:
        self._base = self._draw_bars(width, height)
        self._step = max(1, round(width / (4 * fps)))  # one full loop in about 4 s
        self._index = 0

    def next(self) -> np.ndarray:
        """The next HxWx3 uint8 RGB frame."""
        frame = np.roll(self._base, self._index * self._step, axis=1)
        self._draw_counter(frame, self._index)
        self._index += 1
        return frame

    @classmethod
    def _draw_bars(cls, width: int, height: int) -> np.ndarray:
        import cv2

        count = len(cls.NAMES_AND_COLOURS)
        colours = np.array([c for _, c in cls.NAMES_AND_COLOURS], np.uint8)
        bar_of_column = np.arange(width) * count // width
        image = np.ascontiguousarray(np.broadcast_to(colours[bar_of_column], (height, width, 3)))
        scale = max(0.3, height / 900)
        for i, (name, _) in enumerate(cls.NAMES_AND_COLOURS):
            x = i * width // count + 4
            y = height - max(8, height // 12)
            cv2.putText(image, name, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2)
        return image

    @staticmethod
    def _draw_counter(frame: np.ndarray, index: int) -> None:
        import cv2

        height = frame.shape[0]
        scale = max(0.4, height / 500)
        text = f"avatar-app test {index:06d}"
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        cv2.rectangle(frame, (0, 0), (w + 16, h + base + 16), (0, 0, 0), -1)
        cv2.putText(frame, text, (8, h + 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2)


def _open_camera(
    width: int, height: int, fps: float, device: str | None, backend: str | None
) -> Any:
    try:
        import pyvirtualcam
    except ImportError as exc:
        raise DeviceError("pyvirtualcam is not installed: run `pip install pyvirtualcam`.") from exc
    known = virtual_camera_backends()
    # pyvirtualcam raises a bare KeyError for an unknown name (and then fails in __del__).
    if backend is not None and backend not in known:
        raise DeviceError(
            f"Unknown virtual camera backend {backend!r}; this system has: "
            f"{', '.join(known) or 'none'}."
        )
    try:
        return pyvirtualcam.Camera(
            width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device, backend=backend
        )
    except Exception as exc:
        said = str(exc).strip() or "no virtual camera backend for this operating system"
        raise VirtualCameraUnavailable(
            f"The virtual camera could not be opened. {open_fix()}. pyvirtualcam said: {said}"
        ) from exc


def _check_frame(rgb: np.ndarray, width: int, height: int) -> None:
    expected = (height, width, 3)
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.shape != expected:
        got = (
            f"shape {rgb.shape} dtype {rgb.dtype}"
            if isinstance(rgb, np.ndarray)
            else type(rgb).__name__
        )
        raise ValueError(
            f"The virtual camera takes {height}x{width}x3 uint8 RGB frames, got {got}. "
            "Did you compose the frame at the camera's output size?"
        )


def _placeholder(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), PLACEHOLDER_GREY, np.uint8)
