"""A live recording shows the mouth in step with its sound, as an offline render of it does.

The same speech is rendered offline (``render_talking``: sound and frames on one file clock,
so the only lag is the lip-sync model's own) and live from a file with a recording. In both
MP4s the mouth opening is re-detected on every frame (mediapipe landmarks: inner-lip gap over
face height) and cross-correlated with the sound's loudness per frame; the live recording's
best lag must be within one frame of the offline one's. Before the recorder placed the sound
by the picture delay, the live lag was 3 frames (110-125 ms) more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from avatar_app.audio_file import load_audio
from avatar_app.offline.talk import render_talking
from avatar_app.pipeline.session import LiveSession
from avatar_app.pipeline.settings import PipelineSettings
from engines.face.landmarker import FaceLandmarker
from engines.speech.features import RATE
from tests.face_metrics import best_lag, mouth_and_loudness
from tests.speech_audio import spoken

pytestmark = pytest.mark.slow

FPS = 25
SIZE = (384, 384)


@pytest.fixture(scope="module")
def landmarker() -> Iterator[FaceLandmarker]:
    with FaceLandmarker(max_faces=1) as found:
        yield found


def test_a_live_recording_has_the_mouth_in_step_with_its_sound(
    tmp_path: Path, landmarker: FaceLandmarker
) -> None:
    audio, _ = spoken("Hello there! How are you today? I am fine, thank you.", pad=0.5)
    wav = tmp_path / "speech.wav"
    wavfile.write(wav, RATE, (audio * 32767).astype(np.int16))
    settings = PipelineSettings(size=SIZE, fps=FPS, engine="mesh")

    offline = tmp_path / "offline.mp4"
    render_talking(load_audio(wav), offline, settings)
    offline_lag = best_lag(*mouth_and_loudness(offline, landmarker, FPS))

    live = tmp_path / "live.mp4"
    session = LiveSession(PipelineSettings(
        size=SIZE, fps=FPS, engine="mesh", audio_file=wav, virtual_camera="off"
    ))  # fmt: skip
    session.start()
    try:
        session.start_recording(live).result(timeout=10)
        time.sleep(2.5 * len(audio) / RATE)  # the file loops: more than two utterances
        stats = session.snapshot()
    finally:
        session.stop()
    live_lag = best_lag(*mouth_and_loudness(live, landmarker, FPS))
    print(f"mouth after sound: offline {offline_lag} frames, live recording {live_lag}; {stats}")
    assert abs(live_lag - offline_lag) <= 1, (offline_lag, live_lag)
