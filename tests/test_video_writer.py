"""VideoWriter: real H.264 MP4 files, checked with ffprobe and decoded back with PyAV."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from avatar_app.video_writer import VideoWriter
from engines.errors import AvatarError, RecordingError

WIDTH, HEIGHT, FPS = 160, 120, 25
REPO = Path(__file__).resolve().parent.parent
COLOURS = [(220, 40, 40), (40, 200, 60), (30, 60, 230), (240, 240, 240), (20, 20, 20)]


def _colour_frame(i: int) -> np.ndarray:
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = COLOURS[i % len(COLOURS)]
    return frame


@pytest.fixture(scope="module")
def one_second(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "colours.mp4"
    with VideoWriter(path, WIDTH, HEIGHT, FPS) as video:
        for i in range(FPS):
            video.write(_colour_frame(i // 5))
    return path


def _ffprobe(path: Path) -> dict[str, str]:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed (apt-get install ffmpeg)")
    out = subprocess.run(
        [
            ffprobe,
            *("-v", "error", "-count_frames", "-select_streams", "v:0"),
            *("-show_entries", "stream=codec_name,pix_fmt,width,height,nb_read_frames"),
            *("-show_entries", "format=duration", "-of", "json", str(path)),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    return {**info["streams"][0], "duration": info["format"]["duration"]}


def test_ffprobe_sees_one_second_of_h264(one_second: Path) -> None:
    info = _ffprobe(one_second)
    assert info["codec_name"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert (int(info["width"]), int(info["height"])) == (WIDTH, HEIGHT)
    assert int(info["nb_read_frames"]) == FPS
    assert float(info["duration"]) == pytest.approx(1.0, abs=1 / FPS)


def test_decoded_frames_keep_their_colour_and_timing(one_second: Path) -> None:
    with av.open(str(one_second)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == FPS
    assert [float(f.time) for f in frames] == pytest.approx([i / FPS for i in range(FPS)])
    for i, frame in enumerate(frames):
        rgb = frame.to_ndarray(format="rgb24").astype(int)
        expected = np.array(COLOURS[(i // 5) % len(COLOURS)])
        centre = rgb[HEIGHT // 4 : -HEIGHT // 4, WIDTH // 4 : -WIDTH // 4].reshape(-1, 3)
        assert np.abs(centre.mean(axis=0) - expected).max() < 12, f"frame {i}"


def test_counts_frames_and_close_is_idempotent(tmp_path: Path) -> None:
    video = VideoWriter(tmp_path / "a.mp4", 64, 48, 10)
    video.write(np.zeros((48, 64, 3), np.uint8))
    video.close()
    video.close()
    assert video.frames_written == 1
    with pytest.raises(RecordingError, match="already closed"):
        video.write(np.zeros((48, 64, 3), np.uint8))


def test_a_recording_cut_by_a_crash_still_plays(tmp_path: Path) -> None:
    path = tmp_path / "crash.mp4"
    script = f"""
import os
import numpy as np
from avatar_app.video_writer import VideoWriter
video = VideoWriter({str(path)!r}, {WIDTH}, {HEIGHT}, {FPS})
for i in range({5 * FPS}):
    video.write(np.full(({HEIGHT}, {WIDTH}, 3), i, np.uint8))
os._exit(3)  # die without closing anything
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=False)
    assert done.returncode == 3
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded >= 4 * FPS


@pytest.mark.parametrize(
    ("frame", "got"),
    [
        (np.zeros((WIDTH, HEIGHT, 3), np.uint8), "got 160x120x3 uint8"),
        (np.zeros((HEIGHT, WIDTH, 3), np.float32), "got 120x160x3 float32"),
        (np.zeros((HEIGHT, WIDTH, 4), np.uint8), "got 120x160x4 uint8"),
        (np.zeros((HEIGHT, WIDTH), np.uint8), "got 120x160 uint8"),
        ([[0, 0, 0]], "got list"),
    ],
)
def test_wrong_frames_are_refused_clearly(tmp_path: Path, frame: object, got: str) -> None:
    with (
        VideoWriter(tmp_path / "x.mp4", WIDTH, HEIGHT, FPS) as video,
        pytest.raises(ValueError, match=f"expected 120x160x3 uint8 .*{got}"),
    ):
        video.write(frame)  # type: ignore[arg-type]


def test_missing_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(AvatarError, match=r"does not exist\. Create it first"):
        VideoWriter(tmp_path / "no" / "such" / "x.mp4", WIDTH, HEIGHT, FPS)


def test_folder_as_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AvatarError, match="it is a folder"):
        VideoWriter(tmp_path, WIDTH, HEIGHT, FPS)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_full_disk_is_reported(tmp_path: Path) -> None:
    with (
        pytest.raises(AvatarError, match="disk is full"),
        VideoWriter("/dev/full", WIDTH, HEIGHT, FPS) as video,
    ):
        for i in range(FPS):
            video.write(_colour_frame(i))


@pytest.mark.parametrize(("size", "fps"), [((161, 120), 25), ((0, 120), 25), ((160, 120), 0)])
def test_bad_format_is_refused(tmp_path: Path, size: tuple[int, int], fps: int) -> None:
    with pytest.raises(RecordingError, match="Cannot record"):
        VideoWriter(tmp_path / "x.mp4", size[0], size[1], fps)
