"""``avatar-app-preview``: the live session in a window, with push-to-talk on a held key.

Takes the same options as ``avatar-app live``. With ``--ptt key`` the mouth moves only while
Space is held (the window must have focus; global hotkeys come with the full GUI); N makes
the user's current webcam face their neutral one; Esc closes. The render
thread hands frames to a ``FrameSlot`` that keeps only the newest and wakes the GUI thread
through a queued signal, so a slow window never holds the camera back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from avatar_app.cli import build_parser
from avatar_app.exit_codes import EXIT_USER_ERROR
from avatar_app.live.runner import settings_from_args, start_session, status_line
from avatar_app.pipeline.session import LiveSession
from engines.errors import AvatarError
from ui.bridge import FrameSlot, pixmap_of

PUSH_TO_TALK_KEY = Qt.Key.Key_Space


class LivePreview(QWidget):
    def __init__(self, session: LiveSession, slot: FrameSlot, key_to_talk: bool) -> None:
        super().__init__()
        self.session = session
        self.slot = slot
        self.key_to_talk = key_to_talk
        self.talking = not key_to_talk
        self.setWindowTitle("avatar-app live")
        self.picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        width, height = session.settings.size
        self.picture.setMinimumSize(min(width, 960), min(height, 540))
        self.status = QLabel()
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.status)
        slot.ready.connect(self._show_frame, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._show_status)
        self._timer.start(1000)
        self._show_status()

    def _show_frame(self) -> None:
        rgb = self.slot.take()
        if rgb is None:
            return
        pixmap = pixmap_of(rgb).scaled(
            self.picture.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.picture.setPixmap(pixmap)

    def _show_status(self) -> None:
        hint = ("talking" if self.talking else "hold Space to talk") if self.key_to_talk else ""
        self.status.setText(f"{status_line(self.session.snapshot()).strip()}   {hint}")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.key_to_talk and event.key() == PUSH_TO_TALK_KEY and not event.isAutoRepeat():
            self._set_talking(True)
        elif event.key() == Qt.Key.Key_N:
            self.session.set_neutral()  # "this is my resting face"
        elif event.key() == Qt.Key.Key_Escape:
            self.close()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if self.key_to_talk and event.key() == PUSH_TO_TALK_KEY and not event.isAutoRepeat():
            self._set_talking(False)
        else:
            super().keyReleaseEvent(event)

    def focusOutEvent(self, event: object) -> None:
        # A key released while another window had focus never reaches us: stop talking.
        if self.key_to_talk:
            self._set_talking(False)
        super().focusOutEvent(event)  # type: ignore[arg-type]

    def _set_talking(self, talking: bool) -> None:
        self.talking = talking
        self.session.set_push_to_talk(talking)
        self._show_status()

    def closeEvent(self, event: object) -> None:
        self._timer.stop()
        self.session.stop()
        super().closeEvent(event)  # type: ignore[arg-type]


def open_preview(argv: Sequence[str]) -> tuple[LivePreview, LiveSession]:
    """Parse ``live`` options, start the session and make its window (not shown yet)."""
    args = build_parser().parse_args(["live", *argv])
    slot = FrameSlot()
    session = LiveSession(settings_from_args(args), sinks=[slot])
    # The window listens before the session starts, so no frame's signal is lost.
    window = LivePreview(session, slot, key_to_talk=args.ptt == "key")
    start_session(args, session)
    return window, session


def main(argv: Sequence[str] | None = None) -> int:
    # OpenCV points Qt at its own plugins; Qt must use PySide6's.
    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    try:
        window, session = open_preview(sys.argv[1:] if argv is None else argv)
    except AvatarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    window.show()
    try:
        return int(app.exec())
    finally:
        session.stop()


if __name__ == "__main__":
    sys.exit(main())
