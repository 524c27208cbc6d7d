"""``avatar-app sheet``: one labelled contact sheet of key poses, visemes and blinks.

Answers "how will my photo look?" before going live: every tile is one rendered frame, cropped
around the face and labelled with what it shows.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from avatar_app.atomic_output import atomic_output
from avatar_app.pipeline import builder
from avatar_app.pipeline.settings import PipelineSettings
from engines.controls import FaceControls

POSES: tuple[tuple[str, FaceControls], ...] = (
    ("photo", FaceControls()),
    ("jaw 0.3", FaceControls(jaw_open=0.3)),
    ("jaw 0.6 (aa)", FaceControls(jaw_open=0.6)),
    ("jaw 0.8", FaceControls(jaw_open=0.8)),
    ("wide (ee)", FaceControls(jaw_open=0.25, mouth_wide=0.8)),
    ("round (oo)", FaceControls(jaw_open=0.2, mouth_round=0.9)),
    ("oh", FaceControls(jaw_open=0.45, mouth_round=0.5)),
    ("press (m b p)", FaceControls(jaw_open=0.3, lip_press=1.0)),
    ("smile", FaceControls(smile=0.8)),
    ("blink", FaceControls(blink_left=1.0, blink_right=1.0)),
    ("wink (left)", FaceControls(blink_left=1.0)),
    ("brows up", FaceControls(brow_left=1.0, brow_right=1.0)),
    ("yaw -25", FaceControls(head_yaw=-25.0)),
    ("yaw +25", FaceControls(head_yaw=25.0)),
    ("pitch +15", FaceControls(head_pitch=15.0)),
    ("pitch -15", FaceControls(head_pitch=-15.0)),
    ("yaw 20, talking", FaceControls(head_yaw=20.0, jaw_open=0.5)),
    ("roll 15", FaceControls(head_roll=15.0)),
)
"""(label, controls) of each tile, in reading order."""
TILE = 256
COLUMNS = 6


def contact_sheet(settings: PipelineSettings) -> np.ndarray:
    """The sheet as an RGB uint8 image: ``POSES`` rendered, cropped to the face, labelled."""
    portrait = builder.ready_portrait(settings)
    box = _face_box(portrait.landmarks.box, portrait.size)
    tiles = [_tile(portrait.render(controls), box, label) for label, controls in POSES]
    while len(tiles) % COLUMNS:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i : i + COLUMNS]) for i in range(0, len(tiles), COLUMNS)]
    return np.vstack(rows)


def write_sheet(output: Path, settings: PipelineSettings) -> tuple[int, int]:
    """Render the sheet and save it (format from the file name); returns (width, height)."""
    from PIL import Image

    sheet = contact_sheet(settings)
    with atomic_output(output) as partial:
        Image.fromarray(sheet).save(partial)
    return sheet.shape[1], sheet.shape[0]


def _face_box(
    landmark_box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[int, int, int]:
    """(x0, y0, side) of a square around the face with some hair and neck, inside the frame."""
    x0, y0, x1, y1 = landmark_box
    side = round(min(max(x1 - x0, y1 - y0) * 1.6, *size))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(round(cx - side / 2), 0, size[0] - side))
    top = int(np.clip(round(cy - side / 2), 0, size[1] - side))
    return left, top, side


def _tile(frame: np.ndarray, box: tuple[int, int, int], label: str) -> np.ndarray:
    x, y, side = box
    crop = frame[y : y + side, x : x + side]
    interpolation = cv2.INTER_AREA if side > TILE else cv2.INTER_CUBIC
    tile = cv2.resize(crop, (TILE, TILE), interpolation=interpolation)
    band = np.full((24, TILE, 3), 255, np.uint8)
    cv2.putText(band, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([tile, band])
