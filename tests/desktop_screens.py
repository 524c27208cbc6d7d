"""Drives the real app window on an X display and screenshots it at each state.

``python -m tests.desktop_screens OUTDIR SPEECH.wav``, with DISPLAY set (a window manager and a
tray host running): idle, live, the no-virtual-camera error, the tray menu open. Screenshots are
of the whole screen (``import -window root``), as a user would see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)

from PySide6.QtCore import QPoint, QTimer
from PySide6.QtWidgets import QApplication

from tests.fake_camera import registered


def main(out: Path, speech: Path) -> int:
    from ui.app import app_icon, open_main_window

    app = QApplication(sys.argv[:1])
    window, tray = open_main_window(app_icon())
    if tray is None:
        print("no system tray on this display", file=sys.stderr)
        return 3
    window.audio_file = speech
    window.resize(1100, 720)
    window.show()

    def shot(name: str) -> Callable[[], None]:
        def take() -> None:
            app.processEvents()
            subprocess.run(["import", "-window", "root", str(out / f"{name}.png")], check=True)

        return take

    def go_live() -> None:
        window.camera_backend = "screens"
        window.go_live()

    def stop() -> None:
        window.stop_live()

    def camera_missing() -> None:
        import pyvirtualcam

        del pyvirtualcam.camera.BACKENDS["screens"]  # pyvirtualcam would fall back to it
        window.camera_backend = None
        window.go_live()

    def open_tray_menu() -> None:
        window.preview_only = False
        tray.menu.popup(QPoint(window.x() + window.width() - 260, 40))

    steps = [
        (2.5, shot("idle")),
        (0.2, go_live),
        (3.0, shot("live")),
        (0.2, open_tray_menu),
        (1.0, shot("tray-menu")),
        (0.2, lambda: tray.menu.hide()),
        (0.2, stop),
        (2.5, camera_missing),
        (4.0, shot("no-virtual-camera")),
        (0.5, window.quit),
    ]
    with registered("screens"):
        delay = 0.0
        for wait, step in steps:
            delay += wait
            QTimer.singleShot(int(delay * 1000), step)
        app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
