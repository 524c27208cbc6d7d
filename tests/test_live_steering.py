"""Steering a live session: portrait, microphone, mode and push-to-talk change while frames keep
flowing to one virtual camera that is never closed; the builder is the only place that wires."""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from avatar_app.pipeline.session import (
    CommandFinished,
    LiveSession,
    SessionEvent,
    State,
    StateChanged,
    StatsUpdated,
)
from avatar_app.pipeline.settings import PipelineSettings
from engines.errors import PortraitError
from engines.face.landmarker import FaceLandmarker
from engines.speech.features import RATE
from tests.fake_camera import CountingBackend, registered
from tests.speech_audio import spoken

pyvirtualcam = pytest.importorskip("pyvirtualcam")

SIZE = (320, 240)
FPS = 30
BACKEND = "avatar-steering-test"


@pytest.fixture
def camera_backend() -> Iterator[type[CountingBackend]]:
    with registered(BACKEND) as backend:
        yield backend


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("steering")
    paths = {
        "speech": folder / "speech.wav",
        "other_speech": folder / "other.wav",
        "silence": folder / "silence.wav",
        "astronaut": folder / "astronaut.png",
        "mirrored": folder / "mirrored.png",
        "blank": folder / "blank.png",
    }
    for key, text in (("speech", "Hello there, how are you?"), ("other_speech", "Mama papa.")):
        audio, _ = spoken(text, pad=0.2)
        wavfile.write(paths[key], RATE, (audio * 32767).astype(np.int16))
    wavfile.write(paths["silence"], RATE, np.zeros(RATE, np.int16))
    Image.fromarray(astronaut).save(paths["astronaut"])
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(paths["mirrored"])
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(paths["blank"])
    return paths


def _settings(media: dict[str, Path], **changes: Any) -> PipelineSettings:
    settings = PipelineSettings(
        portrait=media["astronaut"],
        size=SIZE,
        fps=FPS,
        engine="mesh",
        audio_file=media["speech"],
        virtual_camera="auto",
        virtual_camera_backend=BACKEND,
    )
    return PipelineSettings(**{**settings.__dict__, **changes})


def _face_distance(landmarker: FaceLandmarker, rgb: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance (in face sizes) of the face found in ``rgb`` from ``reference`` points."""
    faces = landmarker.detect_all(rgb)
    assert faces, "no face on the frame"
    points = faces[0].points[:, :2]
    return float(np.linalg.norm(points - reference, axis=1).mean() / faces[0].size)


def test_a_live_session_is_steered_without_closing_the_camera(
    camera_backend: type[CountingBackend], media: dict[str, Path], landmarker: FaceLandmarker
) -> None:
    events: list[SessionEvent] = []
    session = LiveSession(_settings(media))
    session.subscribe(events.append)
    session.start()
    try:
        time.sleep(1.0)
        old = session.portrait
        assert old is not None
        session.reset_longest_gap()
        before = session.snapshot()
        session.set_portrait(media["mirrored"]).result(timeout=30)
        time.sleep(0.6)  # past the cross-fade
        swap = session.snapshot()
        # Every tick of the pacer is rendered or counted as dropped.
        delivered, dropped = swap.frames - before.frames, swap.dropped - before.dropped
        swap_fps = FPS * delivered / (delivered + dropped)
        new = session.portrait
        assert new is not None and new.source == media["mirrored"]
        shown = CountingBackend.last_frame()
        assert shown is not None

        session.set_audio_file(media["other_speech"]).result(timeout=30)
        session.set_mode("audio").result(timeout=30)
        session.set_push_to_talk(False)
        time.sleep(0.5)
        muted = [session.latest_spoken.mouth.jaw_open for _ in _ticks(1.0)]
        session.set_push_to_talk(True)
        talking = [session.latest_spoken.mouth.jaw_open for _ in _ticks(2.0)]
        with pytest.raises(PortraitError, match="No face"):
            session.set_portrait(media["blank"]).result(timeout=30)
        assert session.portrait is new  # a refused photo changes nothing
        final = session.snapshot()
    finally:
        session.stop()

    assert CountingBackend.opened == 1 and CountingBackend.closed == 1
    assert swap.longest_gap_ms <= 100.0, swap
    assert swap_fps >= 29.0, swap_fps
    assert final.frames >= 0.9 * FPS * final.seconds
    # After the fade the camera shows the new (mirrored) face, not the old one.
    new_points = new.landmarks.points[:, :2]
    old_points = old.landmarks.points[:, :2]
    assert _face_distance(landmarker, shown, new_points) < 0.05
    assert _face_distance(landmarker, shown, old_points) > 0.1
    assert max(muted) < 0.02 < 0.25 < max(talking)
    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states[:2] == [State.STARTING, State.LIVE] and states[-1] is State.STOPPED
    assert any(isinstance(e, StatsUpdated) for e in events)
    finished = [e for e in events if isinstance(e, CommandFinished)]
    assert [e.command for e in finished] == ["portrait", "microphone", "mode", "portrait"]
    assert finished[-1].error is not None and "No face" in finished[-1].error
    assert all(e.error is None for e in finished[:-1])


def test_audio_mode_opens_no_webcam_and_switching_mode_opens_and_closes_it(
    camera_backend: type[CountingBackend], media: dict[str, Path], tmp_path: Path
) -> None:
    from avatar_app.video_writer import VideoWriter

    clip = tmp_path / "webcam.mp4"
    with VideoWriter(clip, 64, 48, 10) as video:
        for _ in range(10):
            video.write(np.zeros((48, 64, 3), np.uint8))
    session = LiveSession(_settings(media, mode="audio", video_file=clip))
    with session:
        assert session._webcam is None
        session.set_mode("hybrid").result(timeout=30)
        assert session._webcam is not None
        session.set_mode("audio").result(timeout=30)
        assert session._webcam is None
    assert CountingBackend.opened == 1


def test_an_output_size_change_is_the_one_change_that_reopens_the_camera(
    camera_backend: type[CountingBackend], media: dict[str, Path]
) -> None:
    with LiveSession(_settings(media)) as session:
        time.sleep(0.3)
        session.set_output_size((256, 256)).result(timeout=30)
        time.sleep(0.5)
        last = CountingBackend.last_frame()
    assert last is not None
    assert CountingBackend.opened == 2 and CountingBackend.closed == 2
    assert last.shape == (256, 256, 3)
    assert session.settings.size == (256, 256)


def test_a_tracker_that_cannot_start_degrades_the_session_and_says_why(
    camera_backend: type[CountingBackend],
    media: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from avatar_app.pipeline import builder
    from avatar_app.video_writer import VideoWriter

    def broken_stage(mirror: bool) -> object:
        raise RuntimeError("the face model is damaged")

    monkeypatch.setattr(builder, "face_stage", broken_stage)
    clip = tmp_path / "webcam.mp4"
    with VideoWriter(clip, 64, 48, 10) as video:
        for _ in range(10):
            video.write(np.zeros((48, 64, 3), np.uint8))
    events: list[SessionEvent] = []
    session = LiveSession(_settings(media, mode="hybrid", video_file=clip))
    session.subscribe(events.append)
    with session:
        deadline = time.monotonic() + 5
        while session.state is not State.DEGRADED and time.monotonic() < deadline:
            time.sleep(0.05)
        frames = session.snapshot().frames
    assert session.state is State.STOPPED
    assert any(
        isinstance(e, StateChanged)
        and e.state is State.DEGRADED
        and "Face tracking could not start" in e.reason
        and "damaged" in e.reason
        for e in events
    )
    assert frames > 0  # the avatar went on without the webcam


def test_commands_before_start_or_after_stop_fail_with_a_message(media: dict[str, Path]) -> None:
    session = LiveSession(_settings(media, virtual_camera="off"))
    with pytest.raises(Exception, match="not live"):
        session.set_mode("audio").result(timeout=1)
    session.start()
    session.stop()
    assert session.state is State.STOPPED
    with pytest.raises(Exception, match="not live"):
        session.set_portrait(None).result(timeout=1)


def test_a_session_that_cannot_start_says_why_and_holds_nothing(
    media: dict[str, Path], camera_backend: type[CountingBackend]
) -> None:
    events: list[SessionEvent] = []
    session = LiveSession(_settings(media, portrait=media["blank"]))
    session.subscribe(events.append)
    with pytest.raises(PortraitError):
        session.start()
    assert session.state is State.STOPPED
    assert CountingBackend.opened == 0
    last = events[-1]
    assert isinstance(last, StateChanged) and "No face" in last.reason


# Constructors of pipeline stages; only the builder may call them (benches that time a single
# engine part in isolation are listed with the part they time).
STAGE_CONSTRUCTORS = {
    "SpeechMotion", "TalkingMotion", "IdleMotion", "Mixer", "FaceFollower", "FaceTracker",
    "FaceStage", "SpeechStage", "WebcamMotion", "MicrophoneSource", "FileAudioSource",
    "CameraSource", "VideoFileSource", "VirtualCameraSink", "RecorderSink", "create_renderer",
    "VoiceOut",
}  # fmt: skip
ALLOWED = {
    "avatar_app/pipeline/builder.py": "the builder",
    "avatar_app/bench.py": "times one renderer's prepare and render",
    "avatar_app/bench_speech.py": "times the speech core alone",
    "avatar_app/bench_track.py": "times the face tracker alone",
}


def _constructed(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in STAGE_CONSTRUCTORS:
            yield node.lineno, func.id
        elif isinstance(func, ast.Attribute) and func.attr in STAGE_CONSTRUCTORS:
            yield node.lineno, func.attr


def test_the_builder_is_the_only_place_that_wires_stages() -> None:
    root = Path(__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(root)}:{line}: {name}(...)"
        for folder in ("avatar_app", "ui")
        for path in sorted((root / folder).rglob("*.py"))
        if path.relative_to(root).as_posix() not in ALLOWED
        for line, name in _constructed(path)
    ]
    assert not offenders, "wire stages in avatar_app/pipeline/builder.py:\n" + "\n".join(offenders)


def _ticks(seconds: float, every: float = 0.02) -> Iterator[None]:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(every)
        yield None
