"""Draws the app icon (resources/icons/avatar-app.svg) as the Windows .ico and the macOS .icns
that packaging/avatar-app.spec gives the program: python packaging/make_icons.py [OUT_DIR]."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "avatar-app.svg"
SIZE = 1024


def render(size: int = SIZE) -> Image.Image:
    """The SVG drawn by Qt at ``size`` px, as an RGBA image."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(SVG)).render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(data.data()))).convert("RGBA")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    icon = render()
    icon.save(out / "avatar-app.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    icon.save(out / "avatar-app.icns")
    print(f"Wrote {out / 'avatar-app.ico'} and {out / 'avatar-app.icns'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "icons")
