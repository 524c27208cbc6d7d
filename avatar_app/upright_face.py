"""The face of a portrait, with a word when the photo is not upright.

A photo turned upside down without an EXIF tag shows no face to the landmarker at all, and one
on its side is found but would be animated lying down. Neither costs anything for an upright
photo: the upside-down search runs only when no face, or a leaning one, was found.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from engines.errors import PortraitError
from engines.face.landmarker import FaceLandmarker, FaceLandmarks, detect_face

log = logging.getLogger(__name__)

SIDEWAYS_DEGREES = 50.0
"""A face whose eyes-to-mouth line leans more than this from straight down is on its side."""
UPRIGHT_DEGREES = 25.0
"""A face leaning less than this is taken as upright; more, and an upside-down photo is checked."""
_EYE_CORNERS = (33, 263)  # mediapipe face mesh: outer corners of the eyes
_UPPER_LIP = 13


def find_face(photo: np.ndarray, landmarker: FaceLandmarker | None = None) -> FaceLandmarks:
    """The largest face in ``photo``, as ``detect_face``; PortraitError says when to rotate."""
    if landmarker is None:
        with FaceLandmarker() as own:
            return find_face(photo, own)
    try:
        face = detect_face(photo, landmarker)
    except PortraitError as no_face:
        if landmarker.detect_all(_turned(photo)):
            raise _upside_down() from no_face
        raise
    lean = lean_degrees(face)
    if abs(lean) > UPRIGHT_DEGREES and _upright_when_turned(photo, face, landmarker):
        raise _upside_down()
    if abs(lean) > SIDEWAYS_DEGREES:
        turn = "upside down" if abs(lean) > 135 else "on its side"
        log.warning(
            "The face in this photo looks %s (turned %.0f degrees); it will be animated that "
            "way. Rotate the photo so the face is upright for a better result.",
            turn,
            lean,
        )
    return face


def _turned(photo: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(photo[::-1, ::-1])


def _upright_when_turned(
    photo: np.ndarray, face: FaceLandmarks, landmarker: FaceLandmarker
) -> bool:
    """Whether turning the photo shows a larger, upright face: the one found was a misreading.

    On an upside-down photo the landmarker may fit a leaning face to the upturned features.
    """
    turned = landmarker.detect_all(_turned(photo))
    return (
        bool(turned)
        and abs(lean_degrees(turned[0])) < UPRIGHT_DEGREES
        and (turned[0].size >= face.size)
    )


def _upside_down() -> PortraitError:
    return PortraitError(
        "The face in this photo is upside down. Rotate the photo by 180 degrees in an image "
        "editor, save it, and pick it again."
    )


def lean_degrees(face: FaceLandmarks) -> float:
    """How far the face is turned in the picture: 0 upright, +-90 on its side, 180 upside down."""
    eyes = face.points[list(_EYE_CORNERS), :2].mean(axis=0)
    down = face.points[_UPPER_LIP, :2] - eyes  # from the eyes towards the mouth
    return math.degrees(math.atan2(-float(down[0]), float(down[1])))
