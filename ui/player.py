"""``avatar-app-window OUT.mp4``: a minimal window that plays a video in a loop (Esc closes).

Frames are decoded with PyAV on the GUI thread, one per timer tick at the file's frame rate;
enough for the demo's short clips.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from avatar_app.exit_codes import EXIT_USER_ERROR


class VideoLoop:
    """Decodes one file's video frames as HxWx3 uint8 RGB, starting over at the end."""

    def __init__(self, path: Path) -> None:
        try:
            self._container: Any = av.open(str(path))
        except (OSError, av.FFmpegError) as exc:
            raise ValueError(f"Cannot open the video {path} ({exc}). Check the path.") from exc
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{path} has no video stream. Choose an MP4 made by avatar-app.")
        self._stream = self._container.streams.video[0]
        rate = self._stream.average_rate or self._stream.guessed_rate or 25
        self.fps = float(rate)
        self._frames: Iterator[Any] = iter(())
        self._restart()

    def _restart(self) -> None:
        self._container.seek(0)
        self._frames = self._container.decode(self._stream)

    def next_frame(self) -> np.ndarray:
        for _attempt in range(2):
            frame = next(self._frames, None)
            if frame is not None:
                return np.asarray(frame.to_ndarray(format="rgb24"))
            self._restart()
        raise ValueError("The video has no frames.")

    def close(self) -> None:
        self._container.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="avatar-app-window", description="Play a video in a loop; Esc closes the window."
    )
    parser.add_argument("video", type=Path, help="the MP4 file to play")
    parser.add_argument(
        "--quit-after", type=float, metavar="SECONDS", help="close by itself (for checks)"
    )
    args = parser.parse_args(argv)
    try:
        video = VideoLoop(args.video)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        return _show(video, args.video.name, args.quit_after)
    finally:
        video.close()


def _show(video: VideoLoop, title: str, quit_after: float | None) -> int:
    # cv2 points Qt at its own Qt5 plugins; PySide6 must find its own.
    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    label = QLabel()
    label.setWindowTitle(f"{title} - avatar-app")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet("background: black")
    QShortcut(QKeySequence(Qt.Key.Key_Escape), label, label.close)

    def show_next() -> None:
        rgb = video.next_frame()
        height, width = rgb.shape[:2]
        image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
        label.setPixmap(QPixmap.fromImage(image.copy()))

    show_next()
    label.resize(label.pixmap().size())
    timer = QTimer(label)
    timer.timeout.connect(show_next)
    timer.start(max(1, round(1000 / video.fps)))
    if quit_after is not None:
        QTimer.singleShot(round(quit_after * 1000), label.close)
    label.show()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
