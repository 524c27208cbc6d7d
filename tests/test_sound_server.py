"""Microphones by the sound server's names: listing its sources and recording a chosen one.

A private PulseAudio server (``tests/pulse.py``) gets a second null sink, ``second``, and a
source that records it under a name a user would know, "Blue Yeti Micrófono" (not ASCII on
purpose: ``pactl --format=json`` 16.1 turns such a description into "(null)"). The default
source stays ``vsink.monitor``. Different tones played into the two sinks tell which source a
``MicrophoneSource`` really records.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from avatar_app.live import sound_server
from avatar_app.live.audio_source import (
    Microphone,
    MicrophoneSource,
    list_microphones,
    microphones,
)
from avatar_app.live.devices import Camera, cameras, device_report, list_cameras
from avatar_app.live.sound_server import SoundSource, list_sources, parse_sources
from engines.errors import DeviceError
from tests.pulse import SINK, PulseServer, pulse_server, sounddevice_via

RATE = 16000
YETI = "Blue Yeti Micrófono"
DEFAULT_TONE_HZ = 440.0  # played into vsink, recorded by the default source vsink.monitor
YETI_TONE_HZ = 1000.0  # played into "second", recorded by YETI and by second.monitor
ATTEMPTS = 5
"""ALSA's pulse plugin can take more than a second to deliver after a stream opens (the
microphone then reopens itself); a recording during which that happened is taken again."""

needs_pactl = pytest.mark.skipif(
    shutil.which("pactl") is None, reason="pactl is missing: apt-get install pulseaudio-utils"
)


@pytest.fixture(scope="module")
def server() -> Iterator[PulseServer]:
    """The private server with the second sink and YETI, and this process's PortAudio on it."""
    with pulse_server() as running, sounddevice_via(running):
        _pactl(
            running,
            "load-module",
            "module-null-sink",
            "sink_name=second",
            "sink_properties=device.description=Second",
        )
        _pactl(
            running,
            "load-module",
            "module-remap-source",
            "master=second.monitor",
            "source_name=yeti",
            f"source_properties=\"device.description='{YETI}'\"",
        )
        yield running


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Twelve seconds of each tone as a WAV, by the sink it is played into."""
    folder = tmp_path_factory.mktemp("tones")
    t = np.arange(12 * RATE) / RATE
    paths = {}
    for sink, hz in ((SINK, DEFAULT_TONE_HZ), ("second", YETI_TONE_HZ)):
        paths[sink] = folder / f"{sink}.wav"
        wavfile.write(
            paths[sink], RATE, (0.4 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)
        )
    return paths


def _pactl(server: PulseServer, *args: str) -> str:
    done = subprocess.run(
        ["pactl", *args], env=server.client_env, capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, f"pactl {' '.join(args)}: {done.stderr}\n{server.log[-2000:]}"
    return done.stdout


def _level(samples: np.ndarray, hz: float) -> float:
    """Amplitude of the ``hz`` component of ``samples`` (Hann-windowed DFT at that frequency)."""
    window = np.hanning(len(samples))
    t = np.arange(len(samples)) / RATE
    return float(2 * abs(np.sum(samples * window * np.exp(-2j * np.pi * hz * t))) / window.sum())


def _record_tones(server: PulseServer, tones: dict[str, Path], device: str) -> np.ndarray:
    """1.5 s recorded from ``device`` while each sink plays its own tone."""
    with MicrophoneSource(device=device) as mic:
        assert "PULSE_SOURCE" not in os.environ  # only set while the stream opened
        players = [
            subprocess.Popen(
                ["paplay", "-d", sink, str(path)],
                env=server.client_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for sink, path in tones.items()
        ]
        try:
            for _ in range(ATTEMPTS):
                while mic.read(timeout=0) is not None:  # older than the tones, or stale
                    pass
                reconnects = mic.reconnects
                chunks = [mic.read(timeout=5.0) for _ in range(150)]
                if mic.reconnects == reconnects and all(c is not None for c in chunks):
                    return np.concatenate([c.samples for c in chunks if c is not None])
        finally:
            for player in players:
                player.kill()
                player.wait(5)
    pytest.fail(f"the microphone stalled while recording in each of {ATTEMPTS} attempts")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("device", "hz", "other_hz"),
    [
        (YETI, YETI_TONE_HZ, DEFAULT_TONE_HZ),  # by description, not the default source
        ("monitor of sec", YETI_TONE_HZ, DEFAULT_TONE_HZ),  # part of one, any case
        ("vsink.monitor", DEFAULT_TONE_HZ, YETI_TONE_HZ),  # by server name
    ],
)
def test_a_source_named_by_the_server_records_its_own_sound(
    server: PulseServer, tones: dict[str, Path], device: str, hz: float, other_hz: float
) -> None:
    heard = _record_tones(server, tones, device)
    wanted, other = _level(heard, hz), _level(heard, other_hz)
    assert wanted > 0.2, f"{device!r}: {hz} Hz at {wanted:.3f}, {other_hz} Hz at {other:.3f}"
    assert other < wanted / 20, f"{device!r} also heard the other source's {other_hz} Hz"


@pytest.mark.e2e
def test_listing_shows_descriptions_default_first_monitors_last(server: PulseServer) -> None:
    assert [(s.name, s.description, s.is_default, s.is_monitor) for s in list_sources()] == [
        ("vsink.monitor", "Monitor of Null Output", True, True),  # the default, monitor or not
        ("yeti", YETI, False, False),
        ("second.monitor", "Monitor of Second", False, True),
    ]
    _pactl(server, "set-default-source", "yeti")
    try:
        # PortAudio's "pulse" and "default" only lead to the default source: not listed.
        assert list_microphones() == [YETI, "Monitor of Null Output", "Monitor of Second"]
        assert microphones() == [
            Microphone(YETI, "yeti", is_default=True, is_monitor=False),
            Microphone("Monitor of Null Output", "vsink.monitor", is_monitor=True),
            Microphone("Monitor of Second", "second.monitor", is_monitor=True),
        ]
        report = device_report()
        assert f"  {YETI} (default)\n" in report
        assert "  Monitor of Null Output [monitor]\n" in report
    finally:
        _pactl(server, "set-default-source", f"{SINK}.monitor")


@pytest.mark.e2e
def test_an_unknown_name_lists_the_friendly_names(server: PulseServer) -> None:
    with pytest.raises(DeviceError) as caught:
        MicrophoneSource(device="Blue Yeti X").start()
    message = str(caught.value)
    assert "No microphone named 'Blue Yeti X'" in message
    assert f"Available inputs: 'Monitor of Null Output', '{YETI}', 'Monitor of Second'." in message


@pytest.mark.e2e
def test_portaudio_names_still_open(server: PulseServer) -> None:
    with MicrophoneSource(device="pulse") as mic:
        assert mic.device_name == "pulse"
        assert mic.read(timeout=5.0) is not None
    with MicrophoneSource(device=YETI.upper()) as mic:
        assert mic.device_name == YETI


@needs_pactl
def test_no_sound_server_lists_nothing_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/pulse/native")
    started = time.monotonic()
    assert list_sources() == []
    assert time.monotonic() - started < sound_server.TIMEOUT_SECONDS


@needs_pactl
def test_a_server_that_never_answers_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "native"
        with socket.socket(socket.AF_UNIX) as mute:  # accepts connections, never replies
            mute.bind(str(path))
            mute.listen()
            monkeypatch.setenv("PULSE_SERVER", f"unix:{path}")
            started = time.monotonic()
            assert list_sources(timeout=0.5) == []
            assert time.monotonic() - started < 3.0


def test_other_systems_list_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sound_server.platform, "system", lambda: "Windows")
    assert list_sources() == []


def test_pactl_text_is_parsed() -> None:
    text = (
        "Source #3\n\tState: SUSPENDED\n"
        "\tName: alsa_output.pci-0000_00_1f.3.analog-stereo.monitor\n"
        "\tDescription: Monitor of Built-in Audio Analog Stereo\n"
        "\tMonitor of Sink: alsa_output.pci-0000_00_1f.3.analog-stereo\n"
        '\tProperties:\n\t\tdevice.class = "monitor"\n\t\talsa.card = "0"\n\n'
        "Source #4\n\tState: RUNNING\n\tName: alsa_input.usb-Blue_Yeti-00.analog-stereo\n"
        "\tDescription: Blue Yeti Analog Stereo\n\tMonitor of Sink: n/a\n"
        '\tProperties:\n\t\tdevice.class = "sound"\n\t\tapi.alsa.card = "2"\n'
    )
    assert parse_sources(text, default="alsa_input.usb-Blue_Yeti-00.analog-stereo") == [
        SoundSource(
            "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
            "Monitor of Built-in Audio Analog Stereo",
            is_default=False,
            is_monitor=True,
            alsa_card=0,
        ),
        SoundSource(
            "alsa_input.usb-Blue_Yeti-00.analog-stereo",
            "Blue Yeti Analog Stereo",
            is_default=True,
            is_monitor=False,
            alsa_card=2,
        ),
    ]


def test_cameras_are_listed_for_a_picker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from avatar_app.live import devices

    for node, name in (("video10", "Avatar"), ("video2", "Integrated Camera"), ("media0", "x")):
        (tmp_path / node).mkdir()
        (tmp_path / node / "name").write_text(name + "\n")
    monkeypatch.setattr(devices, "V4L2_SYSFS", tmp_path)
    monkeypatch.setattr(devices.platform, "system", lambda: "Linux")
    assert cameras() == [
        Camera("Integrated Camera", "/dev/video2", is_virtual=False),
        Camera("Avatar", "/dev/video10", is_virtual=True),
    ]
    assert list_cameras() == [
        "Integrated Camera (/dev/video2)",
        "Avatar (/dev/video10) [virtual]",
    ]
