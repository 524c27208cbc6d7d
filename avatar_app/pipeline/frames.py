"""What flows between the stages, each stamped on the one monotonic clock (``time.monotonic_ns``).

sound --AudioChunk--> speech --SpokenFrame--> mixer (+ webcam face) --TickControls--> renderer
--RenderedFrame--> sinks. ``heard_ns`` is the capture time of the newest sound that shaped a
frame, ``seen_ns`` that of the webcam frame; the latency a user sees is measured from them.
``shows_ns`` is the capture time of the sound whose mouth a frame shows (``heard_ns`` minus the
lookahead): sound played or recorded that much before a frame is in step with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engines.controls import FaceControls


@dataclass(frozen=True)
class AudioChunk:
    """``samples``: float32 in -1..1 at ``rate``, mono [n] (or [n, channels] for the sound a
    recording gets); ``pts_ns``: capture time of the first sample."""

    samples: np.ndarray
    rate: int
    pts_ns: int

    @property
    def duration_ns(self) -> int:
        """How long the chunk lasts, in nanoseconds."""
        return len(self.samples) * 1_000_000_000 // self.rate


@dataclass(frozen=True)
class SpokenFrame:
    """Speech's motion for the video frame at ``time`` seconds of sound: ``life`` (idle life
    and speech-linked nods) and the speech ``mouth``, as the mixer takes them."""

    time: float
    life: FaceControls
    mouth: FaceControls
    heard_ns: int | None = None
    shows_ns: int | None = None  # capture time of the sound at ``time``: what the mouth shows


@dataclass(frozen=True)
class TickControls:
    """What one tick shows, with the capture times of the sound and webcam frame behind it."""

    controls: FaceControls
    heard_ns: int | None = None
    seen_ns: int | None = None


@dataclass(frozen=True)
class RenderedFrame:
    """A finished HxWx3 uint8 RGB frame for the tick due at ``due_ns``."""

    rgb: np.ndarray
    due_ns: int
    heard_ns: int | None = None
    seen_ns: int | None = None
    shows_ns: int | None = None  # capture time of the sound whose mouth the frame shows

    @property
    def shaped_ns(self) -> int:
        """Capture time of the newest sound behind the frame, else when it was due."""
        return self.due_ns if self.heard_ns is None else self.heard_ns


class AudioSource(Protocol):
    """A microphone or a file played in real time (``avatar_app.live.audio_source``)."""

    # Sees the sound as captured (``recording_format``, [n, channels]), on the capture thread.
    capture_tap: Callable[[AudioChunk], None] | None

    @property
    def status(self) -> str: ...  # "running", "reconnecting" or "stopped"
    @property
    def silent(self) -> bool: ...  # running, but only digital silence or nothing comes
    @property
    def recording_format(self) -> tuple[int, int]: ...  # (rate, channels) to record at

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def read(self, timeout: float | None = None) -> AudioChunk | None: ...


class FrameSink(Protocol):
    """Where rendered frames go: the virtual camera, a recording, a preview window.

    ``submit`` runs on the render thread and must not block; ``stop`` is idempotent.
    """

    def submit(self, frame: RenderedFrame) -> None: ...
    def stop(self) -> None: ...
