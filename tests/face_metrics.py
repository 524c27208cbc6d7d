"""Measurements on re-detected landmarks, used by the closed-loop renderer tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from engines.face import topology as topo
from engines.face.landmarker import FaceLandmarker, FaceLandmarks


def face_height(face: FaceLandmarks) -> float:
    return float(np.linalg.norm(face.points[topo.CHIN, :2] - face.points[topo.FOREHEAD_TOP, :2]))


def inner_lip_gap(face: FaceLandmarks) -> float:
    """Distance between the middle inner lip points, in pixels."""
    return float(np.linalg.norm(face.points[14, :2] - face.points[13, :2]))


def eye_aspect_ratio(face: FaceLandmarks, side: str) -> float:
    """Mean lid opening over eye width (Soukupova and Cech's EAR on mediapipe points)."""
    upper, lower = (
        (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER)
        if side == "left"
        else (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER)
    )
    p = face.points[:, :2]
    opening = np.linalg.norm(p[list(upper[2:-2])] - p[list(lower[2:-2])], axis=1).mean()
    return float(opening / np.linalg.norm(p[upper[0]] - p[upper[-1]]))


def head_angles(face: FaceLandmarks) -> np.ndarray:
    """(yaw, pitch, roll) in degrees in FaceControls' signs, from the transformation matrix.

    mediapipe's matrix gives yaw with our sign (nose toward the image right is +) and pitch and
    roll with the opposite sign; checked against the nose and eye-line geometry in the tests.
    """
    r = face.transform[:3, :3].astype(np.float64)
    yaw = np.degrees(np.arcsin(-r[2, 0]))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return np.array([yaw, -pitch, -roll])


def mouth_width(face: FaceLandmarks) -> float:
    p = face.points[:, :2]
    return float(np.linalg.norm(p[topo.MOUTH_CORNERS[0]] - p[topo.MOUTH_CORNERS[1]]))


def corner_lift(face: FaceLandmarks) -> float:
    """How far the mouth corners sit above the middle of the lips (pixels, + is up)."""
    p = face.points[:, :2]
    middle = (p[13] + p[14]) / 2
    return float(middle[1] - p[list(topo.MOUTH_CORNERS), 1].mean())


def brow_height(face: FaceLandmarks, side: str) -> float:
    brow, lid = (
        (topo.LEFT_BROW, topo.LEFT_EYE_UPPER)
        if side == "left"
        else (topo.RIGHT_BROW, topo.RIGHT_EYE_UPPER)
    )
    p = face.points[:, :2]
    return float(p[list(lid), 1].mean() - p[list(brow), 1].mean())


def iris_offset(face: FaceLandmarks, axis: int) -> float:
    """Iris centre relative to the eye corners' midpoint, both eyes averaged (pixels)."""
    p = face.points[:, :2]
    shifts = []
    for upper, iris in ((topo.RIGHT_EYE_UPPER, topo.RIGHT_IRIS_CENTER),
                        (topo.LEFT_EYE_UPPER, topo.LEFT_IRIS_CENTER)):  # fmt: skip
        shifts.append(p[iris, axis] - (p[upper[0], axis] + p[upper[-1], axis]) / 2)
    return float(np.mean(shifts))


def eye_distance(face: FaceLandmarks) -> float:
    p = face.points[:, :2]
    return float(np.linalg.norm(p[topo.RIGHT_IRIS_CENTER] - p[topo.LEFT_IRIS_CENTER]))


def mouth_interior(frame: np.ndarray, face: FaceLandmarks) -> dict[str, float]:
    """What fills the opening between the re-detected inner lips of a rendered ``frame``.

    Pixels are classed by colour: teeth (bright, nearly grey), tongue (pink: red well above
    green and blue, mid brightness) and throat (dark). Returns each class's share of the
    opening, the opening's area in pixels, ``lower_teeth``: the share of the mouth's middle
    half, column by column, that has teeth in the lowest third of the opening, and
    ``tongue_middle``: the tongue's share of the same columns between 30 % and 88 % of the
    opening's depth, away from the lips' own pink.
    """
    import cv2

    p = face.points[:, :2]
    upper = p[list(topo.LIPS_UPPER_INNER)]
    lower = p[list(topo.LIPS_LOWER_INNER)]
    polygon = np.vstack([upper, lower[::-1][1:-1]])
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8)).astype(bool)
    if not mask.any():  # lips together: nothing shows between them
        keys = ("teeth", "tongue", "dark", "lower_teeth", "tongue_middle")
        return {"area": 0.0} | dict.fromkeys(keys, 0.0)
    rgb = frame.astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mean = rgb.mean(axis=2)
    teeth = (mean > 150) & (np.ptp(rgb, axis=2) < 45)
    tongue = (r > g + 40) & (r > b + 30) & (r > 120) & (mean > 95) & ~teeth
    dark = mean < 75
    area = max(int(mask.sum()), 1)
    # Lowest third of the opening, column by column across the middle half.
    ys, xs = np.nonzero(mask)
    x0, x1 = np.percentile(xs, [25, 75])
    covered, columns, tongue_core, core = 0, 0, 0, 0
    for x in range(int(x0), int(x1) + 1):
        column = ys[xs == x]
        if len(column) < 3:
            continue
        columns += 1
        bottom, top = column.max(), column.min()
        band = np.arange(int(bottom - (bottom - top) / 3), bottom + 1)
        covered += bool(teeth[band, x].any())
        # Away from the lips: the middle of the opening, where the tongue shows.
        inner = np.arange(round(top + 0.3 * (bottom - top)), round(top + 0.88 * (bottom - top)))
        core += len(inner)
        tongue_core += int(tongue[inner, x].sum())
    return {
        "area": float(area),
        "teeth": float((teeth & mask).sum() / area),
        "tongue": float((tongue & mask).sum() / area),
        "dark": float((dark & mask).sum() / area),
        "lower_teeth": covered / max(columns, 1),
        "tongue_middle": tongue_core / max(core, 1),
    }


def mouth_opening(face: FaceLandmarks) -> float:
    """The inner-lip gap over the face height: how open the mouth is, whatever the size."""
    return inner_lip_gap(face) / face_height(face)


def best_lag(follower: np.ndarray, leader: np.ndarray, most: int = 8) -> int:
    """How many steps ``follower`` comes after ``leader`` (-most..most), by the best normalised
    cross-correlation; e.g. a re-detected mouth opening after its sound's loudness."""

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() + 1e-9)

    a, b = z(follower), z(leader)
    scores = {
        lag: float(
            np.mean(a[max(lag, 0) : len(a) + min(lag, 0)] * b[max(-lag, 0) : len(b) - max(lag, 0)])
        )
        for lag in range(-most, most + 1)
    }
    return max(scores, key=scores.__getitem__)


def mouth_and_loudness(
    video: Path, landmarker: FaceLandmarker, fps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the re-detected mouth opening and the sound's RMS over that frame's time."""
    openings = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            faces = landmarker.detect_all(frame.to_ndarray(format="rgb24"))
            openings.append(mouth_opening(faces[0]) if faces else 0.0)
    with av.open(str(video)) as container:
        parts = [f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    sound = np.concatenate(parts)
    per_frame = rate // fps
    count = min(len(openings), len(sound) // per_frame)
    loudness = np.sqrt(np.mean(np.square(sound[: count * per_frame].reshape(count, -1)), axis=1))
    return np.array(openings[:count]), loudness
