"""A talking head's full motion per video frame: the speech mouth over idle life and
speech-linked nods and brow raises. Offline rendering and the live session both use it."""

from __future__ import annotations

from engines.controls import FaceControls
from engines.motion.idle import IdleMotion
from engines.motion.layers import layer, with_mouth
from engines.motion.prosody import ProsodyMotion
from engines.speech.stream import SpeechFrame


class TalkingMotion:
    """Call ``controls`` once per video frame, in order."""

    def __init__(self, fps: float, seed: int = 0, idle_energy: float = 1.0) -> None:
        self.idle = IdleMotion(seed=seed, energy=idle_energy)
        self.prosody = ProsodyMotion(fps=fps, seed=seed)

    def layers(self, speech: SpeechFrame) -> tuple[FaceControls, FaceControls]:
        """(life, mouth) for the mixer: idle life with nods, and the speech mouth."""
        idle = self.idle.controls_at(speech.time)
        nods = self.prosody.update(speech.time, speech.loudness_db, speech.voiced)
        return layer(idle, nods), speech.mouth.controls()

    def controls(self, speech: SpeechFrame) -> FaceControls:
        return with_mouth(*self.layers(speech))

    def reset(self) -> None:
        self.prosody.reset()
