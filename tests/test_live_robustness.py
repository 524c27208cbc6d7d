"""Small parts of a robust live session, without devices: the sound timeline after an outage or a
burst, the native-message diversion, the recorder's sound conversion, the status line."""

from __future__ import annotations

import ctypes
import dataclasses
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from avatar_app.live import native_noise
from avatar_app.live.recorder import RecorderSink
from avatar_app.live.runner import status_line
from avatar_app.pipeline.frames import AudioChunk, RenderedFrame
from avatar_app.pipeline.session import LiveStats
from avatar_app.pipeline.stages import SoundTimeline, SpeechStage
from engines.motion.talking import TalkingMotion
from engines.speech.features import RATE
from engines.speech.stream import SpeechMotion

CHUNK = RATE // 100  # 10 ms
CHUNK_NS = 10_000_000
FPS = 25


def _timeline() -> SoundTimeline:
    return SoundTimeline(SpeechStage(SpeechMotion(FPS), TalkingMotion(FPS)))


def _feed(timeline: SoundTimeline, start_ns: int, chunks: int) -> list[tuple[int, int]]:
    """Feed ``chunks`` 10 ms chunks captured from ``start_ns``; (newest capture, heard) per
    frame completed."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(chunks):
        pts = start_ns + i * CHUNK_NS
        samples = rng.normal(0, 0.1, CHUNK).astype(np.float32)
        for frame in timeline.chunk(AudioChunk(samples, RATE, pts)):
            assert frame.heard_ns is not None
            rows.append((pts + CHUNK_NS, frame.heard_ns))
    return rows


@pytest.mark.parametrize("shift_ms", [-25, -3, 3, 15, 400])
def test_after_an_outage_or_a_burst_frames_carry_the_capture_time_of_their_sound(
    shift_ms: int,
) -> None:
    """The stream resumes ``shift_ms`` off the timeline's own count (a reopened device's new
    clock; negative: sound overlapping what was covered). The capture time a frame carries is
    that of sound it was shaped by, never later than the newest sound, and as fresh as
    before: the latency measured is the latency there is."""
    timeline = _timeline()
    t0 = 10**12
    before = _feed(timeline, t0, 300)
    resumed = t0 + 300 * CHUNK_NS + shift_ms * 1_000_000
    after = _feed(timeline, resumed, 300)
    lags = [[newest - heard for newest, heard in rows[10:]] for rows in (before, after)]
    assert min(lags[1]) >= 0, "a frame claims sound newer than any that arrived"
    # Frames lie on a 40 ms grid of sound time: the lag repeats with that period.
    assert max(lags[1]) - max(lags[0]) <= 5_000_000, (shift_ms, max(lags[0]), max(lags[1]))


def test_a_burst_of_old_sound_is_cut_to_what_is_new() -> None:
    timeline = _timeline()
    t0 = 10**12
    _feed(timeline, t0, 200)
    position = timeline.position_ns
    assert position == t0 + 200 * CHUNK_NS
    # The same two seconds again (a queue drained twice): nothing is pushed twice.
    fed = timeline.fed
    _feed(timeline, t0, 200)
    assert timeline.fed == fed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="C stderr diversion is Linux")
def test_native_messages_go_to_the_debug_log_not_the_terminal(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    libc = ctypes.CDLL(None)
    libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    libc.fflush.argtypes = [ctypes.c_void_p]

    def native_print(text: bytes) -> None:
        stream = ctypes.c_void_p.in_dll(libc, "stderr").value
        libc.fputs(text, stream)
        libc.fflush(stream)

    caplog.set_level("DEBUG", logger="avatar_app.live.native_noise")
    native_noise.hold()
    native_noise.hold()  # two microphones
    native_print(b"ALSA lib pcm.c:1: noise while held\n")
    native_noise.release()
    native_print(b"ALSA lib pcm.c:2: still held once\n")
    print("python's own stderr is untouched", file=sys.stderr)
    native_noise.release()
    native_noise.release()  # one too many does nothing
    native_print(b"after release\n")
    deadline = time.monotonic() + 5  # the pipe is read on its own thread
    while "still held once" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    err = capfd.readouterr().err
    assert "noise while held" not in err and "still held once" not in err
    assert "python's own stderr is untouched" in err and "after release" in err
    assert "native: ALSA lib pcm.c:1: noise while held" in caplog.text


def _frame(index: int) -> RenderedFrame:
    due = index * 1_000_000_000 // FPS
    return RenderedFrame(np.zeros((64, 64, 3), np.uint8), due, shows_ns=due - 80_000_000)


def test_the_recorder_keeps_the_sources_rate_and_converts_other_sound(tmp_path: Path) -> None:
    """48 kHz stereo as it came; a stretch of 16 kHz mono (a device reopened otherwise) is
    converted, and the sound stays as long as the video."""
    out = tmp_path / "r.mp4"
    recorder = RecorderSink(out, 64, 64, FPS, 0, audio_rate=48000, audio_channels=2)
    for i in range(50):  # two seconds
        recorder.submit(_frame(i))
        for j in range(4):
            pts = i * 40_000_000 + j * 10_000_000
            if i < 25:
                chunk = AudioChunk(np.full((480, 2), 0.25, np.float32), 48000, pts)
            else:
                chunk = AudioChunk(np.full(160, 0.5, np.float32), 16000, pts)
            recorder.submit_audio(chunk)
    recorder.stop()
    assert recorder.error is None and recorder.dropped == 0
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.channels) == (48000, 2)
        sound = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    assert abs(sound.shape[1] - 2 * 48000) <= 1024
    assert sound.shape[0] == 2
    assert abs(float(np.median(sound[:, 48000 // 4 : 48000 // 2])) - 0.25) < 0.05
    assert abs(float(np.median(sound[:, -48000 // 2 : -48000 // 4])) - 0.5) < 0.05


def _stats(**changes: object) -> LiveStats:
    plain = LiveStats(
        seconds=10.0, frames=250, fps=25.0, dropped=0, dropped_percent=0.0, render_errors=0,
        source_errors=0, latency_ms_p50=60.0, latency_ms_p95=80.0, latency_ms_max=90.0,
        picture_delay_ms_p50=110.0, voice_delay_ms=None, webcam_latency_ms_p50=None,
        webcam_latency_ms_p95=None, longest_gap_ms=40.0, cpu_percent_of_all_cores=30.0,
        rss_mb=300.0, microphone="running", recording=None, recording_error=None,
    )  # fmt: skip
    return dataclasses.replace(plain, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("microphone", "said"),
    [
        ("running", None),
        ("reconnecting", "MICROPHONE DOWN (reconnecting)"),
        ("silent", "microphone silent (muted?)"),
    ],
)
def test_the_status_line_says_when_the_microphone_is_down_or_silent(
    microphone: str, said: str | None
) -> None:
    line = status_line(_stats(microphone=microphone))
    if said is None:
        assert "microphone" not in line.lower().replace("mic->frame", "")
    else:
        assert said in line
