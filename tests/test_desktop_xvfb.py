"""The real window on an X display (Xvfb): push-to-talk from another app's focus, and
screenshots of each state with a window manager and a tray host (saved in out/screenshots)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from engines.speech.features import RATE
from tests.speech_audio import spoken
from tests.xdisplay import x_display

pytest.importorskip("PySide6.QtWidgets")
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "out" / "screenshots"
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio, _ = spoken("Aah, I am talking and talking, on and on, all the time.", pad=0.2)
    path = tmp_path_factory.mktemp("xvfb") / "speech.wav"
    wavfile.write(path, RATE, (audio * 32767).astype(np.int16))
    return path


def _run(module: str, args: list[str], env: dict[str, str], tmp_path: Path) -> str:
    env = {**env, "AVATAR_APP_CONFIG_DIR": str(tmp_path / "config")}
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_global_push_to_talk_opens_the_mouth_while_another_window_has_focus(
    speech: Path, tmp_path: Path
) -> None:
    for tool in ("xdotool", "xterm"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian: xdotool xterm)")
    with x_display(desktop=True) as env:
        result = json.loads(_run("tests.desktop_ptt", [str(speech)], env, tmp_path))
    assert "everywhere" in result["scope"], result
    assert not result["window_had_focus"]
    assert result["before"] < 0.02, result  # key up: mouth shut while the file speaks
    assert result["held"] > 0.2, result
    assert result["after"] < 0.02, result


def test_screenshots_of_each_state(speech: Path, tmp_path: Path) -> None:
    if shutil.which("import") is None:
        pytest.skip("needs imagemagick's import")
    with x_display(desktop=True) as env:
        _run("tests.desktop_screens", [str(tmp_path), str(speech)], env, tmp_path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = {}
    for name in ("idle", "live", "tray-menu", "no-virtual-camera"):
        path = tmp_path / f"{name}.png"
        assert path.is_file(), name
        shutil.copy(path, SCREENSHOTS / path.name)
        shots[name] = np.asarray(Image.open(path).convert("RGB"), np.int16)
        assert shots[name].std() > 20, f"{name} is blank"
    # Live, the mouth moves and the badge turns red: the picture differs from idle.
    assert np.abs(shots["live"] - shots["idle"]).mean() > 0.5
    # The tray menu and the error panel each change the screen.
    assert np.abs(shots["tray-menu"] - shots["live"]).mean() > 0.2
    assert np.abs(shots["no-virtual-camera"] - shots["idle"]).mean() > 0.5
