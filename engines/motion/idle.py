"""Idle life for a silent portrait: blinks, breathing, gaze saccades and micro sway.

``IdleMotion.controls_at(t)`` is a pure function of ``(seed, t)``. Breathing and sway are sums
of sinusoids with seeded frequencies and phases. Blinks and saccades are random events, drawn
per fixed time block from a generator seeded with ``(seed, stream, block)`` and continuing
from where the block before left off: any block can be rebuilt on demand, so queries may come
in any order, and only a few blocks stay cached however long the session runs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from engines.controls import FaceControls

BLOCK_SECONDS = 30.0
"""Length of one event block; much longer than any gap between events, so no block is empty
and a time only ever needs its own block and the one before."""
CACHED_BLOCKS = 4

# Blinks. Interval = min + gamma: mean about 3.7 s, almost all within 1.5-8 s.
BLINK_MIN_INTERVAL = 1.5
BLINK_MAX_INTERVAL = 8.0
BLINK_GAMMA = (2.0, 1.1)  # shape, scale in seconds
DOUBLE_BLINK_P = 0.1
DOUBLE_BLINK_GAP = (0.35, 0.5)  # eyes open between the two blinks of a double, seconds
# Closing is fast, opening slower. The closed hold is longer than a 25 fps frame, so every
# blink shows at least one fully closed frame.
BLINK_CLOSE = (0.030, 0.040)
BLINK_HOLD = (0.042, 0.050)
BLINK_OPEN = (0.060, 0.080)
BLINK_MAX_LAG = 0.008  # the second eye follows the first by at most this, seconds
BLINK_MAX_SPAN = BLINK_CLOSE[1] + BLINK_HOLD[1] + BLINK_OPEN[1] + BLINK_MAX_LAG

# Saccades: fixations of 0.4-2.5 s (mean about 1.1 s), then a 40 ms jump.
FIXATION_MIN = 0.4
FIXATION_MAX = 2.5
FIXATION_GAMMA = (2.0, 0.35)
SACCADE_SECONDS = 0.04
GAZE_CENTRE_P = 0.6  # share of saccades that return near the centre
GAZE_CENTRE_SD = 0.03
GAZE_AWAY_SD = (0.12, 0.07)  # x, y
GAZE_MAX = 0.25

# Breathing: 12-16 breaths a minute, barely visible.
BREATHS_PER_MINUTE = (12.0, 16.0)
BREATH_HEAD_Y = 0.004  # face widths; breathing in lifts the head (y is down)
BREATH_PITCH = 0.25  # degrees
BREATH_SCALE = 0.0015
BREATH_HARMONIC = 0.2

# Micro sway: band-limited noise as a sum of sinusoids; the peak never exceeds the bound.
SWAY_BAND_HZ = (0.04, 0.35)
SWAY_PARTIALS = 5
SWAY_BOUNDS = {"head_yaw": 1.5, "head_pitch": 1.2, "head_roll": 1.0, "head_x": 0.006}

_STREAM_SHAPE, _STREAM_BLINKS, _STREAM_SACCADES = 0, 1, 2


def _natural(n: int) -> int:
    """Map any int to a distinct non-negative one (numpy seeds must not be negative)."""
    return 2 * n if n >= 0 else -2 * n - 1


def _ease(u: float) -> float:
    """Cosine ease in and out on 0..1, clamped outside."""
    return 0.5 - 0.5 * math.cos(math.pi * min(max(u, 0.0), 1.0))


Gap = Callable[[np.random.Generator], float]
Event = Callable[[np.random.Generator, float], list[list[float]]]


class _Schedule:
    """A seeded renewal process (events separated by random gaps), built per time block.

    Block ``k`` draws from its own generator, seeded with ``(seed, stream, k)``, from the
    first onset the blocks before it left over; those carried onsets (one float per block, a
    few kilobytes for a whole day) are all that is kept besides a few recent blocks. Events
    begin at t = 0.
    """

    def __init__(self, seed: int, stream: int, gap: Gap, event: Event) -> None:
        self._key = [_natural(seed), stream]
        self._gap = gap
        self._event = event
        self._onsets = [gap(np.random.default_rng([*self._key, 0]))]
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def around(self, t: float) -> np.ndarray:
        """Rows ``[onset, ...]`` of the block holding ``t`` and of the block before, by onset."""
        k = math.floor(t / BLOCK_SECONDS)
        if k < 0:
            return np.empty((0, 1))
        return np.concatenate([self._block(k - 1), self._block(k)]) if k else self._block(0)

    def _block(self, k: int) -> np.ndarray:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        while len(self._onsets) <= k:  # carry onsets forward through unseen blocks
            self._build(len(self._onsets) - 1)
        return self._build(k)

    def _build(self, k: int) -> np.ndarray:
        rng = np.random.default_rng([*self._key, k + 1])
        onset, end = self._onsets[k], (k + 1) * BLOCK_SECONDS
        rows: list[list[float]] = []
        while onset < end:
            rows.extend(self._event(rng, onset))
            onset += self._gap(rng)
        if len(self._onsets) == k + 1:
            self._onsets.append(onset)
        events = np.array(rows, dtype=np.float64)  # never empty: every gap < BLOCK_SECONDS
        self._cache[k] = events
        if len(self._cache) > CACHED_BLOCKS:
            self._cache.popitem(last=False)
        return events


def _blink_interval(rng: np.random.Generator) -> float:
    interval = BLINK_MIN_INTERVAL + rng.gamma(*BLINK_GAMMA)
    return float(min(interval, BLINK_MAX_INTERVAL))


def _blink_row(rng: np.random.Generator, onset: float) -> list[float]:
    """[onset, close, hold, open, lag]; lag > 0 delays the right eye, < 0 the left."""
    return [
        onset,
        rng.uniform(*BLINK_CLOSE),
        rng.uniform(*BLINK_HOLD),
        rng.uniform(*BLINK_OPEN),
        rng.uniform(-BLINK_MAX_LAG, BLINK_MAX_LAG),
    ]


def _blink(rng: np.random.Generator, onset: float) -> list[list[float]]:
    """One blink, or now and then a double blink."""
    first = _blink_row(rng, onset)
    if rng.random() >= DOUBLE_BLINK_P:
        return [first]
    return [first, _blink_row(rng, onset + sum(first[1:4]) + rng.uniform(*DOUBLE_BLINK_GAP))]


def _closure(x: float, close: float, hold: float, open_: float) -> float:
    """Eyelid closure ``x`` seconds after a blink's onset: 0 open, 1 closed."""
    if x <= 0.0 or x >= close + hold + open_:
        return 0.0
    if x < close:
        return _ease(x / close)
    if x < close + hold:
        return 1.0
    return 1.0 - _ease((x - close - hold) / open_)


def _gaze_target(rng: np.random.Generator) -> tuple[float, float]:
    if rng.random() < GAZE_CENTRE_P:
        x, y = rng.normal(0.0, GAZE_CENTRE_SD, size=2)
    else:
        x, y = rng.normal(0.0, 1.0, size=2) * GAZE_AWAY_SD
    radius = math.hypot(x, y)
    if radius > GAZE_MAX:
        x, y = x * GAZE_MAX / radius, y * GAZE_MAX / radius
    return float(x), float(y)


def _saccade(rng: np.random.Generator, onset: float) -> list[list[float]]:
    """One saccade as [onset, target_x, target_y]."""
    return [[onset, *_gaze_target(rng)]]


def _fixation(rng: np.random.Generator) -> float:
    seconds = FIXATION_MIN + rng.gamma(*FIXATION_GAMMA)
    return float(min(seconds, FIXATION_MAX))


def _breath_wave(phase: float) -> float:
    """-1 (breathed out) .. 1 (breathed in); the second harmonic makes it uneven."""
    return (math.sin(phase) + BREATH_HARMONIC * math.sin(2.0 * phase)) / _BREATH_PEAK


_PHASES = np.linspace(0.0, 2.0 * math.pi, 4096)
_BREATH_PEAK = float(np.max(np.sin(_PHASES) + BREATH_HARMONIC * np.sin(2.0 * _PHASES)))


class _Sinusoids:
    """A seeded sum of sinusoids in a frequency band, peak value at most ``bound``."""

    def __init__(self, rng: np.random.Generator, bound: float) -> None:
        low, high = SWAY_BAND_HZ
        self.freqs = np.exp(rng.uniform(math.log(low), math.log(high), SWAY_PARTIALS))
        self.phases = rng.uniform(0.0, 2.0 * math.pi, SWAY_PARTIALS)
        weights = rng.uniform(0.5, 1.0, SWAY_PARTIALS) / np.sqrt(self.freqs)  # more slow motion
        self.amps = bound * weights / weights.sum()

    def __call__(self, t: float) -> float:
        return float(self.amps @ np.sin(2.0 * math.pi * self.freqs * t + self.phases))


class IdleMotion:
    """Natural life for a silent portrait, a pure function of ``(seed, t)``.

    ``energy`` scales every amplitude but the blinks: 0 keeps the head and gaze still.
    """

    def __init__(self, seed: int = 0, energy: float = 1.0) -> None:
        if not (math.isfinite(energy) and energy >= 0.0):
            raise ValueError(f"energy must be a finite number >= 0, got {energy!r}")
        self.seed = seed
        self.energy = float(energy)
        shape = np.random.default_rng([_natural(seed), _STREAM_SHAPE])
        self._sway = {name: _Sinusoids(shape, bound) for name, bound in SWAY_BOUNDS.items()}
        self._breath_hz = shape.uniform(*BREATHS_PER_MINUTE) / 60.0
        self._breath_phase = shape.uniform(0.0, 2.0 * math.pi)
        self._blinks = _Schedule(seed, _STREAM_BLINKS, _blink_interval, _blink)
        self._saccades = _Schedule(seed, _STREAM_SACCADES, _fixation, _saccade)

    def controls_at(self, t: float) -> FaceControls:
        """The idle FaceControls at ``t`` seconds (any finite time, in any order)."""
        if not math.isfinite(t):
            raise ValueError(f"t must be a finite number of seconds, got {t!r}")
        e = self.energy
        breath = self._breath(t)
        gaze_x, gaze_y = self._gaze(t)
        blink_left, blink_right = self._blink(t)
        sway = {name: e * wave(t) for name, wave in self._sway.items()}
        return FaceControls(
            head_yaw=sway["head_yaw"],
            head_pitch=sway["head_pitch"] + e * BREATH_PITCH * breath,
            head_roll=sway["head_roll"],
            head_x=sway["head_x"],
            head_y=-e * BREATH_HEAD_Y * breath,
            head_scale=1.0 + e * BREATH_SCALE * breath,
            gaze_x=e * gaze_x,
            gaze_y=e * gaze_y,
            blink_left=blink_left,
            blink_right=blink_right,
        ).clamped()

    def _breath(self, t: float) -> float:
        return _breath_wave(2.0 * math.pi * self._breath_hz * t + self._breath_phase)

    def _blink(self, t: float) -> tuple[float, float]:
        events = self._blinks.around(t)
        recent = events[(events[:, 0] <= t) & (events[:, 0] > t - BLINK_MAX_SPAN)]
        left = right = 0.0
        for onset, close, hold, open_, lag in recent:
            x = t - onset
            left = max(left, _closure(x - max(-lag, 0.0), close, hold, open_))
            right = max(right, _closure(x - max(lag, 0.0), close, hold, open_))
        return left, right

    def _gaze(self, t: float) -> tuple[float, float]:
        events = self._saccades.around(t)
        i = int(np.searchsorted(events[:, 0], t, side="right")) - 1
        if i < 0:
            return 0.0, 0.0
        onset, x, y = events[i]
        px, py = events[i - 1, 1:] if i > 0 else (0.0, 0.0)
        w = _ease((t - onset) / SACCADE_SECONDS)
        return float(px + (x - px) * w), float(py + (y - py) * w)
