"""Shared fixtures. Media are made at test time; the one real photo is skimage's astronaut."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from engines.face.landmarker import FaceLandmarker


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undo what a test's in-process ``avatar-app`` command did to the root logger: its
    handler writes to the ``sys.stderr`` of that test (a capture pytest closes afterwards), and
    left in place it turns later tests' log records into "Logging error" dumps on stderr."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        # Only plain stream handlers: pytest's own capture handlers come and go by themselves.
        if type(handler) is logging.StreamHandler and handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage.data.astronaut(): a 512x512 RGB uint8 public-domain portrait (read-only)."""
    from skimage import data

    image = data.astronaut()
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    """Grace Hopper's official US Navy portrait (public domain), as matplotlib ships it (and
    mediapipe requires matplotlib): a 512x600 closed-mouth face with glasses and a cap."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as opened:
        image = np.asarray(opened.convert("RGB"))
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def landmarker() -> Iterator[FaceLandmarker]:
    """One FaceLandmarker for the whole session (creating one takes about half a second)."""
    from engines.face.landmarker import FaceLandmarker

    with FaceLandmarker() as shared:
        yield shared


@pytest.fixture(scope="session")
def tiny_liveportrait_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of LivePortrait ONNX models: the real networks, shrunk, random weights."""
    pytest.importorskip("torch", reason="exporting the LivePortrait networks needs torch")
    from engines.liveportrait.export import export_onnx
    from engines.liveportrait.network_set import random_networks

    folder = tmp_path_factory.mktemp("liveportrait-onnx")
    export_onnx(random_networks(seed=1, tiny=True), folder, source="random tiny (tests)")
    return folder
