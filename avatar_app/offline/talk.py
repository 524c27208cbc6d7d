"""``avatar-app render``: a portrait speaks a sound file (or text through espeak-ng) into an MP4.

The mouth comes from the same streaming core as the live session, fed here in 20 ms chunks
exactly as a microphone would; idle life and speech-linked nods are layered on top.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from avatar_app.audio_file import Audio
from avatar_app.pipeline import builder
from avatar_app.pipeline.settings import PipelineSettings
from avatar_app.video_writer import VideoWriter
from engines.speech.features import RATE

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.02
DEFAULTS = PipelineSettings(size=(512, 512), fps=25, mode="audio")


def spoken_text(text: str, voice: str = "en-us") -> Audio:
    """``text`` spoken by espeak-ng, as mono audio."""
    from engines.speech import espeak

    speech = espeak.speak(text, voice)
    return Audio(speech.audio.reshape(-1, 1), speech.rate, ("FC",))


def render_talking(
    audio: Audio,
    output: Path,
    settings: PipelineSettings = DEFAULTS,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render the portrait speaking ``audio`` to ``output``; returns the number of frames."""
    portrait = builder.ready_portrait(settings)
    speech = builder.speech_stage(settings)
    mixer = builder.mixer(replace(settings, mode="audio"))
    sound = audio.for_output(2)
    mono = audio.mono(RATE)
    total = int(np.ceil(len(mono) / RATE * settings.fps - 1e-9))
    chunk = int(CHUNK_SECONDS * RATE)
    width, height = settings.size
    written = 0
    with VideoWriter(
        output, width, height, settings.fps, audio_rate=sound.rate, audio_channels=sound.channels
    ) as video:
        for start in range(0, len(mono) + chunk, chunk):
            last = start >= len(mono)
            # The sound goes in beside the frames it drives, so the muxer buffers little.
            upto = len(sound.samples) if last else (start + chunk) * sound.rate // RATE
            video.write_audio(sound.samples[start * sound.rate // RATE : upto])
            frames = speech.flush() if last else speech.push(mono[start : start + chunk])
            for spoken in frames:
                controls = mixer.controls(spoken.time, spoken.life, spoken.mouth, None)
                video.write(portrait.render(controls))
                written += 1
                if progress:
                    progress(written, total)
            if last:
                break
    log.info("Rendered %d frames for %.2f s of sound", written, audio.seconds)
    return written
