"""A photo that is not upright is named as such, not animated upside down without a word."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from avatar_app.upright_face import find_face, lean_degrees
from engines.errors import PortraitError
from engines.face.landmarker import FaceLandmarker


def test_an_upright_face_passes_without_a_word(
    astronaut: np.ndarray, landmarker: FaceLandmarker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        face = find_face(astronaut, landmarker)
    assert abs(lean_degrees(face)) < 10
    assert not caplog.records


def test_an_upside_down_photo_is_refused_with_what_to_do(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    with pytest.raises(PortraitError, match="Rotate the photo by 180"):
        find_face(np.ascontiguousarray(astronaut[::-1, ::-1]), landmarker)


def test_a_face_on_its_side_is_animated_with_a_warning(
    astronaut: np.ndarray, landmarker: FaceLandmarker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        face = find_face(np.ascontiguousarray(np.rot90(astronaut)), landmarker)
    assert 60 < abs(lean_degrees(face)) < 120
    assert "on its side" in caplog.text
