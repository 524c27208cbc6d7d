"""The one check every renderer makes on the photo it is given."""

from __future__ import annotations

import numpy as np

from engines.errors import PortraitError


def checked_portrait(portrait_rgb: np.ndarray) -> np.ndarray:
    """The photo as a contiguous HxWx3 uint8 RGB array; PortraitError for anything else."""
    portrait = np.ascontiguousarray(portrait_rgb)
    if portrait.ndim != 3 or portrait.shape[2] != 3 or portrait.dtype != np.uint8:
        raise PortraitError(
            f"Expected an RGB image (HxWx3 uint8), got {portrait.shape} {portrait.dtype}. "
            "Load photos with avatar_app.portrait_file.load_portrait."
        )
    return portrait
