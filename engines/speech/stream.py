"""The synchronous speech-to-mouth core shared by offline rendering and the live session.

``push`` takes 16 kHz mono audio in any chunk size (10-20 ms in live use) and returns the video
frames whose mouth is now known. Everything runs per 10 ms feature frame in order, so a file
pushed whole and the same file pushed in 10 ms chunks give the same frames.

Timing: video frame ``k`` shows time ``k / fps``. It is emitted once audio up to
``k / fps + lookahead`` has arrived; that lookahead is the delay a viewer could notice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engines.speech.articulation import BILABIAL, Articulator, Mouth
from engines.speech.features import BANDS, HOP, RATE, WINDOW, FeatureStream
from engines.speech.gate import VAD_FRAME, VoiceGate
from engines.speech.model import LipSyncModel

DEFAULT_LOOKAHEAD = 0.06


@dataclass(frozen=True)
class SpeechFrame:
    """The mouth for video frame ``index`` at ``time`` seconds.

    ``loudness_db`` (dBFS of the speech around that time) and ``voiced`` feed speech-linked
    head motion; ``audio_until`` is the end, in seconds of input, of the newest audio that
    shaped this frame (for latency measurement).
    """

    index: int
    time: float
    mouth: Mouth
    loudness_db: float
    voiced: bool
    audio_until: float


class SpeechMotion:
    """Streaming audio -> mouth per video frame; see the module docstring."""

    CHUNK = VAD_FRAME  # preferred chunk: 10 ms

    def __init__(
        self,
        fps: float,
        model: LipSyncModel | None = None,
        lookahead: float = DEFAULT_LOOKAHEAD,
        vad_aggressiveness: int | None = 2,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.model = model or LipSyncModel()
        # The network's own lookahead, plus up to one feature hop: a video frame between two
        # feature frames waits for the later one.
        minimum = self.model.lookahead_seconds + HOP / RATE
        if lookahead < minimum - 1e-9:
            raise ValueError(
                f"The lip-sync model needs at least {minimum * 1000:.1f} ms of lookahead; "
                f"{lookahead * 1000:.1f} ms was asked for."
            )
        # Frames of predictions beyond the current one that articulation may peek at.
        self.extra_frames = math.floor((lookahead - minimum) * RATE / HOP + 1e-9)
        self.lookahead = minimum + self.extra_frames * HOP / RATE
        self._gate = VoiceGate(vad_aggressiveness)
        self.reset()

    def reset(self) -> None:
        self._features = FeatureStream(self.model.initial_mean)
        self._feats = np.zeros((0, BANDS), np.float32)  # kept: CONTEXT past + pending frames
        self._feats_offset = 0  # index of _feats[0]
        self._predicted: list[tuple[np.ndarray, float]] = []  # (probs, jaw) not yet articulated
        self._predicted_offset = 0
        self._loudness: list[float] = []
        self._gates: list[float] = []
        self._vad_pending = np.zeros(0, np.float32)
        self._articulator = Articulator()
        self._gate.reset()
        self._mouths: list[Mouth] = []  # articulated frames not yet needed by video
        self._mouth_offset = 0
        self._next_video = 0
        self._gates_offset = 0  # VAD frame index of _gates[0] and _loudness[0]
        self._audio_samples = 0

    def set_push_to_talk(self, is_open: bool) -> None:
        """Open or close the push-to-talk gate; the mouth eases shut when it closes."""
        self._gate.push_to_talk_open = is_open

    @property
    def gate(self) -> float:
        """The voice gate now: 0 shut (silence, noise, push-to-talk released) to 1 open."""
        return self._gate.value

    def set_voice_detection(self, aggressiveness: int | None) -> None:
        """Voice detection strictness 0-3, or None for off (any sound moves the mouth)."""
        self._gate.set_aggressiveness(aggressiveness)

    def push(self, samples: np.ndarray) -> list[SpeechFrame]:
        """Feed 16 kHz mono float audio; returns the video frames completed by it."""
        audio = np.asarray(samples, np.float32).ravel()
        self._audio_samples += audio.size
        return self._process(audio)

    def flush(self) -> list[SpeechFrame]:
        """End of input: pad with silence and return every frame up to the end of the audio."""
        frames: list[SpeechFrame] = []
        last = max(0, math.ceil(self._audio_samples / RATE * self.fps - 1e-9))
        padding = np.zeros(HOP, np.float32)
        while self._next_video < last:
            frames += self._process(padding)
        return [f for f in frames if f.index < last]

    def _process(self, audio: np.ndarray) -> list[SpeechFrame]:
        self._vad(audio)
        normalised = self._features.push(audio)[0]
        self._feats = np.vstack([self._feats, normalised])
        self._predict()
        self._articulate()
        return self._emit()

    def _vad(self, audio: np.ndarray) -> None:
        pending = np.concatenate([self._vad_pending, audio])
        whole = pending.size // VAD_FRAME
        for i in range(whole):
            frame = pending[i * VAD_FRAME : (i + 1) * VAD_FRAME]
            self._gates.append(self._gate.update(frame))
            level = float(np.mean(np.square(frame, dtype=np.float64)))
            self._loudness.append(10.0 * np.log10(level + 1e-10))
        self._vad_pending = pending[whole * VAD_FRAME :]

    def _predict(self) -> None:
        model = self.model
        total = self._feats_offset + len(self._feats)
        first = self._predicted_offset + len(self._predicted)
        last = total - model.lookahead  # frames whose lookahead has fully arrived
        if last <= first:
            return
        index = np.arange(first, last)
        offsets = np.arange(-model.context, model.lookahead + 1)
        rows = np.clip(index[:, None] + offsets[None, :], 0, None) - self._feats_offset
        prediction = model.predict(self._feats[rows])
        self._predicted += list(zip(prediction.visemes, prediction.jaw.tolist(), strict=True))
        keep_from = max(0, last - model.context - self._feats_offset)
        # Frame 0 stands in for the frames before the start, so keep it until it is out of reach.
        if last - model.context > 0:
            self._feats = self._feats[keep_from:]
            self._feats_offset += keep_from

    def _articulate(self) -> None:
        extra = self.extra_frames
        while len(self._predicted) > extra:
            index = self._predicted_offset
            probs, jaw = self._predicted[0]
            future = max(float(p[BILABIAL]) for p, _ in self._predicted[: extra + 1])
            # The 10 ms VAD frame that holds this feature frame's centre.
            centre_sample = index * HOP + WINDOW // 2
            vad_index = min(centre_sample // VAD_FRAME, self._vad_frames - 1) - self._gates_offset
            if vad_index < 0:
                break
            gate = self._gates[vad_index]
            loudness = self._loudness_around(vad_index)
            self._mouths.append(self._articulator.step(probs, future, jaw, loudness, gate))
            self._predicted.pop(0)
            self._predicted_offset += 1

    def _loudness_around(self, vad_index: int) -> float:
        window = self._loudness[max(0, vad_index - 2) : vad_index + 1]
        return float(np.mean(window)) if window else -100.0

    def _emit(self) -> list[SpeechFrame]:
        frames: list[SpeechFrame] = []
        articulated = self._mouth_offset + len(self._mouths)
        while True:
            t = self._next_video / self.fps
            # Interpolate between the two feature frames around t; the later must exist.
            position = (t * RATE - WINDOW / 2) / HOP
            upper = max(0, math.ceil(position))
            if upper >= articulated:
                break
            lower = max(0, upper - 1)
            weight = float(np.clip(position - lower, 0.0, 1.0)) if upper > lower else 1.0
            a = self._mouths[lower - self._mouth_offset]
            b = self._mouths[upper - self._mouth_offset]
            mouth = Mouth(
                *(va + weight * (vb - va) for va, vb in zip(_values(a), _values(b), strict=True))
            )
            vad_index = min(int(t * RATE) // VAD_FRAME, self._vad_frames - 1) - self._gates_offset
            audio_until = (upper + self.extra_frames + self.model.lookahead) * HOP + WINDOW
            frames.append(
                SpeechFrame(
                    index=self._next_video,
                    time=t,
                    mouth=mouth,
                    loudness_db=self._loudness_around(vad_index),
                    voiced=vad_index >= 0 and self._gates[vad_index] > 0.5,
                    audio_until=min(audio_until, self._audio_samples) / RATE,
                )
            )
            self._next_video += 1
        # Drop mouths no future video frame can need.
        position = (self._next_video / self.fps * RATE - WINDOW / 2) / HOP
        drop = max(0, math.ceil(position) - 1 - self._mouth_offset)
        drop = min(drop, len(self._mouths))
        del self._mouths[:drop]
        self._mouth_offset += drop
        self._trim_gates()
        return frames

    @property
    def _vad_frames(self) -> int:
        return self._gates_offset + len(self._gates)

    def _trim_gates(self) -> None:
        """Forget VAD frames older than anything still to be articulated or shown."""
        oldest_feature = self._predicted_offset * HOP // VAD_FRAME
        oldest_video = int(self._next_video / self.fps * RATE) // VAD_FRAME
        drop = min(oldest_feature, oldest_video) - 3 - self._gates_offset
        if drop > 0:
            del self._gates[:drop]
            del self._loudness[:drop]
            self._gates_offset += drop


def _values(mouth: Mouth) -> tuple[float, float, float, float]:
    return (mouth.jaw_open, mouth.mouth_wide, mouth.mouth_round, mouth.lip_press)
