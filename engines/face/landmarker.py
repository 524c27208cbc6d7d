"""Landmarks on a still image with mediapipe's FaceLandmarker (478 points, 52 blendshapes)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Iterator
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
SMALLEST_FACE_PX = 60
"""The smallest face (landmark box, pixels) the tiled search of a large photo looks for."""
LARGEST_TILED_SIDE = 6000
FEATURELESS_STD = 6.0
CONFIRM_CROP = 3.0
"""A face found in a tile is looked for again in a square this many face sizes wide."""
TILE_PX = 384
TILE_OVERLAP_PX = 112
TILE_FACE_RATIO = 7.5
"""The detector finds a face down to about 1/8 of its picture (measured: 60 px in 384 and 40
px in 320 found, 40 px in 384 and 60 px in 512 missed); the smallest face sought is 1/7.5."""


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
        copy. If that finds nothing, the image is searched again in overlapping tiles, coarse
        to fine (see ``_detect_tiled``), down to faces of about ``SMALLEST_FACE_PX``: the
        detector sees each picture at 128 px, so a small face in a large photo (a group or
        half-body shot) is only found in a tile a few times its size.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        height, width = rgb.shape[:2]
        longer = max(height, width)
        image = rgb if longer <= DETECT_MAX_SIDE else _downscaled(rgb, DETECT_MAX_SIDE / longer)
        faces = self._detect(image, full_size=(width, height))
        if faces or longer <= TILE_PX:
            return faces
        return self._detect_tiled(rgb)

    def _detect_tiled(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        """Faces found in ``TILE_PX`` tiles of ever finer copies of ``rgb``, largest first.

        Each level doubles the scale of the one before (its faces are smaller), up to the
        scale at which a ``SMALLEST_FACE_PX`` face is 1/``TILE_FACE_RATIO`` of a tile; the
        search stops at the first level that finds a face, since coarser levels find the
        larger faces. Tiles overlap by more than a face at that level, so every face lies
        whole in one. Featureless tiles (sky, a wall) are skipped.
        """
        height, width = rgb.shape[:2]
        # Beyond 24 MP the smallest face sought grows with the photo, bounding the work.
        finest = min(
            1.0,
            TILE_PX / (TILE_FACE_RATIO * SMALLEST_FACE_PX),
            LARGEST_TILED_SIDE / max(height, width),
        )
        # The pyramid, finest first, each level half the one before (fast exact halving).
        levels = [rgb if finest == 1.0 else _resized_linear(rgb, finest)]
        while max(levels[-1].shape[:2]) / 2 > TILE_PX:
            levels.append(cv2.pyrDown(levels[-1]))
        for image in reversed(levels):
            scale = image.shape[1] / width
            found = _distinct(
                face.scaled(1.0 / scale, (x / scale, y / scale))
                for x, y, tile in _tiles(image, TILE_PX, TILE_OVERLAP_PX)
                if not _featureless(tile)
                for face in self._detect(tile, full_size=(tile.shape[1], tile.shape[0]))
            )
            faces = [f for f in (self._confirmed(rgb, face) for face in found) if f is not None]
            if faces:
                log.debug("Found %d face(s) in tiles at scale %.3f", len(faces), scale)
                return faces
        return []

    def _confirmed(self, rgb: np.ndarray, face: FaceLandmarks) -> FaceLandmarks | None:
        """The face found again in a close-up around it (landmarks from the close-up, in
        ``rgb``'s pixels), or None: a tile's detection can be a pattern that only looks
        like a face at that one framing."""
        x0, y0, x1, y1 = face.box
        half = CONFIRM_CROP * face.size / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = max(0, round(cx - half)), max(0, round(cy - half))
        right = min(rgb.shape[1], round(cx + half))
        bottom = min(rgb.shape[0], round(cy + half))
        crop = rgb[top:bottom, left:right]
        longer = max(crop.shape[:2])
        image = crop if longer <= TILE_PX else _downscaled(crop, TILE_PX / longer)
        again = [
            f.scaled(1.0, (left, top))
            for f in self._detect(image, full_size=(crop.shape[1], crop.shape[0]))
        ]
        same = [f for f in again if _overlap(f.box, face.box) >= 0.5]
        return max(same, key=lambda f: f.size) if same else None

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
    face = faces[0]
    if len(faces) > 1:
        x0, y0, x1, y1 = face.box
        log.warning(
            "The photo shows %d faces; animating the largest one (%.0f px tall, centred at "
            "x=%.0f, y=%.0f).",
            len(faces),
            face.size,
            (x0 + x1) / 2,
            (y0 + y1) / 2,
        )
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


def _tiles(image: np.ndarray, size: int, overlap: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """(x, y, tile) covering ``image`` with square tiles of ``size`` overlapping by ``overlap``."""
    height, width = image.shape[:2]
    stride = size - overlap

    def starts(length: int) -> list[int]:
        if length <= size:
            return [0]
        count = -(-(length - size) // stride) + 1
        return [round(i * (length - size) / (count - 1)) for i in range(count)]

    for y in starts(height):
        for x in starts(width):
            yield x, y, image[y : y + size, x : x + size]


def _featureless(tile: np.ndarray) -> bool:
    """Whether a tile is too plain to hold a face (checked on every 8th pixel)."""
    return float(tile[::8, ::8].std()) < FEATURELESS_STD


def _distinct(faces: Iterable[FaceLandmarks]) -> list[FaceLandmarks]:
    """Largest first, without the copies of one face found in overlapping tiles."""
    kept: list[FaceLandmarks] = []
    for face in sorted(faces, key=lambda f: f.size, reverse=True):
        if all(_overlap(face.box, other.box) < 0.3 for other in kept):
            kept.append(face)
    return kept


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box's area."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / max(smaller, 1e-9)


def _resized_linear(rgb: np.ndarray, factor: float) -> np.ndarray:
    """A slightly smaller copy (``factor`` near 1, where bilinear is as good as area
    averaging and five times faster on a large photo)."""
    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)


def _downscaled(rgb: np.ndarray, factor: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
