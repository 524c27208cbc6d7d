"""``avatar-app render`` closed loop: speech in, MP4 out, the mouth re-detected on every frame."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.io import wavfile

from avatar_app.audio_file import load_audio
from avatar_app.offline.talk import render_talking
from avatar_app.pipeline.settings import PipelineSettings
from engines.face.landmarker import FaceLandmarker
from engines.speech.features import RATE
from tests.face_metrics import face_height, inner_lip_gap, mouth_width
from tests.speech_audio import envelope, phone_openness, spoken

FPS = 25
TEXT = "Hello, how are you today? I am fine, thanks. Shall we go for a walk?"


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list]:
    folder = tmp_path_factory.mktemp("talk")
    audio, phones = spoken(TEXT)
    wav = folder / "speech.wav"
    wavfile.write(wav, RATE, (audio * 32767).astype(np.int16))
    video = folder / "talk.mp4"
    render_talking(load_audio(wav), video, settings=PipelineSettings(size=(384, 384), fps=FPS))
    return video, audio, phones


def _mouth_openings(video: Path, landmarker: FaceLandmarker) -> np.ndarray:
    """Inner-lip gap over face height on each decoded frame."""
    openings = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            face = landmarker.detect_all(frame.to_ndarray(format="rgb24"))[0]
            openings.append(inner_lip_gap(face) / face_height(face))
    return np.array(openings)


def _probe(video: Path) -> dict:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(video)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_mp4_has_video_and_sound_of_equal_length(talk: tuple[Path, np.ndarray, list]) -> None:
    video, audio, _ = talk
    streams = _probe(video)["streams"]
    assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]
    # Where each stream ends: AAC's priming makes the sound start before 0.
    ends = {s["codec_type"]: float(s["start_time"]) + float(s["duration"]) for s in streams}
    assert abs(ends["video"] - ends["audio"]) <= 1 / FPS
    assert abs(ends["audio"] - len(audio) / RATE) <= 1e-3


def test_redetected_mouth_follows_the_speech(
    talk: tuple[Path, np.ndarray, list], landmarker: FaceLandmarker
) -> None:
    video, audio, phones = talk
    opening = _mouth_openings(video, landmarker)
    times = np.arange(len(opening)) / FPS
    loudness = envelope(audio, times)
    assert np.corrcoef(opening, loudness)[0, 1] >= 0.6
    assert np.corrcoef(opening, phone_openness(phones, times))[0, 1] >= 0.6
    # The picture is in sync with the sound: the best lag is within one frame.
    lags = range(-6, 7)
    scores = [np.corrcoef(np.roll(opening, -lag)[6:-6], loudness[6:-6])[0, 1] for lag in lags]
    assert abs(list(lags)[int(np.argmax(scores))]) <= 1
    # At rest (the photo's own mouth) before the speech starts and after it ends.
    rest = opening[0]
    quiet = (times < 0.3) | (times > times[-1] - 0.2)
    assert np.abs(opening[quiet] - rest).max() < 0.15 * (opening.max() - rest)


def _render_and_measure(
    text: str, folder: Path, landmarker: FaceLandmarker
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """Render ``text`` spoken slowly; per frame: lip gap and mouth width over face height."""
    audio, phones = spoken(text, rate_wpm=120)
    wav = folder / "speech.wav"
    wavfile.write(wav, RATE, (audio * 32767).astype(np.int16))
    video = folder / "talk.mp4"
    render_talking(load_audio(wav), video, settings=PipelineSettings(size=(384, 384), fps=FPS))
    gaps, widths = [], []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            face = landmarker.detect_all(frame.to_ndarray(format="rgb24"))[0]
            gaps.append(inner_lip_gap(face) / face_height(face))
            widths.append(mouth_width(face) / face_height(face))
    return np.array(gaps), np.array(widths), phones


def test_redetected_lips_close_on_m_and_p(tmp_path: Path, landmarker: FaceLandmarker) -> None:
    gaps, _, phones = _render_and_measure("mama papa, mama papa.", tmp_path, landmarker)
    rest = gaps[0]  # the photo's own mouth: lips apart over the teeth
    bilabial_frames = [round((t + 0.03) * FPS) for t, p in phones if p in ("M", "P")]
    closed = [gaps[max(0, i - 1) : i + 2].min() for i in bilabial_frames]
    assert sum(gap < 0.5 * rest for gap in closed) >= 6  # of the 8 bilabials
    assert gaps.max() > 2 * rest  # and the vowels between them open the mouth


def test_redetected_lips_round_on_oo(tmp_path: Path, landmarker: FaceLandmarker) -> None:
    _, widths, phones = _render_and_measure("who woo, who woo.", tmp_path, landmarker)
    rest = widths[0]
    rounded = [round((t + 0.05) * FPS) for t, p in phones if p == "UW"]
    assert min(widths[i] for i in rounded) < 0.9 * rest


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avatar_app.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_render_command_says_text(tmp_path: Path) -> None:
    pytest.importorskip("espeakng_loader", reason="espeak-ng is not installed")
    out = tmp_path / "say.mp4"
    result = _run_cli("render", "--say", "Hi there.", "--size", "256", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "Wrote" in result.stderr
    assert {s["codec_name"] for s in _probe(out)["streams"]} == {"h264", "aac"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing.wav", "does not exist"),
        (lambda folder: _write(folder / "photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64)), "sound"),
        (lambda folder: _write(folder / "empty.wav", b""), "empty"),
    ],
)
def test_render_command_explains_bad_audio(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    result = _run_cli("render", "--audio", str(path), "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert message in result.stderr.lower()
    assert not (tmp_path / "out.mp4").exists()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
