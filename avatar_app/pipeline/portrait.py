"""A portrait framed at the output size and prepared once for one renderer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from engines.controls import FaceControls
from engines.face.landmarker import FaceLandmarks
from engines.renderer import Prepared, Renderer


@dataclass(frozen=True)
class ReadyPortrait:
    """A renderer bound to what its own ``prepare`` made of one framed photo.

    The prepared value stays inside the bound ``render``, so callers need not know its type.
    """

    engine: str
    frame: np.ndarray  # the framed photo: what neutral controls render
    landmarks: FaceLandmarks  # the face in ``frame``
    source: Path  # the photo file
    _render: Callable[[FaceControls], np.ndarray]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames it renders."""
        return self.frame.shape[1], self.frame.shape[0]

    def render(self, controls: FaceControls) -> np.ndarray:
        """One HxWx3 uint8 RGB frame for ``controls``."""
        return self._render(controls)


def prepare(
    renderer: Renderer[Prepared], frame: np.ndarray, landmarks: FaceLandmarks, source: Path
) -> ReadyPortrait:
    """Run ``renderer.prepare`` on a framed photo whose face is already known."""
    prepared = renderer.prepare(frame, landmarks)
    return ReadyPortrait(
        renderer.name, frame, landmarks, source, partial(renderer.render, prepared)
    )
