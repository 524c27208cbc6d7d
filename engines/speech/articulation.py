"""From per-frame viseme probabilities to a mouth that moves like a speaker's.

Coarticulation rules, per 10 ms frame:
- a viseme is held for at least ``HOLD_SECONDS`` unless a rival is very sure, so the lips do not
  flap between near-equal guesses;
- lips close for m/b/p as soon as a bilabial shows up anywhere in the lookahead (anticipation);
- the jaw follows the network's continuous opening, scaled by loudness, and the lips ease
  toward each target with fast attack and slower release;
- the result is multiplied by the (eased) voice gate, so the mouth eases shut when it closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.controls import FaceControls
from engines.speech.features import FRAME_RATE
from engines.speech.visemes import VISEME_INDEX, VISEMES, mouth_shape

HOLD_SECONDS = 0.1
SWITCH_NOW = 0.85  # a rival this sure replaces the held viseme at once
SILENCE = VISEME_INDEX["sil"]
BILABIAL = VISEME_INDEX["PP"]
ATTACK_SECONDS = 0.018
RELEASE_SECONDS = 0.045
PRESS_ATTACK_SECONDS = 0.012
PRESS_RELEASE_SECONDS = 0.03
LOUDNESS_RANGE_DB = 30.0  # the jaw scales over this range below the recent speech peak
PEAK_DECAY_DB_PER_SECOND = 3.0

# [15, 3]: mouth_wide, mouth_round, jaw_open of each viseme's shape.
_SHAPES = np.array(
    [
        [mouth_shape(v).mouth_wide, mouth_shape(v).mouth_round, mouth_shape(v).jaw_open]
        for v in VISEMES
    ]
)


def _step(seconds: float) -> float:
    return float(1.0 - np.exp(-1.0 / (seconds * FRAME_RATE)))


@dataclass(frozen=True)
class Mouth:
    jaw_open: float
    mouth_wide: float
    mouth_round: float
    lip_press: float

    def controls(self) -> FaceControls:
        return FaceControls(
            jaw_open=self.jaw_open,
            mouth_wide=self.mouth_wide,
            mouth_round=self.mouth_round,
            lip_press=self.lip_press,
        )


class Articulator:
    """Stateful: call ``step`` once per feature frame, in order."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._held = SILENCE
        self._held_for = 0
        self._state = np.zeros(4)  # jaw, wide, round, press
        self._peak_db = -30.0

    def step(
        self, probs: np.ndarray, future_bilabial: float, jaw: float, loudness_db: float, gate: float
    ) -> Mouth:
        """``probs`` [15] for this frame; ``future_bilabial`` the highest m/b/p probability in
        this frame and the lookahead; ``jaw`` the network's opening; ``gate`` 0..1."""
        self._hold(probs)
        spoken = 1.0 - float(probs[SILENCE])
        blend = 0.5 * _SHAPES[self._held] + 0.5 * (probs @ _SHAPES)
        press = float(np.clip((future_bilabial - 0.3) / 0.4, 0.0, 1.0))
        level = self._level(loudness_db, gate)
        target = np.array(
            [jaw * (0.5 + 0.5 * level) * (1.0 - press), blend[0] * spoken, blend[1] * spoken, press]
        )
        rising = target > self._state
        step = np.where(rising, _step(ATTACK_SECONDS), _step(RELEASE_SECONDS))
        step[3] = _step(PRESS_ATTACK_SECONDS if rising[3] else PRESS_RELEASE_SECONDS)
        self._state = self._state + step * (target - self._state)
        # The gate acts after the smoothing, so releasing push-to-talk shuts the mouth at the
        # gate's own pace rather than the slower sum of both.
        return Mouth(*(float(v) * gate for v in self._state))

    def _hold(self, probs: np.ndarray) -> None:
        best = int(np.argmax(probs))
        self._held_for += 1
        if best == self._held:
            return
        if self._held_for >= HOLD_SECONDS * FRAME_RATE or probs[best] >= SWITCH_NOW:
            self._held = best
            self._held_for = 0

    def _level(self, loudness_db: float, gate: float) -> float:
        """0..1: how loud this frame is against the speaker's recent peak."""
        self._peak_db -= PEAK_DECAY_DB_PER_SECOND / FRAME_RATE
        if gate > 0.5:
            self._peak_db = max(self._peak_db, loudness_db)
        return float(
            np.clip((loudness_db - self._peak_db + LOUDNESS_RANGE_DB) / LOUDNESS_RANGE_DB, 0, 1)
        )
