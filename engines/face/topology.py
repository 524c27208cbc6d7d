"""Named landmark groups of mediapipe's 478-point face mesh and its triangulation.

Left and right are the subject's own: the subject's right eye is on the image's left.
Contours run from one corner to the other so the upper and lower halves pair up by position.
"""

from __future__ import annotations

from functools import cache

import numpy as np

LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291)

RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
RIGHT_IRIS_CENTER = 468
LEFT_IRIS_CENTER = 473

RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
FOREHEAD_TOP = 10
CHIN = 152
NOSE_TIP = 1


def eye_contour(upper: tuple[int, ...], lower: tuple[int, ...]) -> tuple[int, ...]:
    """A closed loop around the eye opening: upper lid, then lower lid backwards."""
    return upper + tuple(reversed(lower[1:-1]))


def inner_mouth_contour() -> tuple[int, ...]:
    return LIPS_UPPER_INNER + tuple(reversed(LIPS_LOWER_INNER[1:-1]))


@cache
def face_triangles() -> np.ndarray:
    """(852, 3) int32 triangles of mediapipe's face mesh; eyes and mouth are holes."""
    from mediapipe.tasks.python import vision

    edges = vision.FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION
    starts = np.array([e.start for e in edges], dtype=np.int32)
    return starts.reshape(-1, 3)
