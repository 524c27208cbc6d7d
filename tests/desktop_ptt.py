"""The app window live with push-to-talk on F9 while an xterm has the keyboard focus; F9 is
pressed and released through XTest (xdotool). Prints JSON: the mouth's opening before, while
and after the key is held, and what the window says about the hotkey's reach.

``python -m tests.desktop_ptt SPEECH.wav``, with DISPLAY set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from tests.fake_camera import registered


def main(speech: Path) -> int:
    from avatar_app.app_settings import AppSettings
    from ui.app import app_icon
    from ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    settings = AppSettings(width=320, height=240, fps=25, push_to_talk="key", hotkey="F9")
    window = MainWindow(settings, app_icon())
    window.audio_file = speech
    window.camera_backend = "ptt"
    window.show()
    terminal = subprocess.Popen(["xterm", "-class", "PttTerm", "-e", "sleep", "120"])
    samples: dict[str, list[float]] = {"before": [], "held": [], "after": []}
    phase = {"name": ""}

    def xdotool(*args: str) -> str:
        done = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20)
        return done.stdout.strip()

    def focus_terminal() -> None:
        window_id = xdotool("search", "--sync", "--class", "PttTerm").splitlines()[0]
        xdotool("windowactivate", "--sync", window_id)
        xdotool("windowfocus", "--sync", window_id)
        phase["name"] = "before"

    def sample() -> None:
        if window.session is not None and phase["name"] in samples:
            samples[phase["name"]].append(window.session.latest_spoken.mouth.jaw_open)

    def press() -> None:
        xdotool("keydown", "F9")
        phase["name"] = "held"

    def release() -> None:
        xdotool("keyup", "F9")
        phase["name"] = "settle"

    def after() -> None:
        phase["name"] = "after"

    def finish() -> None:
        focused = xdotool("getwindowfocus")
        print(
            json.dumps(
                {
                    **{k: max(v, default=-1.0) for k, v in samples.items()},
                    "scope": window.talk.scope.text(),
                    "window_had_focus": focused == str(int(window.winId())),
                }
            )
        )
        window.quit()

    sampler = QTimer()
    sampler.timeout.connect(sample)
    sampler.start(20)
    with registered("ptt"):
        for at, step in (
            (0.5, window.go_live),
            (4.0, focus_terminal),
            (6.0, press),
            (9.0, release),
            (10.0, after),  # the gate eases shut within 0.1 s; a loaded machine gets 1 s
            (12.0, finish),
        ):
            QTimer.singleShot(int(at * 1000), step)
        app.exec()
    terminal.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
