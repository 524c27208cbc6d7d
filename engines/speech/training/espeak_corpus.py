"""Labelled synthetic speech from espeak-ng: many accents, voice variants, rates and pitches."""

from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly

from engines.speech import espeak
from engines.speech.training.utterance import SAMPLE_RATE, PhoneSpan, Utterance
from engines.speech.visemes import ipa_to_arpabet

ENGLISH_VOICES = (
    "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc",
    "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)  # fmt: skip


def utterance(
    text: str, voice: str, rate_wpm: int = 165, pitch: int = 50, pitch_range: int = 50
) -> Utterance:
    """Speak ``text`` and label it with the phonemes espeak-ng reports, as ARPAbet."""
    speech = espeak.speak(text, voice, rate_wpm, pitch, pitch_range)
    audio = resample_poly(speech.audio, SAMPLE_RATE, speech.rate).astype(np.float32)
    seconds = len(audio) / SAMPLE_RATE
    starts = [min(p.start, seconds) for p in speech.phonemes]
    phones: list[PhoneSpan] = []
    if not starts or starts[0] > 0:
        phones.append(PhoneSpan(0.0, starts[0] if starts else seconds, "SIL"))
    for i, phoneme in enumerate(speech.phonemes):
        end = starts[i + 1] if i + 1 < len(starts) else seconds
        if end > starts[i]:
            phones.append(PhoneSpan(starts[i], end, ipa_to_arpabet(phoneme.ipa)))
    return Utterance(audio, tuple(phones), f"espeak:{voice}", text)


def random_voice(rng: np.random.Generator, variants: list[str]) -> tuple[str, int, int, int]:
    """A voice (accent + variant), rate in words per minute, pitch and pitch range."""
    accent = ENGLISH_VOICES[rng.integers(len(ENGLISH_VOICES))]
    variant = variants[rng.integers(len(variants))] if variants and rng.random() < 0.85 else ""
    voice = f"{accent}+{variant}" if variant else accent
    return voice, int(rng.integers(110, 270)), int(rng.integers(15, 90)), int(rng.integers(10, 95))
