"""The live session with real threads and real-time file sources; no sleeps as assertions."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy.io import wavfile

from avatar_app.pipeline import builder
from avatar_app.pipeline.frames import RenderedFrame
from avatar_app.pipeline.session import LiveSession
from avatar_app.pipeline.settings import PipelineSettings
from engines.speech.features import RATE
from tests.speech_audio import spoken

SIZE = (320, 240)
FPS = 25


class CollectingSink:
    """A sink that keeps what it is handed (on the render thread, so it must not block)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, tuple[int, ...], str]] = []
        self.stopped = False

    def submit(self, frame: RenderedFrame) -> None:
        self.frames.append((frame.shaped_ns, frame.rgb.shape, str(frame.rgb.dtype)))

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio, _ = spoken("Hello there! How are you today? I am fine, thank you.", pad=0.3)
    path = tmp_path_factory.mktemp("live") / "speech.wav"
    wavfile.write(path, RATE, (audio * 32767).astype(np.int16))
    return path


def _settings(wav: Path, **changes: Any) -> PipelineSettings:
    plain = PipelineSettings(
        size=SIZE, fps=FPS, engine="mesh", audio_file=wav, virtual_camera="off"
    )
    return replace(plain, **changes)


def _session(wav: Path, sinks: list | None = None) -> LiveSession:  # type: ignore[type-arg]
    return LiveSession(_settings(wav), sinks or [])


def _run_for(session: LiveSession, seconds: float, every: float = 0.02) -> list[float]:
    """Run the session for ``seconds`` of wall time; jaw_open sampled every ``every``."""
    jaw: list[float] = []
    session.start()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            jaw.append(session.latest_spoken.mouth.jaw_open)
            time.sleep(every)
    finally:
        session.stop()
    return jaw


def test_frames_of_the_right_size_at_the_right_rate(speech_wav: Path) -> None:
    sink = CollectingSink()
    session = _session(speech_wav, [sink])
    _run_for(session, 2.0)
    stats = session.snapshot()
    assert sink.stopped
    assert {shape for _, shape, _ in sink.frames} == {(SIZE[1], SIZE[0], 3)}
    assert {dtype for _, _, dtype in sink.frames} == {"uint8"}
    # Every tick is either delivered or counted as dropped; none vanish.
    ticks = stats.frames + stats.dropped
    assert abs(ticks - 2.0 * FPS) <= 0.25 * 2.0 * FPS
    assert stats.frames == len(sink.frames)
    assert stats.latency_ms_p50 is not None and stats.latency_ms_p50 > 0


def test_speech_opens_the_mouth_and_push_to_talk_keeps_it_shut(speech_wav: Path) -> None:
    talking = _run_for(_session(speech_wav), 3.0)
    muted_session = _session(speech_wav)
    muted_session.set_push_to_talk(False)
    muted = _run_for(muted_session, 3.0)
    assert max(talking) > 0.25
    assert max(muted) < 0.02


def test_a_failing_renderer_or_source_does_not_end_the_session(
    speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"render": 0, "read": 0}
    ready_portrait, audio_source = builder.ready_portrait, builder.audio_source

    def flaky_portrait(settings: PipelineSettings) -> object:
        ready = ready_portrait(settings)

        def render(controls: object) -> np.ndarray:
            calls["render"] += 1
            if calls["render"] % 5 == 0:
                raise RuntimeError("injected render fault")
            return ready.render(controls)  # type: ignore[arg-type]

        return dataclasses.replace(ready, _render=render)

    def flaky_audio(settings: PipelineSettings) -> object:
        source = audio_source(settings)
        read = source.read

        def flaky_read(timeout: float | None = None) -> object:
            calls["read"] += 1
            if calls["read"] % 40 == 0:
                raise OSError("injected source fault")
            return read(timeout)

        source.read = flaky_read  # type: ignore[method-assign]
        return source

    monkeypatch.setattr(builder, "ready_portrait", flaky_portrait)
    monkeypatch.setattr(builder, "audio_source", flaky_audio)
    sink = CollectingSink()
    session = _session(speech_wav, [sink])
    _run_for(session, 2.0)
    stats = session.snapshot()
    assert stats.render_errors >= 5
    assert stats.source_errors >= 1
    assert stats.frames == len(sink.frames) >= 0.7 * 2.0 * FPS


def _probe(path: Path) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_recording_has_both_streams_of_equal_length(speech_wav: Path, tmp_path: Path) -> None:
    session = _session(speech_wav)
    session.start()
    try:
        time.sleep(0.3)
        session.start_recording(tmp_path / "rec.mp4").result(timeout=10)
        time.sleep(2.5)
    finally:
        session.stop()
    streams = _probe(tmp_path / "rec.mp4")["streams"]
    assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]
    ends = {s["codec_type"]: float(s["start_time"]) + float(s["duration"]) for s in streams}
    assert ends["video"] > 2.0
    assert abs(ends["video"] - ends["audio"]) <= 1 / FPS + 0.03  # sound arrives in 10 ms chunks


def test_a_recording_cut_by_sigkill_still_plays(speech_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed.mp4"
    command = [
        sys.executable, "-m", "avatar_app.cli", "live", "--audio-file", str(speech_wav),
        "--vcam", "off", "--size", "320x240", "--fps", "25", "--record", str(out),
    ]  # fmt: skip
    log = tmp_path / "live.log"
    with log.open("w") as errors, subprocess.Popen(command, stderr=errors) as process:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not out.exists():
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        time.sleep(5.0)  # a few two-second fragments; then kill without warning
        assert process.poll() is None, log.read_text()
        os.kill(process.pid, signal.SIGKILL)
    streams = _probe(out)["streams"]
    assert {s["codec_name"] for s in streams} == {"h264", "aac"}


def test_stop_is_idempotent_and_joins_every_thread(speech_wav: Path) -> None:
    session = _session(speech_wav)
    before = threading.active_count()
    session.start()
    session.stop()
    session.stop()
    assert threading.active_count() <= before


class SlowCameraBackend:
    """A pyvirtualcam backend that records frames; ``delay`` makes every send stall."""

    delay = 0.0
    frames: ClassVar[list[np.ndarray]] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, **kw: object) -> None:
        self.shape, self.fourcc = (height, width, 3), fourcc

    def send(self, frame: np.ndarray) -> None:
        time.sleep(self.delay)
        SlowCameraBackend.frames.append(frame.reshape(self.shape).copy())

    def close(self) -> None:
        pass

    def device(self) -> str:
        return "slow-test-camera"

    def native_fourcc(self) -> int:
        return self.fourcc


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_the_virtual_camera_gets_frames_and_a_stalled_one_slows_nothing_else(
    speech_wav: Path, delay: float
) -> None:
    pyvirtualcam = pytest.importorskip("pyvirtualcam")
    SlowCameraBackend.delay, SlowCameraBackend.frames = delay, []
    pyvirtualcam.register_backend("avatar-slow-test", SlowCameraBackend)
    try:
        settings = _settings(
            speech_wav, virtual_camera="auto", virtual_camera_backend="avatar-slow-test"
        )
        session = LiveSession(settings)
        _run_for(session, 2.0)
    finally:
        del pyvirtualcam.camera.BACKENDS["avatar-slow-test"]
    stats = session.snapshot()
    assert stats.frames + stats.dropped >= 0.75 * 2.0 * FPS
    assert stats.frames >= 0.75 * 2.0 * FPS  # the render thread never waits for the camera
    frames = SlowCameraBackend.frames
    assert frames and {f.shape for f in frames} == {(SIZE[1], SIZE[0], 3)}
    if delay == 0.0:
        assert len(frames) >= 0.75 * 2.0 * FPS
    else:
        assert len(frames) <= 2.0 / delay + 2


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avatar_app.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_live_command_runs_headless_and_reports_status(speech_wav: Path) -> None:
    done = _cli(
        "live", "--audio-file", str(speech_wav), "--vcam", "off", "--size", "320x240",
        "--fps", "25", "--seconds", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "fps" in done.stderr and "mic->frame" in done.stderr


def test_live_command_explains_what_it_cannot_do(speech_wav: Path) -> None:
    webcam = _cli("live", "--audio-file", str(speech_wav), "--vcam", "off", "--webcam", "Logitech")
    assert webcam.returncode == 2 and "No camera named 'Logitech'" in webcam.stderr
    missing = _cli("live", "--audio-file", "/no/such.wav", "--vcam", "off", "--seconds", "1")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_devices_and_doctor_name_every_part() -> None:
    devices = _cli("devices")
    assert devices.returncode == 0, devices.stderr
    for section in ("Microphones", "Cameras", "Virtual-camera back ends"):
        assert section in devices.stdout
    doctor = _cli("doctor")
    assert "virtual camera" in doctor.stdout and "lipsync.onnx" in doctor.stdout


@pytest.mark.e2e
def test_speech_played_into_pulseaudio_opens_the_mouth_after_its_onset(speech_wav: Path) -> None:
    from avatar_app.live.audio_source import MicrophoneSource
    from tests.pulse import pulse_server, sounddevice_via

    with pulse_server() as server, sounddevice_via(server):
        settings = replace(_settings(speech_wav), audio_file=None, microphone="pulse")
        session = LiveSession(settings)
        session.start()
        try:
            mic = session._audio
            assert isinstance(mic, MicrophoneSource)
            _wait_until_steady(mic)
            quiet = [session.latest_spoken.mouth.jaw_open for _ in _ticks(1.0)]
            launched = time.monotonic()
            player = server.play_wav(speech_wav)
            heard = [(time.monotonic() - launched, session.latest_spoken.mouth.jaw_open)
                     for _ in _ticks(4.0)]  # fmt: skip
            player.communicate(timeout=10)
        finally:
            session.stop()
    assert max(quiet) < 0.02
    # The file starts with 0.3 s of silence: the mouth opens after that, while speech plays.
    opened = [t for t, jaw in heard if jaw > 0.2]
    assert opened, f"the mouth never opened (max jaw {max(j for _, j in heard):.2f})"
    assert opened[0] > 0.25


def _wait_until_steady(mic: object, seconds: float = 1.5, limit: float = 30.0) -> None:
    """PortAudio's ALSA "pulse" device sometimes stalls right after opening and the source
    reopens it; wait until it has run ``seconds`` without reopening."""
    deadline = time.monotonic() + limit
    steady_since, reconnects = time.monotonic(), -1
    while time.monotonic() < deadline:
        if mic.status != "running" or mic.reconnects != reconnects:  # type: ignore[attr-defined]
            steady_since, reconnects = time.monotonic(), mic.reconnects  # type: ignore[attr-defined]
        elif time.monotonic() - steady_since >= seconds:
            return
        time.sleep(0.05)
    pytest.fail("the microphone never ran steadily")


def _ticks(seconds: float, every: float = 0.02) -> Iterator[None]:
    """Yields every ``every`` seconds for ``seconds``: sampling points for the caller."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(every)
        yield None


def test_recording_stops_and_restarts_while_live_and_a_full_disk_only_ends_the_recording(
    speech_wav: Path, tmp_path: Path
) -> None:
    sink = CollectingSink()
    session = _session(speech_wav, [sink])
    session.start()
    try:
        session.start_recording(tmp_path / "first.mp4").result(timeout=10)
        time.sleep(1.0)
        session.stop_recording().result(timeout=10)
        # Every write to /dev/full fails with ENOSPC.
        session.start_recording(Path("/dev/full")).result(timeout=10)
        deadline = time.monotonic() + 20
        while session.snapshot().recording_error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        frames_then = len(sink.frames)
        time.sleep(0.5)
        error = session.snapshot().recording_error
    finally:
        session.stop()
    assert error is not None and "disk is full" in error
    assert len(sink.frames) > frames_then  # the camera went on
    assert {s["codec_type"] for s in _probe(tmp_path / "first.mp4")["streams"]} == {
        "video",
        "audio",
    }
