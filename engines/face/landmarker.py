"""Landmarks on a still image with mediapipe's FaceLandmarker (478 points, 52 blendshapes)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from engines.errors import PortraitError
from engines.face.model_file import face_landmarker_path

log = logging.getLogger(__name__)

N_LANDMARKS = 478
DETECT_MAX_SIDE = 1024
"""Images with a longer side above this are analysed on a downscaled copy (faster, and the
detector sees the whole image at 128 px anyway)."""
MIN_FACE_PX = 48
"""A face whose landmark box is smaller than this, in the original image, is too small."""


@dataclass(frozen=True)
class FaceLandmarks:
    """One detected face, in the pixel coordinates of the analysed image.

    ``points``: (478, 3) float32; x, y in pixels; z in pixels on the x scale, smaller is nearer
    the camera. ``blendshapes``: (52,) float32 scores named by ``blendshape_names``.
    ``transform``: 4x4 facial transformation matrix (canonical face -> camera, cm).
    """

    points: np.ndarray
    blendshapes: np.ndarray
    blendshape_names: tuple[str, ...]
    transform: np.ndarray

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the landmarks."""
        xy = self.points[:, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def size(self) -> float:
        """Face size in pixels: the larger side of ``box``."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> FaceLandmarks:
        """The same face after the image was resized by ``factor`` then shifted by ``offset``."""
        points = self.points * np.float32(factor)
        points[:, 0] += offset[0]
        points[:, 1] += offset[1]
        return FaceLandmarks(points, self.blendshapes, self.blendshape_names, self.transform)

    def blendshape(self, name: str) -> float:
        return float(self.blendshapes[self.blendshape_names.index(name)])


class FaceLandmarker:
    """A mediapipe FaceLandmarker in IMAGE mode; use as a context manager or call ``close``.

    ``close`` is idempotent. A landmarker that is never closed is closed when it is garbage
    collected, or at interpreter exit while mediapipe's worker threads still run (see
    ``_close_open_landmarkers``).
    """

    def __init__(self, max_faces: int = 4) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=max_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with _quiet_native_stderr():
            task = vision.FaceLandmarker.create_from_options(options)
        self._landmarker: Any = task
        self._finalizer = weakref.finalize(self, task.close)
        self._finalizer.atexit = False
        _register_exit_hook()
        _open_landmarkers.add(self)

    def detect_all(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        """Every face found in an HxWx3 uint8 RGB image, largest first, in its pixels.

        An image whose longer side exceeds ``DETECT_MAX_SIDE`` is analysed on a downscaled
        copy; if that finds nothing the full-size image is tried too.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        height, width = rgb.shape[:2]
        attempts = [rgb]
        longer = max(height, width)
        if longer > DETECT_MAX_SIDE:
            attempts.insert(0, _downscaled(rgb, DETECT_MAX_SIDE / longer))
        for image in attempts:
            faces = self._detect(image, full_size=(width, height))
            if faces:
                return faces
        return []

    def _detect(self, image: np.ndarray, full_size: tuple[int, int]) -> list[FaceLandmarks]:
        """Faces in ``image``, with coordinates in an image of ``full_size`` (width, height).

        mediapipe's coordinates are fractions of the image size (z on the x scale), so they
        map to any resized copy of the same picture.
        """
        import mediapipe as mp

        if self._landmarker is None:
            raise RuntimeError("this FaceLandmarker is closed")
        width, height = full_size
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        result = self._landmarker.detect(frame)
        faces = []
        for i, marks in enumerate(result.face_landmarks):
            points = np.array([(p.x, p.y, p.z) for p in marks], dtype=np.float32)
            points *= np.array([width, height, width], dtype=np.float32)
            shapes = result.face_blendshapes[i] if result.face_blendshapes else []
            faces.append(
                FaceLandmarks(
                    points=points,
                    blendshapes=np.array([c.score for c in shapes], dtype=np.float32),
                    blendshape_names=tuple(c.category_name for c in shapes),
                    transform=np.array(result.facial_transformation_matrixes[i], np.float32),
                )
            )
        faces.sort(key=lambda f: f.size, reverse=True)
        return faces

    def close(self) -> None:
        self._finalizer()
        self._landmarker = None

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_open_landmarkers: weakref.WeakSet[FaceLandmarker] = weakref.WeakSet()
_exit_hook_registered = False


def _close_open_landmarkers() -> None:
    for landmarker in list(_open_landmarkers):
        landmarker.close()


def _register_exit_hook() -> None:
    """Close leftover landmarkers before the interpreter stops its worker threads.

    mediapipe runs every native call on a ThreadPoolExecutor thread, which concurrent.futures
    stops in threading's exit hooks; after that a task can no longer be closed and its
    ``__del__`` prints a TypeError while the interpreter tears down. A plain ``atexit`` hook
    runs too late, so this uses the hook list concurrent.futures itself uses (last registered
    runs first; mediapipe has imported concurrent.futures by the time this is called).
    """
    global _exit_hook_registered
    if _exit_hook_registered:
        return
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # not CPython >= 3.9: the best remaining option
        import atexit

        register = atexit.register
    register(_close_open_landmarkers)
    _exit_hook_registered = True


def detect_face(rgb: np.ndarray, landmarker: FaceLandmarker | None = None) -> FaceLandmarks:
    """The largest face in a portrait; raises PortraitError when there is none or it is tiny."""
    if landmarker is None:
        with FaceLandmarker() as own:
            return detect_face(rgb, own)
    faces = landmarker.detect_all(rgb)
    height, width = rgb.shape[:2]
    if not faces:
        raise PortraitError(_no_face_message(width, height))
    if len(faces) > 1:
        log.warning("The photo shows %d faces; animating the largest one.", len(faces))
    face = faces[0]
    if face.size < MIN_FACE_PX:
        raise PortraitError(
            f"The face in the photo is too small ({face.size:.0f} px tall; it needs at least "
            f"{MIN_FACE_PX} px). Use a closer or higher-resolution photo in which the face "
            "fills more of the frame."
        )
    return face


def _no_face_message(width: int, height: int) -> str:
    message = (
        "No face was found in the photo. Use a photo where one face looks toward the camera, "
        "well lit and not covered."
    )
    if max(width, height) < 4 * MIN_FACE_PX:
        message += (
            f" This photo is only {width}x{height} px; use a larger one "
            f"(at least {8 * MIN_FACE_PX} px on its longer side)."
        )
    return message


def _downscaled(rgb: np.ndarray, factor: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


# Routine absl/TFLite lines: "W0000 00:00:...", "I0000 ...", "INFO: Created TensorFlow Lite ...".
_NATIVE_NOISE = re.compile(r"^(?:[IW]\d{4} |INFO: |WARNING: Logging before InitGoogle)")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 while the block runs.

    mediapipe's C++ core logs through absl, which ignores ``GLOG_minloglevel`` and offers no
    switch from Python, and prints half a dozen info/warning lines whenever a landmarker is
    created. Those lines go to this module's debug log; any other line (an error, say) is
    written back to stderr. With debug logging enabled nothing is held back.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a windowed app): nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured = sink.read().decode(errors="replace")
    for line in captured.splitlines():
        if _NATIVE_NOISE.match(line):
            log.debug("mediapipe: %s", line)
        elif line.strip():
            print(line, file=sys.stderr)
