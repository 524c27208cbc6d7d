"""The microphone through a real sound server, as on a desktop.

A private PulseAudio server in user mode (``tests/pulse.py``) plays espeak speech into a null
sink whose monitor is the server's default source; PortAudio reaches it through ALSA's
``default`` and ``pulse`` devices. Covered: the default input with no name (every form
``sounddevice.default.device`` takes), named inputs, a missing name, and ``avatar-app live``
typed as a user would, without ``--mic``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import correlate

from avatar_app.live.audio_source import MicrophoneSource, list_microphones
from engines.errors import DeviceError
from tests.pulse import PulseServer, pulse_server, sounddevice_via
from tests.speech_audio import spoken

pytestmark = pytest.mark.e2e

RATE = 16000
ATTEMPTS = 3
"""ALSA's pulse plugin now and then stalls after a stream opens (the microphone then reopens
itself, losing about 1.5 s of sound); a recording during which that happened is taken again."""


@pytest.fixture(scope="module")
def server() -> Iterator[PulseServer]:
    """One private PulseAudio server for the module, with this process's PortAudio on it."""
    with pulse_server() as running, sounddevice_via(running):
        yield running


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Path]:
    """About 2.7 s of espeak speech with 0.5 s of silence each side: samples and a WAV."""
    samples, _ = spoken("Hello there, this sentence comes through the sound server.")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    wavfile.write(path, RATE, (samples * 32767).astype(np.int16))
    return samples, path


def _record(mic: MicrophoneSource, seconds: float) -> np.ndarray:
    chunks = []
    for _ in range(round(seconds * 1000 / mic.chunk_ms)):
        chunk = mic.read(timeout=5.0)
        assert chunk is not None, f"no sound from {mic.device_name!r} within 5 s"
        chunks.append(chunk.samples)
    return np.concatenate(chunks)


def _record_playing(
    server: PulseServer, mic: MicrophoneSource, speech: tuple[np.ndarray, Path]
) -> tuple[np.ndarray, np.ndarray]:
    """(0.5 s recorded before playing, what was recorded from the moment playing began)."""
    samples, wav = speech
    for _ in range(ATTEMPTS):
        while mic.read(timeout=0) is not None:  # what the queue holds is old
            pass
        before = _record(mic, 0.5)
        reconnects = mic.reconnects
        player = server.play_wav(wav)
        during = _record(mic, len(samples) / RATE + 1.5)
        _, err = player.communicate(timeout=10)
        assert player.returncode == 0, err
        if mic.reconnects == reconnects:
            return before, during
    pytest.fail(f"the microphone stalled while recording in each of {ATTEMPTS} attempts")


def _assert_heard(before: np.ndarray, during: np.ndarray, played: np.ndarray) -> None:
    """Silence before; then the whole utterance played, itself, at its own level."""
    assert np.abs(before).max() < 1e-3, "the null sink's monitor should be silent"
    # during[i + lag] is played[i]. The lag can be a few ms negative (the server mixes a new
    # stream into sound it had rendered ahead, which "before" ended in); harmless, as the file
    # starts with silence.
    full = correlate(during, played, mode="full")
    lag = int(np.argmax(np.abs(full))) - (len(played) - 1)
    start, end = max(0, -lag), min(len(played), len(during) - lag)
    heard, reference = during[start + lag : end + lag], played[start:end]
    voiced = np.abs(played) > 0.05  # where the speech is not silence
    assert not voiced[:start].any() and not voiced[end:].any(), "part of the speech is missing"
    loud = np.abs(reference) > 0.05
    assert np.sqrt(np.mean(heard[loud] ** 2)) > 0.05  # far above the silence before
    assert np.corrcoef(heard, reference)[0, 1] > 0.95  # the same sound, not noise
    assert 0.8 < np.std(heard) / np.std(reference) < 1.25


def test_the_default_input_records_the_speech(
    server: PulseServer, speech: tuple[np.ndarray, Path]
) -> None:
    with MicrophoneSource(device=None) as mic:
        assert mic.device_name == "default"  # PortAudio's default input
        before, during = _record_playing(server, mic, speech)
    _assert_heard(before, during, speech[0])


@pytest.mark.parametrize(
    ("name", "opened"),
    [
        ("pulse", "pulse"),  # PortAudio's name, whole
        ("DEFA", "default"),  # part of one, in any case
        ("Monitor of Null", "Monitor of Null Output"),  # the sound server's source
    ],
)
def test_a_named_input_records_the_speech(
    server: PulseServer, speech: tuple[np.ndarray, Path], name: str, opened: str
) -> None:
    with MicrophoneSource(device=name) as mic:
        assert mic.device_name == opened
        before, during = _record_playing(server, mic, speech)
    _assert_heard(before, during, speech[0])


@pytest.mark.parametrize(
    ("default", "opened"),
    [
        (None, "default"),  # PortAudio's own default input (the usual case)
        ((None, None), "default"),
        (0, "pulse"),  # an index for input and output
        ((0, 1), "pulse"),  # an (input, output) pair of indices
        ("Pulse", "pulse"),  # a device name
        (("pulse", "default"), "pulse"),  # an (input, output) pair of names
        (-1, "pulse"),  # PortAudio's "no device": the first input
        ("gone", "pulse"),  # a name no device has any more: the first input
    ],
)
def test_every_form_of_the_default_device_opens_an_input(
    server: PulseServer, default: object, opened: str
) -> None:
    import sounddevice as sd

    sd.default.device = default
    try:
        with MicrophoneSource(device=None) as mic:
            assert mic.device_name == opened
            assert len(_record(mic, 0.1)) == RATE // 10
    finally:
        sd.default.reset()


def _assert_lists_the_inputs(message: str) -> None:
    names = list_microphones()
    assert names, "the server's source, at least"
    listed = message.split("Available inputs: ", 1)[1]
    assert all(repr(name) in listed for name in names), (names, message)


def test_a_missing_input_lists_the_available_ones(server: PulseServer) -> None:
    mic = MicrophoneSource(device="no-such-mic")
    with pytest.raises(DeviceError) as caught:
        mic.start()
    message = str(caught.value)
    assert message.startswith("No microphone named 'no-such-mic'. Available inputs: ")
    _assert_lists_the_inputs(message)
    assert "Pick one of these" in message
    assert mic.status == "stopped"


def _avatar_app(server: PulseServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``avatar-app ARGS`` (the installed command) with PortAudio on the server."""
    command = Path(sys.executable).with_name("avatar-app")
    program = [str(command)] if command.is_file() else [sys.executable, "-m", "avatar_app.cli"]
    return subprocess.run(
        [*program, *args],
        env=server.client_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_live_without_mic_uses_the_default_input(server: PulseServer) -> None:
    done = _avatar_app(server, "live", "--vcam", "off", "--seconds", "3")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Microphone 'default'" in done.stderr
    assert re.search(r"\d+\.\d fps", done.stderr), done.stderr  # a status line


def test_live_with_a_missing_mic_says_what_to_do(server: PulseServer) -> None:
    done = _avatar_app(server, "live", "--vcam", "off", "--seconds", "2", "--mic", "no-such-mic")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: No microphone named 'no-such-mic'.")
    _assert_lists_the_inputs(errors[0])
