"""Reading portrait photos from disk: avatar_app.portrait_file, on files written at test time."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from avatar_app.portrait_file import MAX_SIDE, bundled_portrait_path, load_portrait
from engines.errors import PortraitError
from engines.face.landmarker import FaceLandmarker, detect_face
from engines.model_cache import sha256_of

ORIENTATION = 0x0112


def saved(tmp_path: Path, name: str, image: Image.Image, **options: Any) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def test_jpeg_loads_as_rgb8(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = saved(tmp_path, "a.jpg", Image.fromarray(astronaut), quality=95)
    rgb = load_portrait(path)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - astronaut).mean() < 3


def test_png_round_trips_exactly(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = saved(tmp_path, "a.png", Image.fromarray(astronaut))
    assert (load_portrait(str(path)) == astronaut).all()


def test_grey_photo_still_shows_a_face(
    tmp_path: Path, astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    path = saved(tmp_path, "grey.png", Image.fromarray(astronaut).convert("L"))
    rgb = load_portrait(path)
    assert rgb.shape == (512, 512, 3)
    assert (rgb[:, :, 0] == rgb[:, :, 2]).all()
    detect_face(rgb, landmarker)


def test_rgba_transparent_background_becomes_grey(
    tmp_path: Path, astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:, :100, 3] = 0  # the left strip is transparent
    path = saved(tmp_path, "cutout.png", Image.fromarray(rgba))
    rgb = load_portrait(path)
    assert (rgb[:, :100] == 128).all()
    assert (rgb[:, 100:] == astronaut[:, 100:]).all()
    detect_face(rgb, landmarker)


def test_sixteen_bit_png_and_tiff(tmp_path: Path, astronaut: np.ndarray) -> None:
    grey8 = np.asarray(Image.fromarray(astronaut).convert("L"))
    grey16 = grey8.astype(np.uint16) * 257
    for name in ("deep.png", "deep.tif"):
        path = saved(tmp_path, name, Image.fromarray(grey16))
        with Image.open(path) as image:
            assert image.mode.startswith("I")
        rgb = load_portrait(path)
        assert (rgb[:, :, 1] == grey8).all(), name


def test_palette_and_cmyk(tmp_path: Path, astronaut: np.ndarray) -> None:
    palette = Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE)
    cmyk = Image.fromarray(astronaut).convert("CMYK")
    for path in (saved(tmp_path, "p.png", palette), saved(tmp_path, "c.jpg", cmyk)):
        rgb = load_portrait(path)
        assert rgb.shape == (512, 512, 3)
        assert np.abs(rgb.astype(int) - astronaut).mean() < 12, path.name


@pytest.mark.parametrize(("tag", "stored_rotation"), [(6, 90), (8, -90)])
def test_exif_orientation_is_applied(
    tmp_path: Path,
    astronaut: np.ndarray,
    landmarker: FaceLandmarker,
    tag: int,
    stored_rotation: int,
) -> None:
    """A camera stores the sensor image sideways plus a tag that says how to turn it."""
    sideways = Image.fromarray(astronaut[:, :400]).rotate(stored_rotation, expand=True)
    exif = Image.Exif()
    exif[ORIENTATION] = tag
    path = saved(tmp_path, "phone.jpg", sideways, quality=95, exif=exif)
    rgb = load_portrait(path)
    assert rgb.shape == (512, 400, 3)  # upright again: taller than wide
    assert np.abs(rgb.astype(int) - astronaut[:, :400]).mean() < 3
    face = detect_face(rgb, landmarker)
    eyes_y = face.points[[33, 263], 1].mean()
    chin_y = face.points[152, 1]
    assert eyes_y < chin_y


def test_huge_photo_is_downscaled(
    tmp_path: Path, astronaut: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    big = Image.fromarray(astronaut).resize((10000, 7500), Image.Resampling.BILINEAR)
    path = saved(tmp_path, "big.jpg", big, quality=90)
    with caplog.at_level(logging.INFO, logger="avatar_app.portrait_file"):
        rgb = load_portrait(path)
    assert rgb.shape == (3072, MAX_SIDE, 3)
    assert "downscaled" in caplog.text


def test_more_than_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    path = saved(tmp_path, "vast.png", Image.new("L", (12000, 9000)))
    with pytest.raises(PortraitError, match="megapixels") as info:
        load_portrait(path)
    assert "smaller copy" in str(info.value)


def test_truncated_jpeg(tmp_path: Path, astronaut: np.ndarray) -> None:
    whole = saved(tmp_path, "whole.jpg", Image.fromarray(astronaut), quality=95).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PortraitError, match="damaged or incomplete") as info:
        load_portrait(cut)
    assert "cut.jpg" in str(info.value) and "Copy it again" in str(info.value)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: eggs, milk\n")
    with pytest.raises(PortraitError, match="not a photo") as info:
        load_portrait(path)
    assert "notes.jpg" in str(info.value) and "JPEG or PNG" in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(PortraitError, match="empty") as info:
        load_portrait(path)
    assert "Copy the photo again" in str(info.value)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(PortraitError, match="No file at") as info:
        load_portrait(tmp_path / "gone.jpg")
    assert "pick the photo again" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(PortraitError, match="folder, not a photo"):
        load_portrait(tmp_path)


def test_bundled_portrait_is_the_public_domain_astronaut(
    astronaut: np.ndarray, landmarker: FaceLandmarker
) -> None:
    path = bundled_portrait_path()
    readme = (path.parent / "README.md").read_text()
    assert sha256_of(path) in readme
    assert "public domain" in readme.lower()
    rgb = load_portrait(path)
    assert np.abs(rgb.astype(int) - astronaut).mean() < 3
    detect_face(rgb, landmarker)


def test_missing_bundled_portrait_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVATAR_APP_RESOURCES", str(tmp_path))
    with pytest.raises(PortraitError, match="Reinstall"):
        bundled_portrait_path()
