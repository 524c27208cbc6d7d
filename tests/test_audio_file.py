"""load_audio: real files of every common kind, written with PyAV at test time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from avatar_app.audio_file import Audio, AudioFileError, load_audio
from avatar_app.video_writer import VideoWriter
from engines.errors import AvatarError

LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def _encode(
    path: Path,
    samples: np.ndarray,
    rate: int,
    codec: str,
    sample_format: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write float samples [n, channels] to ``path``; PyAV converts to the codec's format."""
    layout = LAYOUTS[samples.shape[1]]
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream: Any = container.add_stream(codec, rate=rate, layout=layout, options=options or {})
        if sample_format is not None:
            stream.format = sample_format
        planar = np.ascontiguousarray(samples.T, np.float32)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _sine(hz: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def _peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)])


def _level(signal: np.ndarray, rate: int, hz: float) -> float:
    """Amplitude of the ``hz`` tone in ``signal`` (a whole number of cycles assumed)."""
    t = np.arange(len(signal)) / rate
    return float(np.abs(np.mean(signal * np.exp(-2j * np.pi * hz * t))) * 2)


# name, codec, sample format, rate, channels, largest error against the source in the middle
FORMATS = [
    ("s16.wav", "pcm_s16le", None, 44100, 1, 1e-4),
    ("u8.wav", "pcm_u8", None, 44100, 1, 1e-2),
    ("s24.wav", "pcm_s24le", None, 44100, 2, 1e-6),
    ("s32.wav", "pcm_s32le", None, 22050, 1, 1e-6),
    ("f32.wav", "pcm_f32le", None, 44100, 2, 1e-6),
    ("f64.wav", "pcm_f64le", None, 32000, 1, 1e-6),
    ("s16.flac", "flac", None, 44100, 2, 1e-4),
    ("s24.flac", "flac", "s32", 96000, 1, 1e-6),
    ("fltp.mp3", "libmp3lame", None, 44100, 2, None),
    ("fltp.m4a", "aac", None, 44100, 1, None),
    ("vorbis.ogg", "vorbis", None, 44100, 2, None),
    ("opus.ogg", "libopus", None, 48000, 1, None),
]


@pytest.mark.parametrize(
    ("name", "codec", "sample_format", "rate", "channels", "tolerance"),
    FORMATS,
    ids=[f[0] for f in FORMATS],
)
def test_reads_common_formats(
    tmp_path: Path,
    name: str,
    codec: str,
    sample_format: str | None,
    rate: int,
    channels: int,
    tolerance: float | None,
) -> None:
    source = np.repeat(_sine(1000, rate, 2.0)[:, None], channels, axis=1)
    options = {"strict": "experimental"} if codec == "vorbis" else None
    path = _encode(tmp_path / name, source, rate, codec, sample_format, options)

    audio = load_audio(path)

    assert audio.rate == rate
    assert audio.samples.dtype == np.float32
    assert audio.channels == channels
    # Lossless codecs, MP3, AAC and Opus keep the exact length; ffmpeg's Vorbis adds a little.
    assert len(audio.samples) - 2 * rate in ((0,) if codec != "vorbis" else range(rate // 100))
    assert np.abs(audio.samples).max() <= 1.0
    middle = slice(rate // 4, -rate // 4)
    if tolerance is not None:
        assert np.abs(audio.samples[middle] - source[middle]).max() < tolerance
    for channel in audio.samples.T:
        assert _level(channel[middle], rate, 1000) == pytest.approx(0.5, abs=0.03)
    assert audio.seconds == pytest.approx(2.0, abs=0.01)


def test_mono_of_a_1khz_sine_at_44k1_has_the_right_length_and_pitch(tmp_path: Path) -> None:
    source = _sine(1000, 44100, 2.0)
    audio = load_audio(_encode(tmp_path / "sine.wav", source[:, None], 44100, "pcm_s16le"))

    mono = audio.mono(16000)

    assert mono.dtype == np.float32
    assert mono.ndim == 1
    assert abs(len(mono) - 32000) <= 1
    assert _peak_hz(mono, 16000) == pytest.approx(1000, abs=0.5)
    assert _level(mono[4000:-4000], 16000, 1000) == pytest.approx(0.5, abs=0.01)
    expected = _sine(1000, 16000, 2.0)
    assert np.abs(mono[1000:-1000] - expected[1000:-1000]).max() < 0.01  # no delay either
    assert np.array_equal(mono, audio.mono(16000))


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (48000, 2), (16000, 1)])
def test_mono_resamples_any_rate(tmp_path: Path, rate: int, channels: int) -> None:
    source = np.repeat(_sine(440, rate, 1.5)[:, None], channels, axis=1)
    audio = load_audio(_encode(tmp_path / "tone.flac", source, rate, "flac"))
    assert audio.rate == rate

    mono = audio.mono()

    assert abs(len(mono) - 24000) <= 1
    assert _peak_hz(mono, 16000) == pytest.approx(440, abs=1)
    assert _level(mono[2000:-2000], 16000, 440) == pytest.approx(0.5, abs=0.01)


def test_six_channels_are_downmixed_to_stereo(tmp_path: Path) -> None:
    # FL FR FC LFE BL BR, each with its own tone (whole cycles in 2 s at 48 kHz)
    tones = [300, 500, 700, 60, 900, 1100]
    source = np.stack([_sine(hz, 48000, 2.0, 0.3) for hz in tones], axis=1)
    audio = load_audio(_encode(tmp_path / "surround.wav", source, 48000, "pcm_s16le"))
    assert audio.channels == 6
    assert audio.channel_names == ("FL", "FR", "FC", "LFE", "BL", "BR")

    stereo = audio.for_output()

    assert stereo.channels == 2
    assert stereo.rate == 48000
    assert len(stereo.samples) == len(audio.samples)
    assert np.abs(stereo.samples).max() <= 1.0
    left, right = (
        {hz: _level(channel, 48000, hz) / 0.3 for hz in tones} for channel in stereo.samples.T
    )
    assert left[300] == pytest.approx(1.0, abs=0.01)
    assert right[500] == pytest.approx(1.0, abs=0.01)
    assert left[700] == pytest.approx(np.sqrt(0.5), abs=0.01)
    assert right[700] == pytest.approx(left[700], abs=1e-3)
    assert left[900] == pytest.approx(np.sqrt(0.5), abs=0.01)
    assert right[1100] == pytest.approx(np.sqrt(0.5), abs=0.01)
    assert max(left[500], left[1100], right[300], right[900], left[60], right[60]) < 0.01
    assert audio.for_output(1).channels == 1
    assert audio.for_output(6) is audio
    assert abs(len(audio.mono()) - 32000) <= 1


def test_mono_stays_mono(tmp_path: Path) -> None:
    audio = load_audio(
        _encode(tmp_path / "m.wav", _sine(500, 16000, 1.0)[:, None], 16000, "pcm_s16le")
    )
    assert audio.for_output() is audio
    assert audio.for_output().channels == 1


def test_clipped_sound_is_read_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loud = np.clip(4 * np.random.default_rng(0).standard_normal((44100, 1)), -1, 1)
    path = _encode(tmp_path / "loud.wav", loud, 44100, "pcm_s16le")
    with caplog.at_level(logging.WARNING, logger="avatar_app.audio_file"):
        audio = load_audio(path)
    assert "clipped" in caplog.text
    assert np.abs(audio.samples).max() <= 1.0
    assert audio.seconds == pytest.approx(1.0)


def test_dc_offset_and_a_clean_tone_read_without_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    offset = 0.4 + _sine(200, 44100, 1.0, 0.3)
    path = _encode(tmp_path / "dc.wav", offset[:, None], 44100, "pcm_s16le")
    with caplog.at_level(logging.WARNING, logger="avatar_app.audio_file"):
        audio = load_audio(path)
    assert caplog.records == []
    assert float(audio.samples.mean()) == pytest.approx(0.4, abs=1e-3)
    assert float(audio.mono().mean()) == pytest.approx(0.4, abs=1e-3)


def test_reads_the_sound_track_of_a_video(tmp_path: Path) -> None:
    path = tmp_path / "talk.mp4"
    sound = np.repeat(_sine(1000, 48000, 2.0)[:, None], 2, axis=1).astype(np.float32)
    with VideoWriter(path, 64, 48, 25, audio_rate=48000, audio_channels=2) as video:
        for i in range(50):
            video.write(np.full((48, 64, 3), i, np.uint8))
            video.write_audio(sound[i * 1920 : (i + 1) * 1920])

    audio = load_audio(path)

    assert (audio.rate, audio.channels) == (48000, 2)
    assert len(audio.samples) == 96000  # no AAC priming or padding left
    assert _level(audio.samples[12000:-12000, 0], 48000, 1000) == pytest.approx(0.5, abs=0.03)


def test_a_long_file_is_read_whole(tmp_path: Path) -> None:
    rate, minutes = 8000, 20
    tone = _sine(250, rate, 60.0)[:, None]
    path = tmp_path / "long.flac"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        for minute in range(minutes):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone.T, np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = minute * len(tone)
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    audio = load_audio(path)

    assert audio.samples.shape == (minutes * 60 * rate, 1)
    assert np.abs(audio.samples[-rate:, 0] - tone[-rate:, 0]).max() < 1e-4


# Damaged files: what decodes is used, with a warning.


def _garbled_middle(tmp_path: Path) -> Path:
    path = _encode(tmp_path / "g.mp3", _sine(440, 44100, 4.0)[:, None], 44100, "libmp3lame")
    data = bytearray(path.read_bytes())
    start, end = 2 * len(data) // 5, 3 * len(data) // 5
    data[start:end] = np.random.default_rng(1).integers(0, 256, end - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _cut_in_half(name: str, codec: str) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = _encode(tmp_path / name, _sine(440, 44100, 4.0)[:, None], 44100, codec)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return make


@pytest.mark.parametrize(
    "make",
    [_garbled_middle, _cut_in_half("cut.wav", "pcm_s16le"), _cut_in_half("cut.flac", "flac")],
    ids=["garbled mp3", "cut wav", "cut flac"],
)
def test_damaged_files_give_what_decodes_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, make: Callable[[Path], Path]
) -> None:
    path = make(tmp_path)
    with caplog.at_level(logging.WARNING, logger="avatar_app.audio_file"):
        audio = load_audio(path)
    assert 1.0 < audio.seconds < 3.5
    assert "damaged" in caplog.text
    assert str(path) in caplog.text
    assert _level(audio.samples[:22050, 0], 44100, 440) == pytest.approx(0.5, abs=0.05)


# Unusable files: an AvatarError that names the file and says what to do.


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nothing.wav"


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "sounds.wav").mkdir()
    return tmp_path / "sounds.wav"


def _zero_bytes(tmp_path: Path) -> Path:
    (tmp_path / "empty.mp3").touch()
    return tmp_path / "empty.mp3"


def _picture(tmp_path: Path) -> Path:
    Image.new("RGB", (32, 24), (200, 30, 30)).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def _text(tmp_path: Path) -> Path:
    (tmp_path / "notes.wav").write_text("These are not sounds.\n" * 50)
    return tmp_path / "notes.wav"


def _silent_video(tmp_path: Path) -> Path:
    with VideoWriter(tmp_path / "silent.mp4", 64, 48, 25) as video:
        for i in range(25):
            video.write(np.full((48, 64, 3), i, np.uint8))
    return tmp_path / "silent.mp4"


def _no_samples(tmp_path: Path) -> Path:
    path = tmp_path / "zero.wav"
    with av.open(str(path), "w") as container:
        container.add_stream("pcm_s16le", rate=16000, layout="mono")
        container.start_encoding()
    return path


def _very_short(tmp_path: Path) -> Path:
    return _encode(tmp_path / "blip.wav", _sine(440, 16000, 0.05)[:, None], 16000, "pcm_s16le")


def _nothing_decodes(tmp_path: Path) -> Path:
    # The index (moov) goes first, then every byte of the sound data after it is garbled.
    sine = _sine(440, 44100, 1.0)[:, None]
    path = _encode(
        tmp_path / "noise.m4a", sine, 44100, "aac", None, None, {"movflags": "+faststart"}
    )
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = np.random.default_rng(2).integers(0, 256, len(data) - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, r"nothing\.wav does not exist\. Check the path"),
        (_folder, r"sounds\.wav is a folder, not a sound file\. Pick a WAV"),
        (_zero_bytes, r"empty\.mp3 is empty \(0 bytes\).*Copy it again"),
        (_picture, r"photo\.png is a picture, not a sound file\. Pick a WAV"),
        (_text, r"notes\.wav is not a sound file that can be read.*convert this one to WAV"),
        (_silent_video, r"The video .*silent\.mp4 has no sound track\. Pick a video with sound"),
        (_no_samples, r"zero\.wav holds no sound \(0 seconds\)\. Record or export it again"),
        (_very_short, r"blip\.wav lasts only 50 ms; at least 0\.1 s is needed\. Pick a longer"),
        (_nothing_decodes, r"noise\.m4a is damaged: none of its sound"),
    ],
    ids=[
        "missing",
        "folder",
        "0 bytes",
        "picture",
        "text",
        "silent video",
        "0 seconds",
        "very short",
        "nothing decodes",
    ],
)
def test_unusable_files_say_what_to_do(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(AudioFileError, match=message) as caught:
        load_audio(path)
    assert isinstance(caught.value, AvatarError)
    assert str(path) in str(caught.value)


def test_audio_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="float32"):
        Audio(np.zeros((10, 1), np.int16), 16000)
    with pytest.raises(ValueError, match=r"\[n, channels\]"):
        Audio(np.zeros(10, np.float32), 16000)
    audio = Audio(np.zeros((1600, 1), np.float32), 16000)
    with pytest.raises(ValueError, match="rate"):
        audio.mono(0)
    with pytest.raises(ValueError, match="max_channels"):
        audio.for_output(0)


@pytest.mark.parametrize(("rate", "output_rate"), [(192000, 48000), (37800, 44100), (6000, 8000)])
def test_for_output_takes_a_rate_aac_can_record(
    tmp_path: Path, rate: int, output_rate: int
) -> None:
    source = np.repeat(_sine(1000, rate, 1.0)[:, None], 2, axis=1)
    audio = load_audio(_encode(tmp_path / "odd.wav", source, rate, "pcm_s16le"))
    assert audio.rate == rate

    ready = audio.for_output()

    assert (ready.rate, ready.channels) == (output_rate, 2)
    assert abs(len(ready.samples) - output_rate) <= 1
    assert _level(ready.samples[2000:-2000, 0], output_rate, 1000) == pytest.approx(0.5, abs=0.01)
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 64, 48, 25, ready.rate, ready.channels) as video:
        video.write(np.zeros((48, 64, 3), np.uint8))
        video.write_audio(ready.samples)
    assert load_audio(path).rate == output_rate


def test_converted_while_decoding_matches_converting_after(tmp_path: Path) -> None:
    """16 kHz mono straight from a 48 kHz stereo file: the same sound, never held at 48 kHz."""
    from avatar_app.audio_file import output_format, stream_audio

    left, right = _sine(440, 48000, 2.0), _sine(1000, 48000, 2.0, 0.25)
    path = _encode(tmp_path / "stereo.flac", np.stack([left, right], axis=1), 48000, "flac")
    whole = load_audio(path).mono(16000)
    streamed = load_audio(path, rate=16000, channels=1)
    assert streamed.rate == 16000 and streamed.channels == 1
    mono = streamed.samples[:, 0]
    assert abs(len(mono) - len(whole)) <= 16
    middle = slice(1000, min(len(mono), len(whole)) - 1000)
    assert np.abs(mono[middle] - whole[middle]).max() < 0.02
    assert output_format(path) == (48000, 2)
    chunks = list(stream_audio(path, 48000, 2))
    assert all(c.dtype == np.float32 and c.shape[1] == 2 for c in chunks)
    assert abs(sum(len(c) for c in chunks) - 96000) <= 1024


def test_pipes_devices_and_web_addresses_are_not_sound_files(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.wav")
    for path, words in (
        (tmp_path / "pipe.wav", "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (Path("http://example.com/a.wav"), "web address"),
        (tmp_path / ("x" * 300 + ".wav"), "does not exist"),
    ):
        with pytest.raises(AudioFileError, match=words):
            load_audio(path)
