"""Read a portrait photo from disk into an HxWx3 uint8 RGB array, whatever the file holds.

EXIF orientation is applied, any Pillow mode (16-bit, palette, CMYK, grey, alpha ...) becomes
8-bit RGB, and very large photos are downscaled to ``MAX_SIDE``. Every way a file can be
unusable ends in a PortraitError that names the file and says what to do.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from avatar_app.local_file import is_folder, is_regular, stat_or_none
from engines.errors import PortraitError
from engines.image import to_rgb8
from engines.resources import resources_dir

log = logging.getLogger(__name__)

MAX_PIXELS = 100_000_000
"""Largest photo accepted, in pixels (100 MP: beyond any camera phone, below a memory risk)."""
MAX_SIDE = 4096
"""Photos with a longer side above this are downscaled to it while loading."""
BUNDLED_PORTRAIT = "astronaut.jpg"

_PASS_THROUGH = {"L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_CONVERSIONS = {"1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA"}


def bundled_portrait_path() -> Path:
    """The demo portrait shipped in ``resources/portraits`` (public domain, see its README)."""
    path = resources_dir() / "portraits" / BUNDLED_PORTRAIT
    if not path.is_file():
        raise PortraitError(
            f"The demo photo {path} is missing. Reinstall avatar-app, or pick a portrait "
            "photo of your own."
        )
    return path


def load_portrait(path: str | os.PathLike[str]) -> np.ndarray:
    """The photo at ``path`` as an upright HxWx3 uint8 RGB array, at most MAX_SIDE px."""
    path = Path(path)
    _check_is_readable_file(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _open(path)
        with image:
            rgb = _decode(image, path)
    for warning in caught:
        log.info("While reading %s: %s", path, warning.message)
    return rgb


def check_portrait_file(path: str | os.PathLike[str]) -> None:
    """Fail fast, before any slow work, unless ``path`` is a file Pillow can open."""
    path = Path(path)
    _check_is_readable_file(path)
    _open(path).close()


def _check_is_readable_file(path: Path) -> None:
    info = stat_or_none(path)
    if info is None:
        raise PortraitError(f"No file at {path}. Check the path, or pick the photo again.")
    if is_folder(info):
        raise PortraitError(
            f"{path} is a folder, not a photo. Pick an image file (JPEG or PNG) inside it."
        )
    if not is_regular(info):
        raise PortraitError(
            f"{path} is not a regular file (a pipe or a device). Save the photo to a file "
            "first, and pick that."
        )
    if info.st_size == 0:
        raise PortraitError(
            f"The photo file {path} is empty (0 bytes); the copy or download probably failed. "
            "Copy the photo again, or pick another one."
        )


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _too_big(path) from exc
    except UnidentifiedImageError as exc:
        raise PortraitError(
            f"{path} is not a photo that can be read (it may be another kind of file, or an "
            "image format that is not supported). Pick a JPEG or PNG photo, or save this one "
            "as JPEG or PNG in an image editor."
        ) from exc
    except OSError as exc:
        raise PortraitError(
            f"The photo {path} cannot be opened ({exc.strerror or exc}). Check that you may "
            "read it, or copy it somewhere you can and pick the copy."
        ) from exc
    except Exception as exc:  # e.g. ValueError: a PNG text chunk that inflates too far
        raise PortraitError(
            f"{path} is not a usable image ({exc}). Open it in an image editor and save it "
            "as JPEG or PNG, or pick another photo."
        ) from exc


def _decode(image: Image.Image, path: Path) -> np.ndarray:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_big(path)
    if max(width, height) > MAX_SIDE:
        factor = MAX_SIDE / max(width, height)
        # JPEG only: decode at 1/2, 1/4 or 1/8 scale, still at least the final size.
        image.draft(image.mode, (math.ceil(width * factor), math.ceil(height * factor)))
    # A damaged file can fail inside any Pillow decoder with almost any exception type, so this
    # boundary with an untrusted file catches them all and names the file.
    try:
        upright = ImageOps.exif_transpose(image)
        native = _native_mode(upright)
        smaller = _downscaled(native, path)
        pixels = _pixel_array(smaller)
    except PortraitError:
        raise
    except Exception as exc:
        raise PortraitError(
            f"The photo {path} is damaged or incomplete ({exc}). Copy it again from where it "
            "came from, or open it in an image editor and save it as JPEG or PNG."
        ) from exc
    return to_rgb8(pixels)


def _native_mode(image: Image.Image) -> Image.Image:
    """``image`` in a mode whose pixels numpy and ``to_rgb8`` understand."""
    if image.mode in _PASS_THROUGH:
        return image
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.convert(_CONVERSIONS.get(image.mode, "RGB"))


def _downscaled(image: Image.Image, path: Path) -> Image.Image:
    width, height = image.size
    longer = max(width, height)
    if longer <= MAX_SIDE:
        return image
    size = (max(1, round(width * MAX_SIDE / longer)), max(1, round(height * MAX_SIDE / longer)))
    log.info("%s is %dx%d px; using a copy downscaled to %dx%d.", path, width, height, *size)
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _pixel_array(image: Image.Image) -> np.ndarray:
    """Pixels as uint8, uint16 or float in 0..1, ready for ``to_rgb8``."""
    pixels = np.asarray(image)
    if image.mode == "I":  # 32-bit integers, in practice 16-bit data
        return np.clip(pixels, 0, 65535).astype(np.uint16)
    if image.mode == "F":  # floats of any range: stretch what is there to 0..1
        low, high = float(pixels.min()), float(pixels.max())
        span = high - low if high > low else 1.0
        return ((pixels - low) / span).astype(np.float32)
    if pixels.dtype.kind == "u" and pixels.dtype.itemsize == 2:
        return pixels.astype(np.uint16)  # I;16B and friends arrive big-endian
    return pixels


def _too_big(path: Path) -> PortraitError:
    return PortraitError(
        f"The photo {path} has more than {MAX_PIXELS // 1_000_000} megapixels, more than "
        "avatar-app reads. Save a smaller copy (for example 4000 px on its longer side) and "
        "pick that."
    )
