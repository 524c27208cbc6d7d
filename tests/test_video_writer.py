"""VideoWriter: real H.264 MP4 files, checked with ffprobe and decoded back with PyAV."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from avatar_app.audio_file import load_audio
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
from avatar_app.audio_file import load_audio
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


# Sound: an AAC track beside the video, on the same clock.

SECONDS = 3
BURST_AT = 1.0  # seconds


def _sound_with_a_burst(rate: int, channels: int) -> np.ndarray:
    """SECONDS of silence with a 20 ms, 1 kHz burst starting at exactly BURST_AT."""
    sound = np.zeros((SECONDS * rate, channels), np.float32)
    start, length = round(BURST_AT * rate), rate // 50
    burst = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(length) / rate)
    sound[start : start + length] = burst[:, None]
    return sound


def _write_with_sound(path: Path, rate: int, channels: int, order: str) -> None:
    sound = _sound_with_a_burst(rate, channels)
    per_frame = rate // FPS
    frames = [_colour_frame(i // 5) for i in range(SECONDS * FPS)]
    with VideoWriter(path, WIDTH, HEIGHT, FPS, audio_rate=rate, audio_channels=channels) as video:
        if order == "interleaved":
            for i, frame in enumerate(frames):
                video.write(frame)
                video.write_audio(sound[i * per_frame : (i + 1) * per_frame])
        elif order == "video first":
            for frame in frames:
                video.write(frame)
            for start in range(0, len(sound), 441):  # odd chunks, like a sound card's
                video.write_audio(sound[start : start + 441])
        else:  # sound first, in one piece
            video.write_audio(sound if channels == 2 else sound[:, 0])
            for frame in frames:
                video.write(frame)
        assert video.audio_samples_written == len(sound)


@pytest.fixture(
    scope="module",
    params=[
        (48000, 2, "interleaved"),
        (16000, 1, "interleaved"),
        (44100, 2, "video first"),
        (16000, 1, "sound first"),
    ],
    ids=lambda p: f"{p[0]} Hz x{p[1]}, {p[2]}",
)
def with_sound(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int, int]:
    rate, channels, order = request.param
    path = tmp_path_factory.mktemp("sound") / "talk.mp4"
    _write_with_sound(path, rate, channels, order)
    return path, rate, channels


def _probe(path: Path) -> dict[str, Any]:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed (apt-get install ffmpeg)")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info: dict[str, Any] = json.loads(out)
    return info


def test_ffprobe_sees_one_h264_and_one_aac_stream_of_equal_length(
    with_sound: tuple[Path, int, int],
) -> None:
    path, rate, channels = with_sound
    info = _probe(path)
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    audio, video = streams["audio"], streams["video"]
    assert (int(audio["sample_rate"]), int(audio["channels"])) == (rate, channels)
    # ffprobe counts the AAC priming (1024 samples, before 0 s) in the duration; where each
    # stream ends is what a player sees.
    assert -1024 / rate - 1e-6 <= float(audio["start_time"]) <= 0
    assert float(video["start_time"]) == 0
    audio_end = float(audio["start_time"]) + float(audio["duration"])
    video_end = float(video["start_time"]) + float(video["duration"])
    assert video_end == pytest.approx(SECONDS, abs=1e-3)
    assert audio_end == pytest.approx(video_end, abs=1 / FPS)


def test_sound_lines_up_with_the_video(with_sound: tuple[Path, int, int]) -> None:
    path, rate, channels = with_sound
    with av.open(str(path)) as container:
        audio_frames = list(container.decode(audio=0))
    with av.open(str(path)) as container:
        video_frames = list(container.decode(video=0))
    assert [float(f.time) for f in video_frames] == pytest.approx(
        [i / FPS for i in range(SECONDS * FPS)]
    )
    assert audio_frames[0].time == 0  # the priming is cut by the edit list
    sound = np.concatenate([f.to_ndarray() for f in audio_frames], axis=1)
    assert sound.shape[0] == channels
    assert SECONDS * rate <= sound.shape[1] < SECONDS * rate + 1024
    onset = int(np.argmax(np.abs(sound).max(axis=0) > 0.1)) / rate
    assert onset == pytest.approx(BURST_AT, abs=0.010)
    assert np.abs(sound[:, : round(0.9 * rate)]).max() < 0.01  # silence before the burst


def test_sound_reads_back_sample_exact(with_sound: tuple[Path, int, int]) -> None:
    path, rate, channels = with_sound
    audio = load_audio(path)
    assert (audio.rate, audio.channels) == (rate, channels)
    assert len(audio.samples) == SECONDS * rate


def test_a_recording_with_sound_copied_mid_write_still_plays(tmp_path: Path) -> None:
    path, copy = tmp_path / "live.mp4", tmp_path / "copy.mp4"
    rate, seconds = 48000, 7
    sound = np.tile(_sound_with_a_burst(rate, 2), (3, 1))
    per_frame = rate // FPS
    with VideoWriter(path, WIDTH, HEIGHT, FPS, audio_rate=rate, audio_channels=2) as video:
        for i in range(seconds * FPS):
            video.write(_colour_frame(i))
            video.write_audio(sound[i * per_frame : (i + 1) * per_frame])
        shutil.copyfile(path, copy)  # what a crash now would leave on disk
    info = _probe(copy)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    with av.open(str(copy)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(copy)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    # A fragment starts at least every 2 s; allow for the encoder's delay.
    assert frames >= 4 * FPS
    assert samples / rate == pytest.approx(frames / FPS, abs=0.1)


def test_a_partial_last_sound_frame_keeps_its_length(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "a.mp4", 64, 48, 10, audio_rate=16000) as video:
        video.write_audio(np.full(8123, 0.1, np.float32))
        for _ in range(5):
            video.write(np.zeros((48, 64, 3), np.uint8))
    assert video.audio_samples_written == 8123
    assert len(load_audio(tmp_path / "a.mp4").samples) == 8123


def test_sound_track_may_stay_empty(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "a.mp4", 64, 48, 10, audio_rate=16000) as video:
        for _ in range(10):
            video.write(np.zeros((48, 64, 3), np.uint8))
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10


@pytest.mark.parametrize(
    ("channels", "samples", "got"),
    [
        (2, np.zeros((100, 1), np.float32), "got 100x1 float32"),
        (2, np.zeros(100, np.float32), "got 100 float32"),
        (2, np.zeros((2, 100), np.float32), "got 2x100 float32"),
        (1, np.zeros((100, 2), np.float32), "got 100x2 float32"),
        (1, np.zeros(100, np.float64), "got 100 float64"),
        (1, np.zeros((100, 1), np.int16), "got 100x1 int16"),
        (1, [0.0, 0.1], "got list"),
    ],
)
def test_wrong_sound_is_refused_clearly(
    tmp_path: Path, channels: int, samples: object, got: str
) -> None:
    shape = f"n x {channels} samples" + (r" \(or n for mono\)" if channels == 1 else "")
    with (
        VideoWriter(tmp_path / "x.mp4", WIDTH, HEIGHT, FPS, 16000, channels) as video,
        pytest.raises(ValueError, match=f"expected float32 sound of {shape}, {got}"),
    ):
        video.write_audio(samples)  # type: ignore[arg-type]


def test_sound_needs_a_sound_track_and_an_open_file(tmp_path: Path) -> None:
    with (
        VideoWriter(tmp_path / "x.mp4", WIDTH, HEIGHT, FPS) as video,
        pytest.raises(RecordingError, match="without sound; pass audio_rate"),
    ):
        video.write_audio(np.zeros(100, np.float32))
    video = VideoWriter(tmp_path / "y.mp4", WIDTH, HEIGHT, FPS, audio_rate=16000)
    video.close()
    with pytest.raises(RecordingError, match="already closed"):
        video.write_audio(np.zeros(100, np.float32))


@pytest.mark.parametrize(("rate", "channels"), [(16001, 1), (0, 1), (16000, 3), (16000, 0)])
def test_bad_sound_format_is_refused(tmp_path: Path, rate: int, channels: int) -> None:
    with pytest.raises(RecordingError, match="Cannot record"):
        VideoWriter(tmp_path / "x.mp4", WIDTH, HEIGHT, FPS, rate, channels)
