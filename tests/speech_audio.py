"""Speech made at test time with espeak-ng, resampled to the lip-sync core's 16 kHz."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from engines.speech.features import RATE
from engines.speech.visemes import PHONE_JAW, ipa_to_arpabet


def require_espeak() -> None:
    from engines.speech import espeak

    if not espeak.available():
        pytest.skip("espeak-ng is not installed (pip install espeakng-loader)")


def spoken(
    text: str, voice: str = "en-us", pad: float = 0.5, rate_wpm: int = 150
) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """16 kHz mono speech with ``pad`` seconds of silence each side, and its (time, phone) list."""
    from engines.speech import espeak

    require_espeak()
    speech = espeak.speak(text, voice, rate_wpm=rate_wpm)
    audio = resample_poly(speech.audio, RATE, speech.rate).astype(np.float32)
    silence = np.zeros(int(pad * RATE), np.float32)
    phones = [(pad + p.start, ipa_to_arpabet(p.ipa)) for p in speech.phonemes]
    return np.concatenate([silence, audio, silence]), phones


def phone_openness(phones: list[tuple[float, str]], times: np.ndarray) -> np.ndarray:
    """How open each phone keeps the jaw, at ``times``: the lip-sync target as a reference."""
    starts = np.array([t for t, _ in phones])
    which = np.searchsorted(starts, times, side="right") - 1
    return np.array([PHONE_JAW[phones[i][1]] if i >= 0 else 0.0 for i in which])


def envelope(audio: np.ndarray, times: np.ndarray, window: float = 0.04) -> np.ndarray:
    """RMS of the sound in a window centred on each time."""
    half = int(window * RATE / 2)
    out = []
    for t in times:
        centre = int(t * RATE)
        chunk = audio[max(0, centre - half) : centre + half]
        out.append(float(np.sqrt(np.mean(np.square(chunk)))) if chunk.size else 0.0)
    return np.array(out)
