"""Camera and video-file frame sources: real-time pacing, latest-value slot, errors, reconnect."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar_app.live import camera_source
from avatar_app.live.camera_source import CameraFrame, CameraSource, VideoFileSource
from engines.errors import DeviceError

FPS = 30
PERIOD_NS = 1_000_000_000 // FPS


def make_clip(folder: Path, name: str, seconds: float) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    path = folder / name
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi"),
            *("-i", f"testsrc=size=320x240:rate={FPS}", "-t", str(seconds)),
            *("-pix_fmt", "yuv420p", str(path)),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 60 frames."""
    return make_clip(tmp_path_factory.mktemp("clips"), "clip.mp4", 2)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.3 s, 9 frames."""
    return make_clip(tmp_path_factory.mktemp("clips"), "short.mp4", 0.3)


def collect(source: VideoFileSource | CameraSource, seconds: float) -> list[CameraFrame]:
    """Every frame a fast consumer sees within ``seconds``, each checked against the clock."""
    frames: list[CameraFrame] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        frame = source.latest(frames[-1].index if frames else -1, timeout=0.1)
        if frame is not None:
            assert frame.pts_ns <= time.monotonic_ns()  # never handed out ahead of its time
            frames.append(frame)
    return frames


def no_thread_named(name: str) -> bool:
    return all(t.name != name for t in threading.enumerate())


def test_file_source_plays_rgb_frames_in_real_time(clip: Path) -> None:
    capture = cv2.VideoCapture(str(clip))
    ok, first_bgr = capture.read()
    capture.release()
    assert ok
    with VideoFileSource(clip) as source:
        started = time.monotonic_ns()
        frames = collect(source, 0.5)
    assert source.fps == pytest.approx(FPS)
    assert frames[0].index == 0
    assert np.array_equal(frames[0].rgb, cv2.cvtColor(first_bgr, cv2.COLOR_BGR2RGB))
    assert all(f.rgb.shape == (240, 320, 3) and f.rgb.dtype == np.uint8 for f in frames)
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    assert 10 <= indices[-1] <= 20  # about 15 frames in 0.5 s: real time, not as fast as decoded
    for f in frames:  # pts follow the file's frame rate on the monotonic clock
        assert f.pts_ns - frames[0].pts_ns == pytest.approx(f.index * PERIOD_NS, abs=1e6)
    assert abs(frames[0].pts_ns - started) < 100_000_000
    assert source.status == "stopped"


def test_file_source_loops(short_clip: Path) -> None:
    with VideoFileSource(short_clip, loop=True) as source:
        frames = collect(source, 0.7)
        assert source.status == "running"
    indices = [f.index for f in frames]
    assert indices[-1] >= 15  # past the 9 frames of one pass
    assert indices == sorted(set(indices))
    assert all(np.diff([f.pts_ns for f in frames]) > 0)
    by_index = {f.index: f for f in frames}
    if 0 in by_index and 9 in by_index:  # frame 9 is the first one again
        assert np.array_equal(by_index[9].rgb, by_index[0].rgb)


def test_file_source_without_loop_stops_at_the_end(short_clip: Path) -> None:
    source = VideoFileSource(short_clip)
    source.start()
    try:
        assert source.wait_finished(2.0)
        assert source.status == "stopped"
        assert source.frames == 9
    finally:
        source.stop()


def test_a_slow_consumer_gets_only_the_newest_frame(clip: Path) -> None:
    source = VideoFileSource(clip)
    source.start()
    time.sleep(0.3)
    source.stop()
    frame = source.latest()
    assert frame is not None
    assert frame.index == source.frames - 1 >= 5
    assert source.skipped == source.frames - 1  # everything before the newest was dropped
    assert source.latest(after_index=frame.index) is None
    assert source.latest(after_index=frame.index, timeout=0.05) is None


def test_stop_is_clean_and_idempotent(clip: Path) -> None:
    source = VideoFileSource(clip, loop=True)
    source.stop()  # before start: nothing happens
    source.start()
    source.start()  # second start: nothing happens
    assert source.latest(timeout=1.0) is not None
    source.stop()
    source.stop()
    assert source.status == "stopped"
    assert no_thread_named("video-file")


def test_missing_or_unreadable_file_is_a_device_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"nothere\.mp4"):
        VideoFileSource(tmp_path / "nothere.mp4").start()
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    source = VideoFileSource(junk)
    with pytest.raises(DeviceError, match=r"junk\.mp4"):
        source.start()
    assert source.status == "stopped"


def test_camera_that_does_not_exist_is_a_device_error() -> None:
    source = CameraSource("/dev/video42")
    with pytest.raises(DeviceError) as caught:
        source.start()
    message = str(caught.value)
    assert "/dev/video42" in message and "Cameras found: none" in message
    assert "close other apps" in message and "'video' group" in message
    assert source.status == "stopped"
    source.stop()


def test_camera_name_not_present_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match=r"No camera named 'Brio 4K'.*Cameras found: none"):
        CameraSource("Brio 4K").start()


def fake_sysfs(root: Path, names: dict[str, str]) -> Path:
    for node, name in names.items():
        (root / node).mkdir(parents=True)
        (root / node / "name").write_text(name + "\n")
    return root


def test_camera_names_map_to_dev_video_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(camera_source.platform, "system", lambda: "Linux")
    sysfs = fake_sysfs(
        tmp_path,
        {
            "video0": "HD Pro Webcam C920",
            "video1": "HD Pro Webcam C920",
            "video2": "Avatar Loopback",
            "video10": "c920",
        },
    )
    monkeypatch.setattr(camera_source, "V4L2_SYSFS", sysfs)
    targets = [t for t, _ in camera_source._candidates("C920")]
    assert targets == ["/dev/video10", "/dev/video0", "/dev/video1"]  # exact name first
    assert [t for t, _ in camera_source._candidates(None)] == [
        "/dev/video0",
        "/dev/video1",
        "/dev/video10",
    ]  # the default skips virtual cameras
    assert camera_source._candidates(2) == [(2, "#2")]
    assert camera_source._candidates("3")[0][0] == 3
    with pytest.raises(DeviceError) as caught:  # listed, but no such /dev node here
        CameraSource("webcam").start()
    assert "'HD Pro Webcam C920' (/dev/video0)" in str(caught.value)
    assert "'Avatar Loopback' (/dev/video2)" in str(caught.value)


def test_camera_reconnects_when_reading_fails(
    short_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video file through cv2 stands in for a camera: at its end reading fails."""
    monkeypatch.setattr(camera_source, "BACKOFF_SECONDS", (0.2, 0.4))
    source = CameraSource(str(short_clip))
    source.start()
    try:
        seen: set[str] = set()
        end = time.monotonic() + 3.0
        while source.reconnects < 2 and time.monotonic() < end:
            seen.add(source.status)
            time.sleep(0.005)
        assert {"running", "reconnecting"} <= seen
        assert source.reconnects >= 2
        frame = source.latest()
        assert frame is not None and frame.index >= 18  # frames kept coming, index kept growing
        assert frame.rgb.shape == (240, 320, 3)
        assert source.device_name == str(short_clip)
    finally:
        source.stop()
    assert source.status == "stopped"
    assert no_thread_named("camera")
