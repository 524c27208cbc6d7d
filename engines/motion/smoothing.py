"""Jitter removal for tracked motion: the One Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A low-pass filter whose cutoff rises with the signal's speed: at rest it smooths hard (little
jitter), in fast motion it follows closely (little lag). ``ControlsSmoother`` runs one filter
per FaceControls field with parameters tuned per field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engines.controls import FaceControls


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter on a float signal sampled at increasing times (seconds).

    ``min_cutoff`` (Hz): cutoff at rest; lower means less jitter, more lag when slow.
    ``beta``: how fast the cutoff rises with speed (per unit of the signal per second).
    ``d_cutoff`` (Hz): cutoff of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("cutoffs must be > 0 and beta >= 0")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._t: float | None = None
        self._x = 0.0
        self._dx = 0.0

    def __call__(self, t: float, x: float) -> float:
        """The filtered value of sample ``x`` taken at time ``t``."""
        x = float(x)
        if self._t is None or not math.isfinite(self._x):
            self._t, self._x, self._dx = t, x, 0.0
            return x
        dt = t - self._t
        if dt <= 0:  # a repeated or out-of-order time: keep the state, return the estimate
            return self._x
        dx = (x - self._x) / dt
        self._dx += _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * abs(self._dx)
        self._x += _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x


@dataclass(frozen=True)
class EuroParams:
    min_cutoff: float
    beta: float
    d_cutoff: float = 1.0


# Per-field parameters. Head angles are in degrees, so their beta is per degree/second; the
# rest are in control units. Blinks last ~150 ms, so they are barely filtered or they would be
# lost; the jaw moves with speech and is filtered moderately.
_ANGLE = EuroParams(min_cutoff=0.5, beta=0.1)
_POSITION = EuroParams(min_cutoff=0.6, beta=2.0)
_EXPRESSION = EuroParams(min_cutoff=1.5, beta=1.0)
DEFAULT_PARAMS: dict[str, EuroParams] = {
    "head_yaw": _ANGLE,
    "head_pitch": _ANGLE,
    "head_roll": _ANGLE,
    "head_x": _POSITION,
    "head_y": _POSITION,
    "head_scale": _POSITION,
    "jaw_open": EuroParams(min_cutoff=3.0, beta=2.0),
    "mouth_wide": _EXPRESSION,
    "mouth_round": _EXPRESSION,
    "lip_press": _EXPRESSION,
    "smile": _EXPRESSION,
    "brow_left": _EXPRESSION,
    "brow_right": _EXPRESSION,
    "blink_left": EuroParams(min_cutoff=8.0, beta=20.0),
    "blink_right": EuroParams(min_cutoff=8.0, beta=20.0),
    "gaze_x": EuroParams(min_cutoff=1.5, beta=3.0),
    "gaze_y": EuroParams(min_cutoff=1.5, beta=3.0),
}


class ControlsSmoother:
    """One Euro filtering of every FaceControls field, with per-field parameters."""

    def __init__(self, params: dict[str, EuroParams] | None = None) -> None:
        chosen = {**DEFAULT_PARAMS, **(params or {})}
        self._filters = {
            name: OneEuroFilter(p.min_cutoff, p.beta, p.d_cutoff)
            for name, p in ((n, chosen[n]) for n in FaceControls.NAMES)
        }

    def filter(self, t: float, controls: FaceControls) -> FaceControls:
        """The smoothed controls for ``controls`` observed at time ``t`` (seconds)."""
        values = {n: f(t, getattr(controls, n)) for n, f in self._filters.items()}
        return FaceControls(**values).clamped()

    def reset(self) -> None:
        """Start afresh (after the face was lost, say): the next controls pass unchanged."""
        for f in self._filters.values():
            f.reset()
