"""Landmarks on a still image with mediapipe's FaceLandmarker (478 points, 52 blendshapes)."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from engines.errors import PortraitError
from engines.face.mediapipe_task import close_at_exit, create_face_landmarker

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
    ``mediapipe_task.close_at_exit``).
    """

    def __init__(self, max_faces: int = 4) -> None:
        task = create_face_landmarker("IMAGE", max_faces)
        self._landmarker: Any = task
        self._finalizer = weakref.finalize(self, task.close)
        self._finalizer.atexit = False
        close_at_exit(self)

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
