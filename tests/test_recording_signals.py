"""``avatar-app live --record`` as a user types it, cut short by ``kill -9`` or a full disk.

A recording killed at 1 s, 3 s or 8 s plays: ffprobe finds its video and sound, lasting about as
long as it ran (half-second fragments, the encoder holding nothing back). A disk that fills
(``RLIMIT_FSIZE``, what ``ulimit -f`` sets: writes fail with EFBIG, as Python ignores SIGXFSZ)
ends with an ``error:`` line and exit code 2, not "Recorded". The sound keeps the file's own
48 kHz stereo.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from tests.speech_audio import spoken

RATE = 48000
FRAGMENT = 0.5  # s a crash may lose
SLACK = 0.6  # s more for a loaded machine (the recorder's queue, process start-up)


@pytest.fixture(scope="module")
def speech_48k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Speech as a 48 kHz stereo WAV (the right channel a little quieter)."""
    audio, _ = spoken("Hello there! How are you today? I am fine, thank you.", pad=0.3)
    mono = resample_poly(audio, RATE // 16000, 1)  # spoken() is 16 kHz
    stereo = np.stack([mono, 0.8 * mono], axis=1)
    path = tmp_path_factory.mktemp("signals") / "speech48.wav"
    wavfile.write(path, RATE, (np.clip(stereo, -1, 1) * 32767).astype(np.int16))
    return path


def _command(wav: Path, out: Path, *extra: str) -> list[str]:
    program = Path(sys.executable).with_name("avatar-app")
    start = [str(program)] if program.is_file() else [sys.executable, "-m", "avatar_app.cli"]
    return [
        *start, "live", "--audio-file", str(wav), "--vcam", "off", "--size", "320x240",
        "--fps", "25", "--record", str(out), *extra,
    ]  # fmt: skip


def _probe(path: Path) -> dict[str, dict[str, str]]:
    """Each stream's fields by codec type ("video", "audio")."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"{path} does not play: {done.stderr}"
    return {s["codec_type"]: s for s in json.loads(done.stdout)["streams"]}


def _played_seconds(path: Path) -> float:
    """How long the video plays, by decoding it (a cut file has no reliable header)."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout.strip()) / 25


@pytest.mark.parametrize("after", [1.0, 3.0, 8.0])
def test_a_recording_killed_at_any_moment_plays_up_to_half_a_second_before(
    speech_48k: Path, tmp_path: Path, after: float
) -> None:
    out = tmp_path / "killed.mp4"
    log = tmp_path / "live.log"
    with (
        log.open("w") as errors,
        subprocess.Popen(_command(speech_48k, out), stderr=errors) as process,
    ):
        deadline = time.monotonic() + 120
        while not out.exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the recording never started"
            time.sleep(0.02)
        created = time.monotonic()
        time.sleep(max(0.0, created + after - time.monotonic()))
        assert process.poll() is None, log.read_text()
        os.kill(process.pid, signal.SIGKILL)
        elapsed = time.monotonic() - created
    streams = _probe(out)
    assert set(streams) == {"video", "audio"}
    assert (int(streams["audio"]["sample_rate"]), streams["audio"]["channels"]) == (RATE, 2)
    played = _played_seconds(out)
    print(f"killed {elapsed:.2f} s after the file appeared: {played:.2f} s play")
    assert elapsed - FRAGMENT - SLACK <= played <= elapsed + 0.1


def test_a_full_disk_says_the_recording_failed_and_exits_2(
    speech_48k: Path, tmp_path: Path
) -> None:
    out = tmp_path / "full.mp4"
    limit = 150_000  # bytes: about a second of this video

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        _command(speech_48k, out, "--seconds", "5"),
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=small_files,
        check=False,
    )
    print(done.stderr)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors and "The recording failed" in errors[-1], done.stderr
    assert "largest file size" in errors[-1]
    assert f"Recorded {out}" not in done.stderr
    assert set(_probe(out)) == {"video", "audio"}  # what fitted still plays
