"""The desktop window (Qt offscreen): portraits, go live, steer, record, tray, push-to-talk,
settings. Sound comes from a file; the virtual camera is a registered test backend."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from engines.speech.features import RATE
from tests.fake_camera import CountingBackend, registered
from tests.speech_audio import spoken

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
QtCore = pytest.importorskip("PySide6.QtCore")
QtTest = pytest.importorskip("PySide6.QtTest")
pytest.importorskip("pytestqt")

from avatar_app.app_settings import AppSettings, load_settings, save_settings  # noqa: E402
from avatar_app.pipeline.session import State  # noqa: E402
from ui.app import app_icon  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.tray import Tray  # noqa: E402

BACKEND = "desktop-test"
Qt = QtCore.Qt


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("desktop")
    paths = {
        "speech": folder / "speech.wav",
        "other": folder / "other.wav",
        "astronaut": folder / "astronaut.png",
        "mirrored": folder / "mirrored.png",
        "blank": folder / "blank.png",
    }
    for key, text in (("speech", "Aah, I am talking on and on, all the time."), ("other", "Hi.")):
        audio, _ = spoken(text, pad=0.2)
        wavfile.write(paths[key], RATE, (audio * 32767).astype(np.int16))
    Image.fromarray(astronaut).save(paths["astronaut"])
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(paths["mirrored"])
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(paths["blank"])
    return paths


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AVATAR_APP_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture
def camera() -> Iterator[type[CountingBackend]]:
    with registered(BACKEND) as backend:
        yield backend


@pytest.fixture
def window(qtbot: object, config: Path, media: dict[str, Path], tmp_path: Path) -> MainWindow:
    settings = AppSettings(width=320, height=240, fps=25, recordings=str(tmp_path / "rec"))
    win = MainWindow(settings, app_icon())
    win.camera_backend = BACKEND
    qtbot.addWidget(win)  # type: ignore[attr-defined]
    yield win
    if win.session is not None:
        win.session.stop()


def _wait(qtbot: object, condition: Callable[[], bool], seconds: float = 20.0) -> None:
    qtbot.waitUntil(condition, timeout=int(seconds * 1000))  # type: ignore[attr-defined]


def _go_live(qtbot: object, window: MainWindow, audio: Path) -> None:
    window.audio_file = audio
    window.go_live()
    _wait(qtbot, lambda: window.live_button.text() == "Stop")
    assert window.session is not None and window.session.state is State.LIVE


def test_a_photo_is_checked_added_and_remembered_and_a_no_face_photo_is_refused(
    qtbot: object, window: MainWindow, media: dict[str, Path], config: Path
) -> None:
    window.show()
    _wait(qtbot, lambda: window.checked is not None)  # the remembered photo is shown first
    window.add_photo(media["blank"])
    _wait(qtbot, lambda: "was not added" in window.portrait_note.text())
    assert "No face" in window.portrait_note.text()
    assert window.gallery.count() == 1  # only the bundled portrait

    window.add_photo(media["mirrored"])
    _wait(qtbot, lambda: window.gallery.count() == 2)
    _wait(qtbot, lambda: window.checked is not None and window.checked.path == media["mirrored"])
    assert "Face found" in window.portrait_note.text()
    saved = load_settings()
    assert saved.portrait == str(media["mirrored"]) and saved.portraits == [str(media["mirrored"])]


def test_go_live_sends_what_the_preview_shows_and_steering_keeps_the_camera_open(
    qtbot: object, window: MainWindow, media: dict[str, Path], camera: type[CountingBackend]
) -> None:
    window.show()
    _go_live(qtbot, window, media["speech"])
    assert window.live_button.text() == "Stop" and "ON AIR" in window.on_air.text()
    _wait(qtbot, lambda: len(camera.frames) > 10)
    _wait(qtbot, lambda: not window.preview.pixmap().isNull())

    session = window.session
    assert session is not None
    window.add_photo(media["mirrored"])  # picking a new photo while live swaps it
    _wait(
        qtbot, lambda: session.portrait is not None and session.portrait.source == media["mirrored"]
    )
    window.mode_combo.setCurrentIndex(window.mode_combo.findData("hybrid"))
    window._on_mode_chosen()
    session.set_audio_file(media["other"]).result(timeout=30)
    frames_before = len(camera.frames)
    qtbot.wait(500)  # type: ignore[attr-defined]
    assert len(camera.frames) > frames_before + 5
    assert camera.opened == 1

    window.toggle_live()
    _wait(qtbot, lambda: window.session is None)
    assert camera.closed == 1 and window.live_button.text() == "Go live"


def test_record_writes_an_mp4_with_both_streams_and_says_where(
    qtbot: object, window: MainWindow, media: dict[str, Path], camera: type[CountingBackend]
) -> None:
    _go_live(qtbot, window, media["speech"])
    window.toggle_recording()
    qtbot.wait(1500)  # type: ignore[attr-defined]
    assert window.record_time.text().startswith("●")
    window.toggle_recording()
    path = window.recording_path
    assert path is not None
    _wait(qtbot, lambda: "Saved" in window.record_path.text())
    window.toggle_live()
    _wait(qtbot, lambda: window.session is None)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
    )
    kinds = {s["codec_type"] for s in json.loads(probe.stdout)["streams"]}
    assert kinds == {"video", "audio"}


def test_without_a_virtual_camera_the_window_says_why_and_offers_preview_only(
    qtbot: object, window: MainWindow, media: dict[str, Path]
) -> None:
    window.camera_backend = None  # this machine has no v4l2loopback device
    window.show()
    window.audio_file = media["speech"]
    window.go_live()
    _wait(qtbot, lambda: window.problem.isVisible())
    assert "virtual camera" in window.problem_title.text()
    assert window.preview_only_button.isVisible() and window.check_again_button.isVisible()
    _wait(
        qtbot,
        lambda: "modprobe" in window.problem_text.text() or "OBS" in window.problem_text.text(),
    )
    window.preview_only_button.click()
    _wait(qtbot, lambda: window.on_air.text() == "PREVIEW ONLY")
    assert window.session is not None and window.session.state is State.LIVE
    _wait(qtbot, lambda: not window.preview.pixmap().isNull())


def test_push_to_talk_by_the_configured_key_in_the_window(
    qtbot: object,
    window: MainWindow,
    media: dict[str, Path],
    camera: type[CountingBackend],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)  # no global hook: the window-focused key
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    window.settings.hotkey = "F9"
    window.talk.key_radio.setChecked(True)
    window.show()
    _go_live(qtbot, window, media["speech"])
    session = window.session
    assert session is not None
    assert window.talk.hotkey is None  # offscreen: no global hook, the window-focused path
    assert "this window has focus" in window.talk.scope.text()
    qtbot.wait(1500)  # type: ignore[attr-defined]
    assert session.latest_spoken.mouth.jaw_open < 0.02  # key not held: shut
    QtTest.QTest.keyPress(window, Qt.Key.Key_F9)
    _wait(qtbot, lambda: session.latest_spoken.mouth.jaw_open > 0.2, 6)
    QtTest.QTest.keyRelease(window, Qt.Key.Key_F9)
    qtbot.wait(400)  # type: ignore[attr-defined]
    after = []
    for _ in range(20):
        qtbot.wait(50)  # type: ignore[attr-defined]
        after.append(session.latest_spoken.mouth.jaw_open)
    assert max(after) < 0.02


def test_closing_while_live_keeps_it_running_in_the_tray_and_show_restores(
    qtbot: object, window: MainWindow, media: dict[str, Path], camera: type[CountingBackend]
) -> None:
    tray = Tray(window, app_icon(), app_icon())
    window.show()
    _go_live(qtbot, window, media["speech"])
    messages: list[str] = []
    tray.messageClicked.connect(lambda: None)
    tray.showMessage = lambda title, text, *a: messages.append(text)  # type: ignore[method-assign]
    window.close()
    assert not window.isVisible() and window.session is not None
    assert messages and "tray" in messages[0]
    frames = len(camera.frames)
    qtbot.wait(300)  # type: ignore[attr-defined]
    assert len(camera.frames) > frames  # still live
    tray.rebuild()
    texts = [a.text() for a in tray.menu.actions()]
    assert texts[0] == "avatar-app: live" and "Stop" in texts and "Show window" in texts
    tray.show_window()
    assert window.isVisible()


def test_settings_round_trip_and_a_broken_file_is_set_aside(config: Path) -> None:
    settings = AppSettings(microphone="Blue Yeti Analog Stereo", mode="hybrid", hotkey="F8")
    save_settings(settings)
    assert load_settings() == settings
    path = config / "settings.json"
    path.write_text("{ not json")
    assert load_settings() == AppSettings()
    assert not path.exists() and len(list(config.glob("settings.json.broken-*"))) == 1


def test_a_remembered_device_that_is_gone_shows_as_missing_and_the_default_is_used(
    qtbot: object, window: MainWindow, media: dict[str, Path], camera: type[CountingBackend]
) -> None:
    window.settings.microphone = "Gone Microphone"
    window._fill_devices()
    _wait(qtbot, lambda: window.mic_combo.currentText() == "Gone Microphone (missing)")
    _go_live(qtbot, window, media["speech"])
    assert window.session is not None and window.session.settings.microphone is None
    assert "not connected" in window.statusBar().currentMessage()
    assert window.settings.microphone == "Gone Microphone"  # used again once it is back


def test_the_voice_sync_switch_is_saved_and_reaches_the_next_session(
    qtbot: object, window: MainWindow, media: dict[str, Path], camera: type[CountingBackend]
) -> None:
    window.voice_sync.setChecked(True)
    window.voice_offset.setValue(-40)
    window.voice_gated.setChecked(False)
    saved = load_settings()
    assert (saved.voice_out, saved.voice_offset_ms, saved.voice_follows_gate) == (
        "auto",
        -40,
        False,
    )
    assert window.voice_offset_label.text() == "-40 ms"
    _go_live(qtbot, window, media["speech"])
    session = window.session
    assert session is not None
    assert session.settings.voice_out == "auto" and session.settings.voice_offset_ms == -40.0
    # Without a sound server to host "Avatar Microphone", the avatar still goes live and the
    # window is told why the voice is not synced; with one, the voice is delayed.
    _wait(
        qtbot, lambda: session.voice_problem != "" or session.snapshot().voice_delay_ms is not None
    )


def test_the_voice_settings_reach_a_live_session_at_once(
    qtbot: object, window: MainWindow, media: dict[str, Path], camera: type[CountingBackend]
) -> None:
    _go_live(qtbot, window, media["speech"])
    session = window.session
    assert session is not None and session.settings.voice_out == "off"
    window.voice_offset.setValue(30)
    window.voice_gated.setChecked(False)
    _wait(qtbot, lambda: session.settings.voice_offset_ms == 30.0)
    _wait(qtbot, lambda: session.settings.voice_follows_gate is False)
    window.voice_sync.setChecked(True)
    _wait(qtbot, lambda: session.settings.voice_out == "auto" or session.voice_problem != "")
    window.voice_sync.setChecked(False)
    _wait(qtbot, lambda: session.settings.voice_out == "off" and session.voice_problem == "")
    assert session.snapshot().frames > 0
