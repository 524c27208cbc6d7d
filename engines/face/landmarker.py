"""Landmarks on a still image with mediapipe's FaceLandmarker (478 points, 52 blendshapes)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from engines.errors import PortraitError
from engines.face.model_file import face_landmarker_path

log = logging.getLogger(__name__)

N_LANDMARKS = 478


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
    """A mediapipe FaceLandmarker in IMAGE mode; use as a context manager or call ``close``."""

    def __init__(self, max_faces: int = 4) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=max_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def detect_all(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        """Every face found in an HxWx3 uint8 RGB image, largest first."""
        import mediapipe as mp

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        height, width = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect(image)
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
        if self._landmarker is not None:
            self._landmarker.close()
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
    """The largest face in a portrait; raises PortraitError when there is none."""
    if landmarker is None:
        with FaceLandmarker() as own:
            return detect_face(rgb, own)
    faces = landmarker.detect_all(rgb)
    if not faces:
        raise PortraitError(
            "No face was found in the photo. Use a photo where one face looks toward the camera, "
            "well lit and not covered."
        )
    if len(faces) > 1:
        log.warning("The photo shows %d faces; animating the largest one.", len(faces))
    return faces[0]
