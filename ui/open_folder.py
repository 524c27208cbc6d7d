"""Shows a folder in the desktop's file manager."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from engines.face.mediapipe_task import environment_for_other_programs


def open_folder(folder: Path) -> None:
    """Open ``folder`` in the file manager. On Linux ``xdg-open`` is started with the user's own
    proxy settings: this process points them elsewhere to silence mediapipe's usage reports
    (``engines/face/mediapipe_task.py``), and a file manager or browser started from here would
    inherit that."""
    opener = shutil.which("xdg-open") if sys.platform.startswith("linux") else None
    if opener is None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        return
    subprocess.Popen(
        [opener, str(folder)],
        env=environment_for_other_programs(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
