"""Streaming log-mel features, normalised by a running mean so that level and microphone
colour do not matter.

Frame ``i`` covers samples ``[i * HOP, i * HOP + WINDOW)`` of the 16 kHz signal; its centre is
at ``(i * HOP + WINDOW / 2) / RATE`` seconds. Everything is causal and runs frame by frame in
the same order whether audio arrives in 10 ms chunks or as one file, so both give the same
features.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter, lfilter_zi

RATE = 16_000
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
FFT = 512
BANDS = 40
FRAME_RATE = RATE / HOP
LOW_HZ, HIGH_HZ = 60.0, 7600.0
MEAN_SECONDS = 2.0  # time constant of the running mean
FLOOR = 1e-7  # power floor: about -70 dB below full scale


def frame_centre(index: int | np.ndarray) -> float | np.ndarray:
    """Time in seconds of the centre of feature frame ``index``."""
    return (np.asarray(index) * HOP + WINDOW / 2) / RATE


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_filterbank() -> np.ndarray:
    """[FFT/2+1, BANDS] triangular filters, equal area."""
    edges_mel = np.linspace(_mel(LOW_HZ), _mel(HIGH_HZ), BANDS + 2)
    edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(FFT, 1.0 / RATE)
    bank = np.zeros((bins.size, BANDS))
    for band in range(BANDS):
        low, centre, high = edges_hz[band : band + 3]
        rising = (bins - low) / (centre - low)
        falling = (high - bins) / (high - centre)
        bank[:, band] = np.clip(np.minimum(rising, falling), 0.0, None) * 2.0 / (high - low)
    return bank


_WINDOW_FN = np.hanning(WINDOW + 2)[1:-1]
_FILTERBANK = _mel_filterbank()
_EMA = 1.0 - np.exp(-1.0 / (MEAN_SECONDS * FRAME_RATE))


def log_mel(frames: np.ndarray) -> np.ndarray:
    """[n, WINDOW] samples -> [n, BANDS] natural-log mel energies (unnormalised)."""
    spectrum = np.fft.rfft(frames * _WINDOW_FN, n=FFT, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return np.log(power @ _FILTERBANK + FLOOR)


class FeatureStream:
    """Feeds 16 kHz mono audio in any chunk sizes; returns the normalised frames completed.

    ``initial_mean`` (from the training data) seeds the running mean so the first second is
    already usable.
    """

    def __init__(self, initial_mean: np.ndarray) -> None:
        self._pending = np.zeros(0, np.float64)
        self._initial_mean = np.asarray(initial_mean, np.float64)
        self._state = self._initial_state()
        self.frames_done = 0

    def _initial_state(self) -> np.ndarray:
        zi = lfilter_zi([_EMA], [1.0, _EMA - 1.0])
        return np.outer(zi, self._initial_mean)

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float64)
        self._state = self._initial_state()
        self.frames_done = 0

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(normalised [n, BANDS] float32, raw log-mel [n, BANDS])`` for new frames."""
        audio = np.concatenate([self._pending, np.asarray(samples, np.float64).ravel()])
        count = max(0, (audio.size - WINDOW) // HOP + 1)
        if count == 0:
            self._pending = audio
            return np.zeros((0, BANDS), np.float32), np.zeros((0, BANDS))
        starts = np.arange(count) * HOP
        frames = audio[starts[:, None] + np.arange(WINDOW)[None, :]]
        raw = log_mel(frames)
        mean, self._state = lfilter([_EMA], [1.0, _EMA - 1.0], raw, axis=0, zi=self._state)
        # The mean of the frames before this one, so a frame is not compared with itself.
        previous = np.vstack([self._previous_mean(), mean[:-1]])
        self._last_mean = mean[-1]
        self._pending = audio[count * HOP :]
        self.frames_done += count
        return (raw - previous).astype(np.float32), raw

    def _previous_mean(self) -> np.ndarray:
        if self.frames_done == 0:
            return self._initial_mean[None, :]
        return self._last_mean[None, :]


def features_of(audio16k: np.ndarray, initial_mean: np.ndarray) -> np.ndarray:
    """Normalised features of a whole signal (the same as streaming it; training uses this)."""
    return FeatureStream(initial_mean).push(audio16k)[0]
