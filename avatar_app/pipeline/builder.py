"""Builds every stage of the pipeline from one ``PipelineSettings``: the only place that wires
sources, speech, motion, renderer and sinks, for the live session and the offline commands."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from avatar_app.live.recorder import RecorderSink
from avatar_app.live.virtual_camera import VirtualCameraSink
from avatar_app.live.voice_out import VoiceOut
from avatar_app.live.webcam_motion import FrameSource, WebcamMotion
from avatar_app.pipeline.frames import AudioSource
from avatar_app.pipeline.portrait import ReadyPortrait, prepare
from avatar_app.pipeline.settings import PipelineSettings
from avatar_app.pipeline.stages import FaceStage, SpeechStage
from engines.motion.follow import FaceFollower
from engines.motion.idle import IdleMotion
from engines.motion.mixer import Mixer
from engines.motion.talking import TalkingMotion
from engines.speech.features import RATE
from engines.speech.stream import SpeechMotion

log = logging.getLogger(__name__)


def ready_portrait(settings: PipelineSettings) -> ReadyPortrait:
    """Load the photo (default: the bundled one), find the face, frame it, prepare the engine."""
    from avatar_app.framing import frame_face
    from avatar_app.portrait_file import bundled_portrait_path, load_portrait
    from avatar_app.upright_face import find_face
    from engines.renderer import create_renderer

    started = time.perf_counter()
    source = settings.portrait or bundled_portrait_path()
    photo = load_portrait(source)
    frame, landmarks = frame_face(photo, find_face(photo), settings.size, settings.fit)
    ready = prepare(create_renderer(settings.engine), frame, landmarks, source)
    log.debug(
        "Portrait %s ready for the %s engine at %dx%d in %.0f ms",
        source,
        ready.engine,
        *ready.size,
        (time.perf_counter() - started) * 1000,
    )
    return ready


def with_engine(ready: ReadyPortrait, engine: str) -> ReadyPortrait:
    """The same framed photo prepared for another engine (no new face detection)."""
    from engines.renderer import create_renderer

    return prepare(create_renderer(engine), ready.frame, ready.landmarks, ready.source)


def speech_stage(settings: PipelineSettings) -> SpeechStage:
    speech = SpeechMotion(
        settings.fps,
        lookahead=settings.lookahead,
        vad_aggressiveness=settings.voice_detection,
    )
    speech.set_push_to_talk(settings.push_to_talk != "key")  # "key": shut until it is held
    return SpeechStage(speech, TalkingMotion(settings.fps, seed=settings.seed))


def mixer(settings: PipelineSettings) -> Mixer:
    return Mixer(settings.mode)


def audio_source(settings: PipelineSettings) -> AudioSource:
    """The microphone by name (or the default), or a sound file played in a loop; not started."""
    from avatar_app.live.audio_source import FileAudioSource, MicrophoneSource

    if settings.audio_file is not None:
        return FileAudioSource(settings.audio_file, rate=RATE, loop=True)
    return MicrophoneSource(device=settings.microphone, rate=RATE)


def webcam(settings: PipelineSettings) -> WebcamMotion | None:
    """The webcam (or a video standing in for it) with its tracking; None when the mode or the
    settings need none. Not started."""
    from avatar_app.live.camera_source import CameraSource, VideoFileSource

    if not settings.uses_webcam:
        return None
    if settings.video_file is not None:
        camera: FrameSource = VideoFileSource(settings.video_file, loop=True)
    else:
        camera = CameraSource(None if settings.webcam == "auto" else settings.webcam)
    return WebcamMotion(camera, lambda: face_stage(mirror=True))


def face_stage(mirror: bool) -> FaceStage:
    """Tracking and calibration of one face; ``mirror`` for a selfie view (a live webcam)."""
    from engines.face.tracker import FaceTracker

    return FaceStage(FaceTracker(), FaceFollower(mirror=mirror))


def idle_life(settings: PipelineSettings) -> IdleMotion:
    """Blinks, breathing, saccades and sway where no speech drives the face."""
    return IdleMotion(seed=settings.seed)


def virtual_camera(settings: PipelineSettings) -> VirtualCameraSink | None:
    """The virtual camera at the output size, or None when it is off. Not started."""
    if settings.virtual_camera == "off":
        return None
    width, height = settings.size
    return VirtualCameraSink(
        width,
        height,
        settings.fps,
        device=None if settings.virtual_camera == "auto" else settings.virtual_camera,
        backend=settings.virtual_camera_backend,
        test_pattern=settings.test_pattern,
    )


def recorder(
    settings: PipelineSettings, path: Path, start_ns: int, sound: tuple[int, int]
) -> RecorderSink:
    """A recording of what the camera shows plus the sound, from ``start_ns`` on; ``sound`` is
    the (rate, channels) to record it at: the source's own (``AudioSource.recording_format``)."""
    width, height = settings.size
    rate, channels = sound
    return RecorderSink(
        path, width, height, settings.fps, start_ns, audio_rate=rate, audio_channels=channels
    )


def voice_out(settings: PipelineSettings) -> VoiceOut | None:
    """The virtual microphone the voice is delayed into, or None when it is off. Not started.

    It plays at 16 kHz: at the microphone's own rate (44.1/48 kHz) the voice came out of the
    sound server 40-80 ms later against the mouth than the delay it was given, which the
    end-to-end test (``test_the_call_hears_the_voice_in_step_with_the_mouth``) caught; not
    yet explained."""
    if settings.voice_out == "off":
        return None
    voice = VoiceOut(
        settings.voice_out,
        rate=RATE,
        offset_s=settings.voice_offset_ms / 1000,
        follows_gate=settings.voice_follows_gate,
    )
    voice.set_gate(settings.push_to_talk != "key")
    return voice
