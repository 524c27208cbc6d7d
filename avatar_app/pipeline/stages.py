"""The compute stages between sources and renderer, the same for live and offline use.

``FaceStage`` turns a video frame into the face's controls (tracking plus calibration).
``SpeechStage`` turns sound into one ``SpokenFrame`` per video frame (the streaming lip-sync
core, idle life and speech-linked nods). ``SoundTimeline`` feeds it capture-stamped chunks in
a live session and keeps sound time on the monotonic clock: gaps become silence, and sound
that arrives for a stretch already covered (a burst after a stall) is dropped, so the mouth
never runs ahead of or behind the clock. The capture times its frames carry come from the
chunk that completed them, not from the timeline's own count, which may sit up to
``OVERLAP_TOLERANCE_NS`` off: so the latency measured is the latency there is.
"""

from __future__ import annotations

import numpy as np

from avatar_app.pipeline.frames import AudioChunk, SpokenFrame
from engines.controls import FaceControls
from engines.face.tracker import FaceTracker
from engines.motion.follow import FaceFollower
from engines.motion.talking import TalkingMotion
from engines.speech.features import RATE
from engines.speech.stream import SpeechFrame, SpeechMotion

OVERLAP_TOLERANCE_NS = 5_000_000
"""Sound up to this much earlier than the timeline is still taken (capture-time rounding)."""
MIN_SILENCE = RATE // 200
"""Gaps shorter than this (5 ms) are not filled.

Both are small on purpose: the timeline only feeds the mouth, which a few milliseconds cut or
added never show, while a looser fit would leave sound time off the capture clock after an
outage by up to that much, and so every frame's wait for its tick (and the latency) changed."""


class SpeechStage:
    """Sound (16 kHz mono float) -> ``SpokenFrame``s; see the module docstring."""

    def __init__(self, speech: SpeechMotion, talking: TalkingMotion) -> None:
        self.speech = speech
        self.talking = talking

    def push(self, samples: np.ndarray, origin_ns: int | None = None) -> list[SpokenFrame]:
        """The frames ``samples`` complete; ``origin_ns`` is the capture time of sound time 0."""
        return [self._spoken(f, origin_ns) for f in self.speech.push(samples)]

    def flush(self) -> list[SpokenFrame]:
        """End of the sound: every remaining frame."""
        return [self._spoken(f, None) for f in self.speech.flush()]

    def set_push_to_talk(self, is_open: bool) -> None:
        self.speech.set_push_to_talk(is_open)

    def set_voice_detection(self, aggressiveness: int | None) -> None:
        self.speech.set_voice_detection(aggressiveness)

    def _spoken(self, frame: SpeechFrame, origin_ns: int | None) -> SpokenFrame:
        life, mouth = self.talking.layers(frame)
        if origin_ns is None:
            return SpokenFrame(frame.time, life, mouth)
        heard = origin_ns + int(frame.audio_until * 1e9)
        return SpokenFrame(frame.time, life, mouth, heard, origin_ns + int(frame.time * 1e9))


class SoundTimeline:
    """Feeds a ``SpeechStage`` from capture-stamped chunks; see the module docstring."""

    def __init__(self, stage: SpeechStage) -> None:
        self.stage = stage
        self.origin_ns: int | None = None  # capture time of sound time 0
        self.fed = 0  # samples pushed so far

    @property
    def position_ns(self) -> int | None:
        """Capture time of the next sample the stage expects."""
        if self.origin_ns is None:
            return None
        return self.origin_ns + self.fed * 1_000_000_000 // RATE

    def chunk(self, chunk: AudioChunk) -> list[SpokenFrame]:
        """Frames completed by ``chunk`` (after any silence before it)."""
        frames = self.silence_until(chunk.pts_ns)
        samples = np.asarray(chunk.samples, np.float32)
        late_ns = (self.position_ns or chunk.pts_ns) - chunk.pts_ns
        skip = 0
        if late_ns > OVERLAP_TOLERANCE_NS:  # this stretch was already covered: keep the rest
            skip = min(samples.size, int(late_ns * RATE // 1_000_000_000))
            samples = samples[skip:]
        first_ns = chunk.pts_ns + skip * 1_000_000_000 // RATE  # capture of the first kept
        return frames + self._push(samples, first_ns - self.fed * 1_000_000_000 // RATE)

    def silence_until(self, until_ns: int) -> list[SpokenFrame]:
        """Silence from the timeline's position up to ``until_ns`` (a lost or stalled source)."""
        if self.origin_ns is None:
            self.origin_ns = until_ns
            return []
        missing = (until_ns - self.origin_ns) * RATE // 1_000_000_000 - self.fed
        if missing <= MIN_SILENCE:
            return []
        return self._push(np.zeros(int(missing), np.float32))

    def _push(self, samples: np.ndarray, origin_ns: int | None = None) -> list[SpokenFrame]:
        """Push ``samples``; ``origin_ns``: the capture time their sound time 0 maps to (by
        default the timeline's own)."""
        self.fed += samples.size
        return self.stage.push(samples, self.origin_ns if origin_ns is None else origin_ns)


class FaceStage:
    """A video frame -> the face's ``FaceControls`` relative to the resting face, or None.

    The same for a live webcam (``mirror=True``, a selfie view) and a recorded clip.
    """

    def __init__(self, tracker: FaceTracker, follower: FaceFollower) -> None:
        self.tracker = tracker
        self.follower = follower
        self._last_ms = -1

    def track(self, rgb: np.ndarray, t: float, may_calibrate: bool = True) -> FaceControls | None:
        """The controls for the frame at ``t`` seconds (rising from frame to frame)."""
        self._last_ms = max(self._last_ms + 1, round(t * 1000))  # video mode needs rising times
        face = self.tracker.track(rgb, self._last_ms)
        return self.follower.update(t, face, may_calibrate)

    def set_neutral(self) -> None:
        """The next settled face becomes the resting face."""
        self.follower.set_neutral()

    def close(self) -> None:
        self.tracker.close()
