"""Pictures for the live session: a webcam (OpenCV) or a video file in real time.

Both sources run a capture thread that converts each frame to RGB and writes it into a
latest-value slot: a consumer calling ``latest`` only ever gets the newest frame, and frames
overwritten before anyone took them are counted in ``skipped``. Every ``CameraFrame`` carries
``pts_ns`` (``time.monotonic_ns()`` at capture) and an ``index`` that only ever increases.

A camera that fails after ``start`` (unplugged, taken by another app) is reopened on the capture
thread with backoff; ``status`` says "running", "reconnecting" or "stopped". Only ``start``
raises: ``DeviceError`` when the device cannot be opened at all.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from avatar_app.live.doctor import LOOPBACK_MARKERS
from engines.errors import DeviceError

log = logging.getLogger(__name__)

Status = Literal["running", "reconnecting", "stopped"]
Target = int | str  # what cv2.VideoCapture opens: an index or a path

BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Waits before successive reconnection attempts; the last one repeats."""
V4L2_SYSFS = Path("/sys/class/video4linux")
"""Where Linux lists video devices, one folder per /dev/videoN with a ``name`` file."""
_RESYNC_NS = 500_000_000  # a file source this far behind the clock restarts its timeline


@dataclass(frozen=True)
class CameraFrame:
    """``rgb``: HxWx3 uint8 RGB; ``pts_ns``: monotonic capture time; ``index``: 0, 1, 2, ..."""

    rgb: np.ndarray
    pts_ns: int
    index: int


class _LatestSlot:
    """Holds the newest frame; ``put`` never waits and counts frames nobody took."""

    def __init__(self) -> None:
        self._frame: CameraFrame | None = None
        self._taken = -1
        self._ready = threading.Condition(threading.Lock())
        self.skipped = 0

    def put(self, frame: CameraFrame) -> None:
        with self._ready:
            if self._frame is not None and self._frame.index > self._taken:
                self.skipped += 1
            self._frame = frame
            self._ready.notify_all()

    def get(self, after_index: int, timeout: float) -> CameraFrame | None:
        def newer() -> bool:
            return self._frame is not None and self._frame.index > after_index

        with self._ready:
            if timeout > 0:
                self._ready.wait_for(newer, timeout)
            if not newer():
                return None
            frame = self._frame
            assert frame is not None
            self._taken = max(self._taken, frame.index)
            return frame


class _FrameSource:
    """What both sources share: the slot, status, the capture thread's life cycle."""

    _thread_name = "frames"

    def __init__(self) -> None:
        self._slot = _LatestSlot()
        self._status: Status = "stopped"
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_index = 0
        self._last_pts = 0

    @property
    def status(self) -> Status:
        """ "running", "reconnecting" (camera only) or "stopped"."""
        return self._status

    @property
    def skipped(self) -> int:
        """Frames replaced by a newer one before ``latest`` handed them out."""
        return self._slot.skipped

    @property
    def frames(self) -> int:
        """Frames captured so far."""
        return self._next_index

    def latest(self, after_index: int = -1, timeout: float = 0.0) -> CameraFrame | None:
        """The newest frame if its index is above ``after_index``, else None.

        With ``timeout`` > 0, waits up to that many seconds for such a frame.
        """
        return self._slot.get(after_index, timeout)

    def start(self) -> None:
        """Open the source and start the capture thread; a second call does nothing."""
        if self._thread is not None:
            return
        self._stopping.clear()
        capture = self._open()
        self._status = "running"
        self._thread = threading.Thread(
            target=self._run_safely, args=(capture,), name=self._thread_name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the capture thread and close the source; safe to call any number of times."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self._status = "stopped"

    def __enter__(self) -> _FrameSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open(self) -> Any:
        raise NotImplementedError

    def _run(self, capture: Any) -> Any:
        """Capture until stopped; returns the capture still open (or None)."""
        raise NotImplementedError

    def _run_safely(self, capture: Any) -> None:
        try:
            capture = self._run(capture)
        except Exception:  # the capture thread never raises
            log.exception("The %s thread failed", self._thread_name)
            self._status = "stopped"
        finally:
            _release(capture)

    def _publish(self, image: np.ndarray, pts_ns: int) -> None:
        pts_ns = max(pts_ns, self._last_pts + 1)
        self._last_pts = pts_ns
        self._slot.put(CameraFrame(_to_rgb(image), pts_ns, self._next_index))
        self._next_index += 1


class CameraSource(_FrameSource):
    """Live pictures from a webcam.

    ``device``: None (the first camera that is not a virtual one), an index, a path such as
    ``/dev/video0`` (any path OpenCV opens, a video file included), or (part of) a camera's name
    as Linux lists it in /sys/class/video4linux, case-insensitive. ``width``, ``height`` and
    ``fps`` are requests; the camera may deliver something else.
    """

    _thread_name = "camera"

    def __init__(
        self, device: str | int | None = None, width: int = 640, height: int = 480, fps: int = 30
    ) -> None:
        super().__init__()
        self.device = device
        self.width = width
        self.height = height
        self.fps = fps
        self.reconnects = 0
        """Times the camera was reopened after a failure."""
        self._opened_name = ""

    @property
    def device_name(self) -> str:
        """What was opened, e.g. "HD Webcam (/dev/video0)" ("" before ``start``)."""
        return self._opened_name

    def __enter__(self) -> CameraSource:
        self.start()
        return self

    def _open(self) -> Any:
        """Open the device and read one frame to prove it works; DeviceError if not."""
        candidates = _candidates(self.device)
        if not candidates:
            raise _no_such_camera(self.device)
        for target, label in candidates:
            capture, image = _try_open(target, self.width, self.height, self.fps)
            if capture is not None and image is not None:
                self._opened_name = label
                self._publish(image, time.monotonic_ns())
                log.info("Camera %s open", label)
                return capture
        raise _cannot_open(self.device, [label for _, label in candidates])

    def _run(self, capture: Any) -> Any:
        while not self._stopping.is_set():
            if capture is None:
                capture = self._reconnect()
                continue
            image = _read(capture)
            if self._stopping.is_set():
                break
            if image is not None:
                self._publish(image, time.monotonic_ns())
                continue
            log.warning("Camera %s stopped delivering; reconnecting", self._opened_name)
            self._status = "reconnecting"
            _release(capture)
            capture = None
        return capture

    def _reconnect(self) -> Any:
        """Reopen with backoff until it works (the capture) or ``stop`` is called (None)."""
        attempt = 0
        while True:
            wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            if self._stopping.wait(wait):
                return None
            attempt += 1
            try:
                capture = self._open()
            except Exception as exc:
                log.warning("Reopening camera failed (attempt %d): %s", attempt, exc)
                continue
            self.reconnects += 1
            self._status = "running"
            log.warning("Camera %s is back", self._opened_name)
            return capture


class VideoFileSource(_FrameSource):
    """A video file played as if it came from a camera, paced by its frame rate.

    A frame is released when its time comes on the monotonic clock; its ``pts_ns`` is that
    time. With ``loop`` the file repeats; otherwise the source stops by itself at the end
    (``status`` becomes "stopped"). ``start`` raises DeviceError if the file cannot be read.
    """

    _thread_name = "video-file"

    def __init__(self, path: str | os.PathLike[str], loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.loop = loop
        self.fps = 0.0
        """The file's frame rate (known after ``start``)."""
        self._first: np.ndarray | None = None
        self._finished = threading.Event()

    def __enter__(self) -> VideoFileSource:
        self.start()
        return self

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait until a file played without ``loop`` has ended; False on timeout."""
        return self._finished.wait(timeout)

    def _open(self) -> Any:
        self._finished.clear()
        if not self.path.is_file():
            raise DeviceError(f"The video {self.path} does not exist. Check the path.")
        capture, image = _try_open(str(self.path))
        if capture is None or image is None:
            raise DeviceError(
                f"The video {self.path} cannot be read. Pick a video file OpenCV can decode "
                "(e.g. .mp4 with H.264)."
            )
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self._first = image
        return capture

    def _run(self, capture: Any) -> Any:
        period_ns = 1e9 / self.fps
        start_ns = time.monotonic_ns()
        count = 0  # frames played since start_ns
        image, self._first = self._first, None
        while not self._stopping.is_set():
            if image is None:
                image = _read(capture)
                if image is None:
                    capture, image = self._rewind(capture)
                    if capture is None or image is None:
                        break
            due = start_ns + round(count * period_ns)
            late = time.monotonic_ns() - due
            if late > _RESYNC_NS:  # the machine could not keep up: restart the timeline
                start_ns, count, due = start_ns + late, 0, start_ns + late
            elif late < 0 and self._stopping.wait(-late / 1e9):
                break
            self._publish(image, due)
            image = None
            count += 1
        return capture

    def _rewind(self, capture: Any) -> tuple[Any, np.ndarray | None]:
        """At the end: the file reopened with its first frame (``loop``), else (None, None)."""
        _release(capture)
        if self.loop and not self._stopping.is_set():
            reopened, image = _try_open(str(self.path))
            if reopened is not None:
                return reopened, image
            log.warning("The video %s could not be reopened to loop", self.path)
        self._status = "stopped"
        self._finished.set()
        return None, None


# -- devices -----------------------------------------------------------------------------


def _v4l2_devices() -> list[tuple[str, str]]:
    """(path, name) of each Linux video device, in device-number order."""
    if platform.system() != "Linux" or not V4L2_SYSFS.is_dir():
        return []
    found = []
    for node in V4L2_SYSFS.glob("video*"):
        number = re.fullmatch(r"video(\d+)", node.name)
        if number is None:
            continue
        try:
            name = (node / "name").read_text().strip()
        except OSError:
            name = node.name
        found.append((int(number.group(1)), f"/dev/{node.name}", name))
    return [(path, name) for _, path, name in sorted(found)]


def _is_virtual(name: str) -> bool:
    return any(marker in name.casefold() for marker in LOOPBACK_MARKERS)


def _candidates(device: str | int | None) -> list[tuple[Target, str]]:
    """What to try opening for ``device``, in order, each with a label for messages."""
    if isinstance(device, int):
        return [(device, f"#{device}")]
    if device is None:
        devices = [(p, n) for p, n in _v4l2_devices() if not _is_virtual(n)]
        return [(p, f"{n!r} ({p})") for p, n in devices] or [(0, "#0")]
    text = device.strip()
    if text.isdigit():
        return [(int(text), f"#{text}")]
    if os.sep in text or "/" in text or Path(text).exists():
        return [(text, text)]
    wanted = text.casefold()
    devices = _v4l2_devices()
    exact = [(p, n) for p, n in devices if n.casefold() == wanted]
    partial = [(p, n) for p, n in devices if wanted in n.casefold() and (p, n) not in exact]
    return [(p, f"{n!r} ({p})") for p, n in exact + partial]


def _found_text() -> str:
    devices = _v4l2_devices()
    listed = ", ".join(f"{n!r} ({p})" for p, n in devices)
    return f"Cameras found: {listed or 'none'}."


def _no_such_camera(device: str | int | None) -> DeviceError:
    return DeviceError(
        f"No camera named {device!r}. {_found_text()} "
        "Run `avatar-app devices` to list them, and pass a name, an index or a /dev/video path."
    )


def _cannot_open(device: str | int | None, tried: list[str]) -> DeviceError:
    what = "The default camera" if device is None else f"The camera {device!r}"
    message = (
        f"{what} cannot be opened (tried {', '.join(tried)}). {_found_text()} "
        "Check that it is plugged in and close other apps using the camera "
        "(video calls, browsers, OBS)."
    )
    if platform.system() == "Linux":
        message += (
            " On Linux your user must be in the 'video' group "
            "(sudo usermod -aG video $USER, then log in again)."
        )
    return DeviceError(message)


# -- OpenCV ------------------------------------------------------------------------------


def _try_open(
    target: Target, width: int = 0, height: int = 0, fps: int = 0
) -> tuple[Any, np.ndarray | None]:
    """An open capture and its first frame, or (None, None). Never raises."""
    is_device = isinstance(target, int) or str(target).startswith("/dev/")
    if isinstance(target, str) and not os.path.exists(target):
        return None, None  # spare OpenCV's warnings on stderr
    linux = platform.system() == "Linux"
    if isinstance(target, int) and linux and not os.path.exists(f"/dev/video{target}"):
        return None, None
    capture: Any = None
    try:
        api = cv2.CAP_V4L2 if is_device and platform.system() == "Linux" else cv2.CAP_ANY
        capture = cv2.VideoCapture(target, api)
        if not capture.isOpened():
            _release(capture)
            return None, None
        if is_device:
            _configure(capture, width, height, fps)
        image = _read(capture)
    except Exception as exc:
        log.debug("Opening %r failed: %s", target, exc)
        _release(capture)
        return None, None
    if image is None:
        _release(capture)
        return None, None
    return capture, image


def _configure(capture: Any, width: int, height: int, fps: int) -> None:
    for prop, value in (
        (cv2.CAP_PROP_FRAME_WIDTH, width),
        (cv2.CAP_PROP_FRAME_HEIGHT, height),
        (cv2.CAP_PROP_FPS, fps),
        (cv2.CAP_PROP_BUFFERSIZE, 1),  # keep latency low: no queue of stale frames
    ):
        if value > 0:
            capture.set(prop, value)


def _read(capture: Any) -> np.ndarray | None:
    """One frame from ``capture``; None on any failure."""
    try:
        ok, image = capture.read()
    except Exception as exc:
        log.debug("Reading a frame failed: %s", exc)
        return None
    if not ok or image is None or image.size == 0:
        return None
    return np.asarray(image)


def _release(capture: Any) -> None:
    if capture is None:
        return
    try:
        capture.release()
    except Exception:
        log.debug("Releasing a capture failed", exc_info=True)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or grey, or BGRA) as HxWx3 uint8 RGB."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
