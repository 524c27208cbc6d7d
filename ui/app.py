"""``avatar-app`` with no command (on a desktop): the window, the tray, the crash handler."""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from avatar_app.app_settings import load_settings, log_dir
from engines.resources import resources_dir
from ui.dialogs import LOG_FILE, show_crash
from ui.main_window import MainWindow
from ui.tray import Tray

log = logging.getLogger(__name__)


class CrashReporter(QObject):
    """Uncaught exceptions, on any thread, go to the log file and to a dialog on the GUI thread."""

    crashed = Signal(str)

    def __init__(self, log_file: Path) -> None:
        super().__init__()
        self.log_file = log_file
        self.crashed.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        sys.excepthook = self._hook
        threading.excepthook = lambda args: self._hook(
            args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
        )

    def _hook(
        self, kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        log.error("Uncaught exception:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        self.crashed.emit(f"{kind.__name__}: {value}")

    def _show(self, summary: str) -> None:
        show_crash(QApplication.activeWindow(), summary, str(self.log_file))


def log_to_file() -> Path:
    """Also log to the platform's log folder (rotated, 3 x 1 MB); returns the file."""
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return path


def app_icon() -> QIcon:
    return QIcon(str(resources_dir() / "icons" / "avatar-app.svg"))


def run_app(start_in_tray: bool = False) -> int:
    """Open the window (or only the tray icon) and run until Quit."""
    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)  # OpenCV points Qt at its own plugins
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("avatar-app")
    app.setDesktopFileName("avatar-app")
    icon = app_icon()
    app.setWindowIcon(icon)
    reporter = CrashReporter(log_to_file())
    reporter.install()
    window, tray = open_main_window(icon)
    if start_in_tray and tray is not None:
        tray.showMessage("avatar-app", "Running in the tray. Open the menu to go live.")
    else:
        window.show()
    return int(app.exec())


def open_main_window(icon: QIcon) -> tuple[MainWindow, Tray | None]:
    """The window, and the tray icon where the desktop has a tray."""
    window = MainWindow(load_settings(), icon)
    if not QSystemTrayIcon.isSystemTrayAvailable():
        log.info("No system tray here: closing the window stops the avatar")
        window.quitting = True  # closing is quitting
        return window, None
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    idle = QIcon(icon.pixmap(64, 64, QIcon.Mode.Disabled))
    tray = Tray(window, icon, idle)
    tray.show()
    return window, tray
