"""``avatar-app render``: a portrait speaks a sound file (or text through espeak-ng) into an MP4.

The mouth comes from the same streaming core as the live session, fed here in 20 ms chunks
exactly as a microphone would; idle life and speech-linked nods are layered on top. A sound
file is read twice, frame by frame: once as the 16 kHz mono the lip-sync model hears, once
for the video's sound track as it is written, so a long file never sits whole in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from avatar_app.atomic_output import atomic_output
from avatar_app.audio_file import Audio, load_audio, output_format, stream_audio
from avatar_app.pipeline import builder
from avatar_app.pipeline.settings import PipelineSettings
from avatar_app.video_writer import VideoWriter
from engines.errors import AvatarError
from engines.speech.features import RATE

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.02
DEFAULTS = PipelineSettings(size=(512, 512), fps=25, mode="audio")


def spoken_text(text: str, voice: str = "en-us") -> Audio:
    """``text`` spoken by espeak-ng, as mono audio."""
    from engines.speech import espeak

    if not text.strip():
        raise AvatarError('There is no text to say. Give some words, e.g. --say "Hello there".')
    try:
        speech = espeak.speak(text, voice)
    except ValueError as exc:  # espeak-ng does not know the voice
        raise AvatarError(f"{exc} `espeak-ng --voices` lists the voices.") from exc
    if len(speech.audio) == 0:
        raise AvatarError(f"espeak-ng made no sound of {text!r}. Give some words to say.")
    return Audio(speech.audio.reshape(-1, 1), speech.rate, ("FC",))


class _Soundtrack:
    """The output's sound, handed out in pieces of any length (silence past its end)."""

    def __init__(self, chunks: Iterator[np.ndarray], rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self._chunks = chunks
        self._pending = np.zeros((0, channels), np.float32)

    def take(self, count: int) -> np.ndarray:
        while len(self._pending) < count:
            chunk = next(self._chunks, None)
            if chunk is None:
                missing = np.zeros((count - len(self._pending), self.channels), np.float32)
                self._pending = np.concatenate([self._pending, missing])
                break
            self._pending = np.concatenate([self._pending, chunk])
        taken, self._pending = self._pending[:count], self._pending[count:]
        return taken


def _sound(audio: Audio | Path) -> tuple[np.ndarray, _Soundtrack]:
    """The model's 16 kHz mono and the output's sound track of ``audio``."""
    if isinstance(audio, Audio):
        sound = audio.for_output(2)
        chunks = iter([sound.samples])
        return audio.mono(RATE), _Soundtrack(chunks, sound.rate, sound.channels)
    mono = load_audio(audio, rate=RATE, channels=1).samples[:, 0]
    rate, channels = output_format(audio)
    return mono, _Soundtrack(stream_audio(audio, rate, channels), rate, channels)


def render_talking(
    audio: Audio | Path,
    output: Path,
    settings: PipelineSettings = DEFAULTS,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render the portrait speaking ``audio`` (decoded, or a sound file) to ``output``.

    Returns the number of frames.
    """
    mono, sound = _sound(audio)  # a bad sound file fails before the slow work
    portrait = builder.ready_portrait(settings)
    speech = builder.speech_stage(settings)
    mixer = builder.mixer(replace(settings, mode="audio"))
    total = int(np.ceil(len(mono) / RATE * settings.fps - 1e-9))
    sound_total = round(len(mono) * sound.rate / RATE)
    chunk = int(CHUNK_SECONDS * RATE)
    width, height = settings.size
    written = 0
    with (
        atomic_output(output) as partial,
        VideoWriter(
            partial,
            width,
            height,
            settings.fps,
            audio_rate=sound.rate,
            audio_channels=sound.channels,
        ) as video,
    ):
        for start in range(0, len(mono) + chunk, chunk):
            last = start >= len(mono)
            # The sound goes in beside the frames it drives, so the muxer buffers little.
            upto = sound_total if last else min(sound_total, (start + chunk) * sound.rate // RATE)
            video.write_audio(sound.take(max(0, upto - video.audio_samples_written)))
            frames = speech.flush() if last else speech.push(mono[start : start + chunk])
            for spoken in frames:
                controls = mixer.controls(spoken.time, spoken.life, spoken.mouth, None)
                video.write(portrait.render(controls))
                written += 1
                if progress:
                    progress(written, total)
            if last:
                break
    log.info("Rendered %d frames for %.2f s of sound", written, len(mono) / RATE)
    return written
