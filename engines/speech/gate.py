"""When the mouth may move: voice activity (webrtcvad) and push-to-talk, eased open and shut.

Breath, clicks and steady noise must not flap the mouth. A frame counts as speech only when
webrtcvad says so *and* a pitched (periodic) sound was heard within the last ``VOICING_MEMORY``:
a breath or a hiss is noise-like and never pitched. Speech starts after several such frames
out of the last few and ends after a hangover; the result is eased so the mouth never snaps.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from engines.errors import EngineUnavailable

VAD_FRAME = 160  # 10 ms at 16 kHz
ONSET_WINDOW = 5  # frames looked at for an onset ...
ONSET_VOICED = 3  # ... of which this many must be voiced
HANGOVER_FRAMES = 20  # 200 ms of silence before the gate shuts
EASE_SECONDS = 0.025  # time constant of the gate's opening and closing
MIN_LEVEL_DB = -55.0  # quieter than this is never speech, whatever the VAD thinks
PITCH_WINDOW = 480  # 30 ms: two periods of an 80 Hz voice
PITCH_LAGS = (40, 200)  # 400 Hz down to 80 Hz
PERIODICITY = 0.5  # normalised autocorrelation above which a frame is pitched
VOICING_MEMORY = 25  # frames (250 ms) after a pitched frame during which unpitched speech counts


class VoiceGate:
    """Feed 10 ms frames of 16 kHz audio; ``update`` returns the eased gate (0..1) per frame.

    ``aggressiveness`` is webrtcvad's 0 (lets most through) to 3 (strict); ``None`` turns voice
    detection off (the gate is then only push-to-talk).
    """

    def __init__(self, aggressiveness: int | None = 2) -> None:
        self._vad: Any = None
        self.set_aggressiveness(aggressiveness)
        self.push_to_talk_open = True
        self.reset()

    def set_aggressiveness(self, aggressiveness: int | None) -> None:
        """Change voice detection strictness (0-3) or turn it off (None); takes effect at once."""
        if aggressiveness is None:
            self._vad = None
            return
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"VAD aggressiveness must be 0, 1, 2 or 3, got {aggressiveness}")
        try:
            import webrtcvad
        except ImportError as exc:
            raise EngineUnavailable(
                "Voice detection needs webrtcvad: run `pip install webrtcvad-wheels`."
            ) from exc
        self._vad = webrtcvad.Vad(aggressiveness)

    def reset(self) -> None:
        self._history = np.zeros(PITCH_WINDOW)
        self._since_pitch = VOICING_MEMORY
        self._recent: deque[bool] = deque(maxlen=ONSET_WINDOW)
        self._silent_for = HANGOVER_FRAMES
        self._speaking = False
        self._value = 0.0

    @property
    def value(self) -> float:
        """The eased gate, 0 (mouth held shut) to 1 (open to the voice)."""
        return self._value

    @property
    def speaking(self) -> bool:
        """Whether voice is currently detected (before push-to-talk and easing)."""
        return self._speaking

    def update(self, frame: np.ndarray) -> float:
        """One 10 ms frame (160 float samples in [-1, 1]) -> the gate value for it."""
        self._history = np.concatenate([self._history[VAD_FRAME:], frame])
        self._since_pitch = 0 if _is_pitched(self._history) else self._since_pitch + 1
        voiced = self._since_pitch < VOICING_MEMORY and self._is_voiced(frame)
        self._recent.append(voiced)
        if voiced:
            self._silent_for = 0
        else:
            self._silent_for += 1
        if not self._speaking and sum(self._recent) >= ONSET_VOICED:
            self._speaking = True
        elif self._speaking and self._silent_for >= HANGOVER_FRAMES:
            self._speaking = False
        target = 1.0 if (self._speaking and self.push_to_talk_open) else 0.0
        step = 1.0 - np.exp(-VAD_FRAME / 16_000 / EASE_SECONDS)
        self._value += step * (target - self._value)
        return self._value

    def _is_voiced(self, frame: np.ndarray) -> bool:
        level = 10.0 * np.log10(float(np.mean(np.square(frame, dtype=np.float64))) + 1e-12)
        if level < MIN_LEVEL_DB:
            return False
        if self._vad is None:
            return True
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return bool(self._vad.is_speech(pcm, 16_000))


def _is_pitched(window: np.ndarray) -> bool:
    """Whether the window repeats itself at a voice's period (normalised autocorrelation)."""
    low, high = PITCH_LAGS
    x = window - window.mean()
    energy = float(np.dot(x, x))
    if energy < 1e-9:
        return False
    spectrum = np.fft.rfft(x, 2 * len(x))
    correlation = np.fft.irfft(spectrum * np.conj(spectrum))[low:high]
    # Energy of the overlapping parts at each lag, so long lags are not penalised.
    cumulative = np.cumsum(x * x)
    lags = np.arange(low, high)
    head = cumulative[-1 - lags]
    tail = cumulative[-1] - cumulative[lags - 1]
    normalised = correlation / np.sqrt(np.maximum(head * tail, 1e-12))
    return bool(normalised.max() > PERIODICITY)
