"""Audio sources: a file played in real time, and a microphone (a private PulseAudio server's
null-sink monitor, recorded through PortAudio's ALSA ``pulse`` device)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from avatar_app.audio_file import load_audio
from avatar_app.live.audio_source import (
    AudioChunk,
    FileAudioSource,
    MicrophoneSource,
    StreamingResampler,
    _ChunkQueue,
    list_microphones,
)
from engines.errors import DeviceError
from tests.pulse import pulse_server, sounddevice_via

RATE = 16000


def _write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    wavfile.write(path, rate, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return path


def _read_chunks(source: FileAudioSource | MicrophoneSource, count: int) -> list[AudioChunk]:
    chunks: list[AudioChunk] = []
    while len(chunks) < count:
        chunk = source.read(timeout=5.0)
        assert chunk is not None, f"no chunk within 5 s after {len(chunks)} chunks"
        chunks.append(chunk)
    return chunks


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def ramp_wav(tmp_path: Path) -> Path:
    """0.3 s of a slow ramp: every sample differs, so order and gaps show."""
    return _write_wav(tmp_path / "ramp.wav", np.linspace(-0.9, 0.9, int(0.3 * RATE)))


def test_file_source_delivers_real_time_chunks_in_order(ramp_wav: Path) -> None:
    expected = load_audio(ramp_wav).mono(RATE)
    source = FileAudioSource(ramp_wav, chunk_ms=10)
    source.start()
    try:
        chunks = _read_chunks(source, 30)
        read_at = time.monotonic_ns()
        assert source.wait_finished(5.0)
        assert source.status == "stopped"
        assert source.read(timeout=0.05) is None
    finally:
        source.stop()
    assert all(c.rate == RATE and c.samples.dtype == np.float32 for c in chunks)
    assert [len(c.samples) for c in chunks] == [160] * 30
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), expected)
    spacing = np.diff([c.pts_ns for c in chunks])
    assert np.all(spacing == 10_000_000)
    # A chunk is released only once its last sample has "played".
    assert read_at >= chunks[-1].pts_ns + 10_000_000
    assert source.dropped == 0


def test_file_source_loops_and_stops_cleanly(tmp_path: Path) -> None:
    wav = _write_wav(tmp_path / "short.wav", np.linspace(-0.5, 0.5, 2500))  # not whole chunks
    expected = load_audio(wav).mono(RATE)
    source = FileAudioSource(wav, chunk_ms=10, loop=True)
    source.start()
    source.start()  # a second start does nothing
    chunks = _read_chunks(source, 40)
    assert source.status == "running"
    source.stop()
    source.stop()
    assert source.status == "stopped"
    played = np.concatenate([c.samples for c in chunks])
    np.testing.assert_array_equal(played, np.resize(expected, len(played)))
    assert np.all(np.diff([c.pts_ns for c in chunks]) == 10_000_000)


def test_file_source_calls_on_chunk_on_its_thread(ramp_wav: Path) -> None:
    got: list[tuple[AudioChunk, str]] = []
    done = threading.Event()

    def on_chunk(chunk: AudioChunk) -> None:
        got.append((chunk, threading.current_thread().name))
        if len(got) == 5:
            done.set()

    with FileAudioSource(ramp_wav, chunk_ms=20, on_chunk=on_chunk) as source:
        assert done.wait(5.0)
        assert source.read(timeout=0.01) is None  # nothing goes to the queue
    assert all(len(chunk.samples) == 320 for chunk, _ in got)
    assert {name for _, name in got} == {"file-audio"}


def test_chunk_queue_drops_the_oldest() -> None:
    queue = _ChunkQueue(3)
    chunks = [AudioChunk(np.zeros(4, np.float32), RATE, pts) for pts in range(5)]
    for chunk in chunks:
        queue.put(chunk)
    assert queue.dropped == 2
    assert [queue.get(0).pts_ns for _ in range(3)] == [2, 3, 4]  # type: ignore[union-attr]
    assert queue.get(0.01) is None


@pytest.mark.parametrize("rate_in", [48000, 44100, 8000])
def test_streaming_resampler_equals_resample_poly(rate_in: int) -> None:
    rng = np.random.default_rng(0)
    signal = rng.uniform(-0.5, 0.5, rate_in).astype(np.float32)
    resampler = StreamingResampler(rate_in, RATE)
    out, position = [], 0
    while position < len(signal):
        size = int(rng.integers(1, 1000))
        out.append(resampler.process(signal[position : position + size]))
        position += size
    streamed = np.concatenate(out)
    whole = resample_poly(signal.astype(np.float64), resampler.up, resampler.down)
    assert len(whole) - 30 <= len(streamed) <= len(whole)  # the filter's delay is still inside
    np.testing.assert_allclose(streamed, whole[: len(streamed)], atol=1e-6)


def test_microphone_callback_cuts_resampled_blocks_into_chunks() -> None:
    """The PortAudio callback path without a device: 48 kHz stereo blocks of odd sizes."""

    class TimeInfo:
        def __init__(self, now: float) -> None:
            self.currentTime = now
            self.inputBufferAdcTime = now - 0.02

    mic = MicrophoneSource(device="none needed", chunk_ms=10)
    mic._device_rate = 48000
    mic._resampler = StreamingResampler(48000, RATE)
    mic._clock.rate = 48000
    rng = np.random.default_rng(1)
    stream_time = 100.0
    for _ in range(60):
        frames = int(rng.integers(100, 900))
        stream_time += frames / 48000
        block = rng.uniform(-0.5, 0.5, (frames, 2)).astype(np.float32)
        mic._callback(block, frames, TimeInfo(stream_time), None)
    chunks: list[AudioChunk] = []
    while (chunk := mic.read(timeout=0)) is not None:
        chunks.append(chunk)
    assert len(chunks) > 10
    assert all(len(c.samples) == 160 and c.rate == RATE for c in chunks)
    assert np.all(np.diff([c.pts_ns for c in chunks]) > 0)
    assert chunks[-1].pts_ns < time.monotonic_ns()


def test_unknown_microphone_names_the_available_ones() -> None:
    if shutil.which("pulseaudio"):
        with pulse_server() as server, sounddevice_via(server):
            # The server's source by its description; PortAudio's "pulse" only leads to it.
            assert list_microphones() == ["Monitor of Null Output"]
            with pytest.raises(
                DeviceError,
                match=r"No microphone named 'No Such Mic'. Available inputs: 'Monitor of Null",
            ):
                MicrophoneSource(device="No Such Mic").start()
        return
    try:
        names = list_microphones()
    except DeviceError as exc:
        pytest.skip(f"no PortAudio: {exc}")
    if not names:
        pytest.skip("PortAudio lists no input devices and PulseAudio is not installed")
    with pytest.raises(DeviceError, match="Available inputs: " + repr(names[0])):
        MicrophoneSource(device="No Such Mic").start()


def _burst_wav(path: Path) -> Path:
    """0.5 s of silence, 1 s of a 300 Hz tone, 0.5 s of silence."""
    t = np.arange(RATE) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 300 * t)
    silence = np.zeros(RATE // 2)
    return _write_wav(path, np.concatenate([silence, tone, silence]))


def _rms(chunk: AudioChunk) -> float:
    return float(np.sqrt(np.mean(chunk.samples.astype(np.float64) ** 2)))


@pytest.mark.e2e
def test_microphone_records_what_pulseaudio_plays(tmp_path: Path) -> None:
    wav = _burst_wav(tmp_path / "burst.wav")
    with (
        pulse_server() as server,
        sounddevice_via(server),
        MicrophoneSource(device="pulse", chunk_ms=10) as mic,
    ):
        assert mic.device_name == "pulse"
        _read_chunks(mic, 50)  # recording for 0.5 s
        reconnects = mic.reconnects
        launched = time.monotonic_ns()
        player = server.play_wav(wav)
        chunks = _read_chunks(mic, 300)  # 3 s
        _, err = player.communicate(timeout=10)
        assert player.returncode == 0, err
        assert mic.status == "running"
        # PortAudio's ALSA "pulse" device now and then stalls at first; the mic then reopens
        # itself (about 1.5 s without sound), and part of the tone may be missing.
        stalled = mic.reconnects != reconnects
    assert all(len(c.samples) == 160 and c.rate == RATE for c in chunks)
    pts = np.array([c.pts_ns for c in chunks])
    assert np.all(np.diff(pts) > 0)
    levels = np.array([_rms(c) for c in chunks])
    loud = np.flatnonzero(levels > 0.1)
    assert len(loud) > 0, f"the tone was not recorded (max RMS {levels.max():.3f})"
    first = loud[0]
    assert pts[first] > launched  # captured after it was played
    # Silence before the onset; the chunk just before the first loud one may hold its start.
    assert levels[: max(first - 1, 1)].max() < 0.01
    assert 0.3 < np.median(levels[loud]) < 0.4  # a 0.5 sine has an RMS of 0.354
    if not stalled:
        assert 80 <= len(loud) <= 110  # about 1 s of 10 ms chunks, counted in samples


@pytest.mark.e2e
def test_microphone_reconnects_when_the_sound_server_restarts() -> None:
    with pulse_server() as server, sounddevice_via(server):
        got: list[AudioChunk] = []
        mic = MicrophoneSource(device="pulse", on_chunk=got.append)
        mic.start()
        try:
            _wait_for(lambda: len(got) >= 10, 5, "the first chunks")
            server.kill()
            _wait_for(lambda: mic.status == "reconnecting", 5, "status 'reconnecting'")
            server.start()
            _wait_for(lambda: mic.status == "running", 20, "status 'running' again")
            resumed = len(got)
            _wait_for(lambda: len(got) >= resumed + 10, 5, "chunks after reconnecting")
            assert mic.reconnects >= 1
        finally:
            mic.stop()
    assert mic.status == "stopped"
    assert np.all(np.diff([c.pts_ns for c in got]) > 0)
