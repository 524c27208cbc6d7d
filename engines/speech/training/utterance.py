"""One labelled utterance: mono 16 kHz audio and the phones spoken in it, with times."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class PhoneSpan:
    """A phone from ``start`` to ``end`` seconds; ``phone`` is an ARPAbet symbol without stress
    digits (``AA``, ``P``, ...) or ``SIL`` for silence and pauses."""

    start: float
    end: float
    phone: str


@dataclass(frozen=True)
class Utterance:
    """``audio`` is float32 mono at 16 kHz in [-1, 1]; ``source`` names the voice or corpus."""

    audio: np.ndarray
    phones: tuple[PhoneSpan, ...]
    source: str
    text: str = ""

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mono float audio at ``rate`` -> float32 at 16 kHz, clipped to [-1, 1]."""
    if rate != SAMPLE_RATE:
        common = gcd(rate, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // common, rate // common)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def read_wav_16k(path: Path) -> np.ndarray:
    """A WAV file (any sample format, channels averaged) as float32 mono at 16 kHz."""
    rate, data = wavfile.read(path)
    if data.ndim > 1:
        data = data.mean(axis=1)
    if np.issubdtype(data.dtype, np.integer):
        audio = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    else:
        audio = data.astype(np.float32)
    return to_16k(audio, int(rate))
