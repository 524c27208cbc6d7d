"""Drives the real app window on an X display and screenshots it at each state.

``python -m tests.desktop_screens OUTDIR SPEECH.wav``, with DISPLAY set (a window manager and a
tray host running): idle, live, the no-virtual-camera error, the tray menu open. Screenshots are
of the whole screen (``import -window root``), as a user would see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
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

    def always() -> bool:
        return True

    # (wait until this holds, then settle this long, then do that); conditions keep a loaded
    # machine from shooting a state before the window reached it.
    steps: list[tuple[Callable[[], bool], float, Callable[[], None]]] = [
        (lambda: window.checked is not None, 1.0, shot("idle")),
        (always, 0.0, go_live),
        (lambda: window.live_button.text() == "Stop", 2.5, shot("live")),
        (always, 0.0, open_tray_menu),
        (lambda: tray.menu.isVisible(), 0.8, shot("tray-menu")),
        (always, 0.0, tray.menu.hide),
        (always, 0.0, stop),
        (lambda: window.session is None, 0.5, camera_missing),
        (lambda: window.problem.isVisible() and "Fix" in window.problem_text.text(), 0.5,
         shot("no-virtual-camera")),
        (always, 0.0, window.quit),
    ]  # fmt: skip
    deadline = time.monotonic() + 120

    def run_next() -> None:
        if not steps or time.monotonic() > deadline:
            app.quit()
            return
        condition, settle, action = steps[0]
        if not condition():
            QTimer.singleShot(100, run_next)
            return
        steps.pop(0)
        QTimer.singleShot(int(settle * 1000), lambda: (action(), QTimer.singleShot(100, run_next)))

    with registered("screens"):
        QTimer.singleShot(500, run_next)
        app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
