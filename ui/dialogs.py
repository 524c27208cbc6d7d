"""The About dialog and the dialog that reports an unexpected error."""

from __future__ import annotations

import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtWidgets import QMessageBox, QWidget

from avatar_app.app_settings import log_dir
from avatar_app.version import app_version
from engines.resources import resources_dir

LOG_FILE = "avatar-app.log"

MODELS = (
    ("Face landmarks", "face_landmarker.task", "Google MediaPipe, Apache-2.0"),
    ("Lip-sync", "lipsync.onnx", "our own, trained for avatar-app, MIT"),
    ("Demo portrait", "astronaut.jpg", "NASA photo of Eileen Collins, public domain"),
)


def about_text() -> str:
    lines = [
        f"<h3>avatar-app {app_version()}</h3>",
        "<p>One portrait photo becomes a live, talking webcam.</p>",
        f"<p>Python {platform.python_version()} · Qt for Python {pyside_version} · "
        f"{platform.system()} {platform.release()}</p>",
        "<p><b>Bundled models and media</b></p><ul>",
        *(f"<li>{what}: <code>{name}</code> ({licence})</li>" for what, name, licence in MODELS),
        "</ul>",
        f"<p>Licence texts and model cards: <code>{resources_dir()}</code></p>",
        f"<p>Log file: <code>{log_dir() / LOG_FILE}</code></p>",
    ]
    return "\n".join(lines)


def show_about(parent: QWidget | None) -> None:
    QMessageBox.about(parent, "About avatar-app", about_text())


def show_crash(parent: QWidget | None, summary: str, log_file: str) -> None:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle("avatar-app: unexpected error")
    box.setText("Something went wrong inside avatar-app. The camera keeps running if it can.")
    box.setInformativeText(f"{summary}\n\nThe details are in {log_file}.")
    box.exec()
