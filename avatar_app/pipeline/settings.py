"""The one settings object every entry point builds its pipeline from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engines.motion.mixer import Policy
from engines.speech.stream import DEFAULT_LOOKAHEAD

Fit = Literal["fill", "fit"]
PushToTalk = Literal["vad", "always", "key"]
"""When the mouth may move: on detected voice, on any sound, or while a key is held."""


@dataclass(frozen=True)
class PipelineSettings:
    """Portrait, motion and sources/sinks; offline commands use the first two groups only."""

    # The picture.
    portrait: Path | None = None  # None: the bundled portrait
    size: tuple[int, int] = (1280, 720)
    fit: Fit = "fill"
    fps: int = 30
    engine: str = "auto"
    # Motion.
    mode: Policy = "hybrid"  # with a webcam; without one every mode is "audio"
    lookahead: float = DEFAULT_LOOKAHEAD
    vad_aggressiveness: int = 2
    push_to_talk: PushToTalk = "vad"
    seed: int = 0
    # Live sources and sinks.
    microphone: str | None = None  # None: the system's default input
    audio_file: Path | None = None  # played in a loop instead of a microphone
    webcam: str = "off"  # a name, a /dev/videoN, "auto" or "off"
    video_file: Path | None = None  # followed in a loop instead of a webcam
    virtual_camera: str = "auto"  # "auto", "off" or a device such as /dev/video9
    virtual_camera_backend: str | None = None  # a pyvirtualcam backend name; None: the OS's
    test_pattern: bool = False
    voice_out: str = "off"  # the virtual microphone: "auto", "off" or an output's name
    voice_offset_ms: float = 0.0  # added to the measured picture delay (a call app's buffering)
    voice_follows_gate: bool = True  # push-to-talk and mute silence the voice too

    @property
    def voice_detection(self) -> int | None:
        """The voice gate's strictness, or None when any sound moves the mouth."""
        return None if self.push_to_talk == "always" else self.vad_aggressiveness

    @property
    def uses_webcam(self) -> bool:
        """Whether a webcam (or a video standing in for it) is opened and tracked."""
        has_camera = self.webcam != "off" or self.video_file is not None
        return has_camera and self.mode != "audio"
