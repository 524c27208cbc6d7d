"""The ``avatar-app`` and ``avatar-app-window`` commands, run as a user would, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from avatar_app.sweep import sweep_frame_count
from avatar_app.video_writer import VideoWriter

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


def _app(*args: str) -> subprocess.CompletedProcess[str]:
    return _run("avatar_app.cli", *args)


@pytest.mark.slow
def test_demo_writes_the_sweep_video(tmp_path: Path) -> None:
    out = tmp_path / "sweep.mp4"
    done = _app("demo", "--size", "256", "--fps", "10", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "100%" in done.stderr  # progress, one line per 10 % when stderr is not a terminal
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == sweep_frame_count(10)
    assert frames[0].shape == (256, 256, 3)
    assert frames[0].std() > 10, "the first frame should show the portrait"
    moving = max(np.abs(f.astype(int) - frames[0].astype(int)).mean() for f in frames)
    assert moving > 1.0, "the face should move during the sweep"


def test_sheet_writes_one_labelled_picture_of_every_pose(tmp_path: Path) -> None:
    from PIL import Image

    from avatar_app.offline.sheet import COLUMNS, POSES, TILE

    out = tmp_path / "sheet.png"
    done = _app("sheet", "--size", "512", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    rows = -(-len(POSES) // COLUMNS)
    tile_height = sheet.shape[0] // rows
    assert sheet.shape[1] == COLUMNS * TILE and tile_height > TILE
    tiles = [
        sheet[r * tile_height : r * tile_height + TILE, c * TILE : (c + 1) * TILE]
        for r in range(rows)
        for c in range(COLUMNS)
    ][: len(POSES)]
    assert sheet[TILE:tile_height, :TILE].min() < 100, "a dark text label under each tile"
    photo = tiles[0]
    assert photo.std() > 20, "the first tile shows the photo"
    for (label, _), tile in zip(POSES[1:], tiles[1:], strict=True):
        assert np.abs(tile - photo).mean() > 0.3, f"tile {label!r} looks like the photo"


@pytest.mark.slow
def test_demo_letterboxes_a_wide_frame(tmp_path: Path) -> None:
    out = tmp_path / "wide.mp4"
    done = _app("demo", "--size", "320x180", "--fit", "fit", "--fps", "5", "-o", str(out))
    assert done.returncode == 0, done.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (320, 180)


@pytest.mark.slow
def test_bench_prints_json_with_every_key() -> None:
    done = _app("bench", "render", "--frames", "3")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"engine", "threads", "prepare_ms", "sizes", "peak_rss_mb", "targets", "machine"} <= set(
        result
    )
    assert result["threads"] == 1
    for size in ("512x512", "1280x720"):
        assert {"median_ms", "p95_ms"} <= set(result["sizes"][size])
        assert result["sizes"][size]["p95_ms"] >= result["sizes"][size]["median_ms"] > 0
    for target in result["targets"].values():
        assert isinstance(target["pass"], bool)
    assert result["machine"]["cpu_count"] >= 1
    assert result["peak_rss_mb"] > 10
    talking = result["talking_video"]
    assert talking["audio"].startswith("espeak-ng")
    assert talking["frames"] == pytest.approx(talking["audio_seconds"] * 25, abs=1)
    assert talking["seconds_per_audio_second"] > 0


@pytest.mark.slow
def test_bench_speech_prints_cost_lookahead_and_accuracy() -> None:
    done = _app("bench", "speech", "--seconds", "3")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["lookahead_ms"] == pytest.approx(52.5)
    assert result["model_ms_per_audio_second"] > 0
    assert result["video_frames"] == 75
    assert "espeak_unseen_voices/clean" in result["from_model_card"]["held_out_accuracy"]
    assert result["audio"].startswith("espeak-ng")  # real (synthetic) speech, not a buzz


def test_missing_portrait_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nobody.jpg"
    done = _app("demo", "--portrait", str(missing), "-o", str(tmp_path / "x.mp4"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") or "\nerror: " in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_odd_size_is_an_error_that_suggests_a_fix(tmp_path: Path) -> None:
    done = _app("demo", "--size", "513", "-o", str(tmp_path / "x.mp4"))
    assert done.returncode == 2
    assert "error: " in done.stderr and "514x514" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2() -> None:
    done = _app("demo")
    assert done.returncode == 2
    assert "-o" in done.stderr


def test_window_plays_a_video_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 64, 48, 25) as video:
        for i in range(10):
            video.write(np.full((48, 64, 3), 20 * i, np.uint8))
    done = _run(
        "ui.player",
        str(path),
        "--quit-after",
        "0.6",
        timeout=60,
        QT_QPA_PLATFORM="offscreen",
        QT_QPA_PLATFORM_PLUGIN_PATH="/nonexistent",
    )
    assert done.returncode == 0, done.stderr


def test_window_reports_a_missing_file(tmp_path: Path) -> None:
    done = _run("ui.player", str(tmp_path / "none.mp4"), timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
