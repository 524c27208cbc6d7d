"""One labelled utterance: mono 16 kHz audio and the phones spoken in it, with times."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
