"""Speech-linked head and brow motion from per-frame loudness, streaming and causal.

Stressed syllables are loudness peaks clearly above the running mean of recent syllable peaks
(comparing with peaks rather than all frames keeps the pauses between syllables from making
every syllable look stressed). Each stress nods the head; every second or third also raises
the brows. While speech goes on, a slow sway in yaw and roll joins in; pitch is left to the
nods so they read clearly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engines.controls import FaceControls

FLOOR_DB = -100.0
"""Loudness below this (and -inf or NaN) counts as this."""
MIN_PEAK_DB = -60.0
"""Peaks quieter than this are noise, never stress."""
PEAK_DELTA_DB = 1.5
"""Hysteresis of the peak picker: a peak is confirmed once the level falls this far below it."""
STRESS_DB = 3.0
"""A stressed peak is at least this much above the running mean of recent peaks."""
PEAK_MEAN_ALPHA = 0.2
"""Weight of each new peak in the running mean (about the last five syllables)."""
REFRACTORY_SECONDS = 0.3

NOD_DEGREES = (2.0, 3.0)  # random part; up to 1 degree more for a very prominent stress
NOD_EXTRA_DEGREES = 1.0
NOD_FULL_EXTRA_DB = 6.0  # prominence beyond STRESS_DB that earns all of NOD_EXTRA_DEGREES
NOD_SECONDS = (0.30, 0.40)
BROW_RAISE = (0.3, 0.5)
BROW_SECONDS = (0.38, 0.45)
BROW_EVERY = (2, 3)  # a brow raise on every 2nd or 3rd stress, drawn each time

ENGAGE_RISE_SECONDS = 1.0
ENGAGE_RELEASE_SECONDS = 0.4
SWAY_DEGREES = {"head_yaw": 2.0, "head_roll": 1.0}  # peak of the slow speech sway
SWAY_BAND_HZ = (0.1, 0.4)
SWAY_PARTIALS = 3


@dataclass(frozen=True, slots=True)
class _Pulse:
    """A raised-cosine bump: 0 at ``start``, ``amplitude`` midway, 0 after ``seconds``."""

    start: float
    seconds: float
    amplitude: float

    def at(self, t: float) -> float:
        u = (t - self.start) / self.seconds
        return self.amplitude * math.sin(math.pi * u) ** 2 if 0.0 < u < 1.0 else 0.0

    def over(self, t: float) -> bool:
        return t >= self.start + self.seconds


class _PeakPicker:
    """Causal peak picking with hysteresis: reports a peak once the level has fallen from it."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self._rising = True
        self._extreme = -math.inf

    def push(self, level: float) -> float | None:
        """Feed one level; returns the height of a peak confirmed by this level, if any."""
        if self._rising:
            if level > self._extreme:
                self._extreme = level
            elif level <= self._extreme - PEAK_DELTA_DB:
                peak, self._extreme, self._rising = self._extreme, level, False
                return peak
        elif level < self._extreme:
            self._extreme = level
        elif level >= self._extreme + PEAK_DELTA_DB:
            self._extreme, self._rising = level, True
        return None


def _ease(u: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(max(u, 0.0), 1.0))


class ProsodyMotion:
    """Nods, brow raises and slow sway that follow the stress of speech.

    Call ``update`` once per video frame, in time order. ``loudness`` is the frame's RMS level
    in dBFS (0 is full scale; -inf for digital silence is fine); ``voiced`` says whether speech
    is active (VAD or push-to-talk). Only head pitch, yaw, roll and the brows ever move; after
    speech stops all of it is back to neutral within half a second.
    """

    def __init__(self, fps: float, seed: int = 0) -> None:
        if not (math.isfinite(fps) and fps > 0.0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget all speech so far; the next ``update`` may start at any time."""
        self._rng = np.random.default_rng(self.seed % 2**64)
        self._sway = {name: self._sinusoids() for name in SWAY_DEGREES}
        self._picker = _PeakPicker()
        self._peak_mean: float | None = None
        self._last_stress = -math.inf
        self._until_brow = self._brow_gap()
        self._nods: list[_Pulse] = []
        self._brows: list[_Pulse] = []
        self._engage = 0.0
        self._last_t: float | None = None

    def update(self, t: float, loudness: float, voiced: bool) -> FaceControls:
        """The speech motion at frame time ``t`` seconds, given this frame's loudness (dBFS)."""
        dt = self._step(t)
        if voiced:
            self._engage = min(1.0, self._engage + dt / ENGAGE_RISE_SECONDS)
            peak = self._picker.push(_level(loudness))
            if peak is not None:
                self._on_peak(t, peak)
        else:
            self._engage = max(0.0, self._engage - dt / ENGAGE_RELEASE_SECONDS)
            self._picker.restart()
        return self._controls(t)

    def _step(self, t: float) -> float:
        if self._last_t is not None and t < self._last_t:
            raise ValueError(
                f"update() got t={t} after t={self._last_t}; call it in time order "
                "or call reset() first"
            )
        dt = 1.0 / self.fps if self._last_t is None else t - self._last_t
        self._last_t = t
        return dt

    def _on_peak(self, t: float, peak: float) -> None:
        if peak < MIN_PEAK_DB:
            return
        mean = self._peak_mean
        self._peak_mean = peak if mean is None else mean + PEAK_MEAN_ALPHA * (peak - mean)
        if mean is None or peak < mean + STRESS_DB or t - self._last_stress < REFRACTORY_SECONDS:
            return
        self._last_stress = t
        self._nod(t, prominence=peak - mean - STRESS_DB)
        self._until_brow -= 1
        if self._until_brow == 0:
            self._until_brow = self._brow_gap()
            seconds = self._rng.uniform(*BROW_SECONDS)
            self._brows.append(_Pulse(t, seconds, self._rng.uniform(*BROW_RAISE)))

    def _nod(self, t: float, prominence: float) -> None:
        extra = NOD_EXTRA_DEGREES * min(prominence / NOD_FULL_EXTRA_DB, 1.0)
        degrees = self._rng.uniform(*NOD_DEGREES) + extra
        self._nods.append(_Pulse(t, self._rng.uniform(*NOD_SECONDS), degrees))

    def _brow_gap(self) -> int:
        return int(self._rng.integers(BROW_EVERY[0], BROW_EVERY[1] + 1))

    def _sinusoids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(freqs, phases, weights summing to 1) of one slow sway component."""
        low, high = SWAY_BAND_HZ
        freqs = self._rng.uniform(low, high, SWAY_PARTIALS)
        phases = self._rng.uniform(0.0, 2.0 * math.pi, SWAY_PARTIALS)
        weights = self._rng.uniform(0.5, 1.0, SWAY_PARTIALS)
        return freqs, phases, weights / weights.sum()

    def _controls(self, t: float) -> FaceControls:
        self._nods = [p for p in self._nods if not p.over(t)]
        self._brows = [p for p in self._brows if not p.over(t)]
        brow = sum((p.at(t) for p in self._brows), 0.0)
        sway = {
            name: _ease(self._engage) * peak * self._sway_at(name, t)
            for name, peak in SWAY_DEGREES.items()
        }
        return FaceControls(
            head_pitch=-sum((p.at(t) for p in self._nods), 0.0),
            brow_left=brow,
            brow_right=brow,
            **sway,
        ).clamped()

    def _sway_at(self, name: str, t: float) -> float:
        freqs, phases, weights = self._sway[name]
        return float(weights @ np.sin(2.0 * math.pi * freqs * t + phases))


def _level(loudness: float) -> float:
    return FLOOR_DB if math.isnan(loudness) else max(float(loudness), FLOOR_DB)
