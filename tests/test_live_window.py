"""The preview window: frames reach it, and holding Space is push-to-talk (Qt offscreen)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from engines.speech.features import RATE
from tests.speech_audio import spoken

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
QtCore = pytest.importorskip("PySide6.QtCore")
QtTest = pytest.importorskip("PySide6.QtTest")
QtWidgets = pytest.importorskip("PySide6.QtWidgets")


@pytest.fixture(scope="module")
def app() -> Iterator[object]:
    yield QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio, _ = spoken("Aah, I am talking and talking, on and on, all the time.", pad=0.2)
    path = tmp_path_factory.mktemp("window") / "speech.wav"
    wavfile.write(path, RATE, (audio * 32767).astype(np.int16))
    return path


def _process_until(app: object, done: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()  # type: ignore[attr-defined]
        if done():
            return True
        time.sleep(0.01)
    return False


def test_holding_space_lets_the_mouth_move_and_releasing_shuts_it(
    app: object, speech_wav: Path
) -> None:
    from ui.live_window import open_preview

    window, session = open_preview(
        ["--audio-file", str(speech_wav), "--vcam", "off", "--size", "320x240", "--ptt", "key"]
    )
    try:
        window.show()
        assert _process_until(app, lambda: window.picture.pixmap().width() > 0, 10)
        jaw: list[float] = []

        def sample() -> bool:
            jaw.append(session.latest_spoken.mouth.jaw_open)
            return False

        _process_until(app, sample, 1.5)
        assert max(jaw) < 0.02  # key not held: mouth shut while the file speaks
        QtTest.QTest.keyPress(window, QtCore.Qt.Key.Key_Space)
        assert _process_until(app, lambda: session.latest_spoken.mouth.jaw_open > 0.2, 6)
        assert "talking" in window.status.text()
        QtTest.QTest.keyRelease(window, QtCore.Qt.Key.Key_Space)
        released = time.monotonic()
        _process_until(app, lambda: time.monotonic() - released > 0.3, 1)
        after: list[float] = []
        _process_until(app, lambda: after.append(session.latest_spoken.mouth.jaw_open) or False, 1)
        assert max(after) < 0.02
    finally:
        window.close()
    assert session.snapshot().frames > 0
