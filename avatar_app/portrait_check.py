"""What the window shows when a photo is picked: the photo framed at the output size, its face,
and a plain note, or a ``PortraitError`` that says why the photo cannot be used."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_app.framing import frame_face
from avatar_app.pipeline.settings import Fit
from avatar_app.portrait_file import bundled_portrait_path, load_portrait


@dataclass(frozen=True)
class CheckedPortrait:
    path: Path
    framed: np.ndarray  # HxWx3 uint8 RGB at the output size: what neutral controls render
    face_box: tuple[float, float, float, float]  # left, top, right, bottom in ``framed``
    faces: int  # faces found in the photo; the largest is animated

    @property
    def note(self) -> str:
        if self.faces > 1:
            return f"{self.faces} faces in this photo: the largest one (boxed) is animated."
        return "Face found; this is how the camera will frame it."


def check_portrait(path: Path | None, size: tuple[int, int], fit: Fit) -> CheckedPortrait:
    """Load ``path`` (None: the bundled photo), find the faces, frame the largest."""
    from avatar_app.upright_face import find_face
    from engines.face.landmarker import FaceLandmarker

    source = path or bundled_portrait_path()
    photo = load_portrait(source)
    with FaceLandmarker() as landmarker:
        faces = len(landmarker.detect_all(photo))
        face = find_face(photo, landmarker)  # the largest, or PortraitError in plain words
    framed, landmarks = frame_face(photo, face, size, fit)
    return CheckedPortrait(source, framed, landmarks.box, faces)
