"""Bad and odd input through the real ``avatar-app`` command, as a user would type it.

Every case must end with exit code 0 (it worked) or 2 (refused with an ``error:`` line), never
a traceback or a hang; the input files must be unchanged, and no file may appear under the
output's name unless the command succeeded (offline outputs are written under a temporary
name and renamed when complete). Media are generated here; most cases are cheap refusals, the
few that render use a 64 px frame and half a second of sound.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from avatar_app.exit_codes import EXIT_INTERRUPTED, EXIT_USER_ERROR
from avatar_app.video_writer import VideoWriter

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 180.0  # seconds for one case on a busy 2-core machine; a hang takes for ever
WORKERS = 2
TINY = ("--size", "64", "--fps", "5")
BAD_NUMBERS = ("nan", "inf", "-inf", "-1", "0", "1e9", "9" * 30, "abc", "")
Expect = Literal["works", "refused", "either"]
VALID = {
    ("--voice-offset", "0"),
    ("--voice-offset", "-1"),
    ("--seed", "0"),
    ("--neutral-frame", "0"),
}
"""(option, value) pairs of BAD_NUMBERS that are fine, so are left out."""


@dataclass(frozen=True)
class Case:
    """One command line; ``{m}`` in an argument is the media folder."""

    name: str
    args: tuple[str, ...]
    expect: Expect = "refused"
    output: str | None = None  # the output's name, relative to the case's own folder


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int | None  # None: timed out
    stderr: str
    problems: tuple[str, ...]
    seconds: float = 0.0


def _wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    wavfile.write(path, rate, samples)
    return path


def _tone(seconds: float, rate: int = 16000, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    return (np.repeat(wave[:, None], channels, axis=1).squeeze() * 32767).astype(np.int16)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def _png_text_bomb(folder: Path) -> bytes:
    """A 1x1 PNG whose zTXt chunk inflates to 50 MB (Pillow refuses with a ValueError)."""
    Image.new("RGB", (1, 1)).save(folder / "one.png")
    png = (folder / "one.png").read_bytes()
    bomb = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"\0" * 50_000_000, 9))
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + bomb + png[end_of_ihdr:]


def _wav_claiming(data_bytes: int) -> bytes:
    """A WAV header announcing ``data_bytes`` of sound, followed by 100 bytes of it."""
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    fmt += (16000).to_bytes(4, "little") + (32000).to_bytes(4, "little")
    fmt += (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    chunks = b"fmt " + len(fmt).to_bytes(4, "little") + fmt
    chunks += b"data" + data_bytes.to_bytes(4, "little") + bytes(100)
    return b"RIFF" + (len(chunks) + 4).to_bytes(4, "little") + b"WAVE" + chunks


def _clip(path: Path, astronaut: np.ndarray, sound: bool) -> Path:
    frame = np.ascontiguousarray(np.asarray(Image.fromarray(astronaut).resize((128, 128))))
    with VideoWriter(path, 128, 128, 5, audio_rate=16000 if sound else None) as video:
        if sound:
            video.write_audio(_tone(1.0).astype(np.float32) / 32767)
        for _ in range(5):
            video.write(frame)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    """Good and bad inputs, all made here."""
    m = tmp_path_factory.mktemp("media")
    Image.fromarray(astronaut).save(m / "portrait.jpg")
    Image.fromarray(astronaut[::-1, ::-1]).save(m / "upside_down.jpg")
    Image.fromarray(astronaut[..., 0].astype(np.uint16) * 257).save(m / "gray16.png")
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(m / "noface.png")
    Image.new("RGB", (1, 1)).save(m / "tiny.png")
    (m / "empty.jpg").write_bytes(b"")
    (m / "garbage.jpg").write_bytes(np.random.default_rng(1).bytes(4096))
    (m / "text.jpg").write_text("not a photo\n")
    (m / "truncated.jpg").write_bytes((m / "portrait.jpg").read_bytes()[:2000])
    (m / "huge_header.png").write_bytes(_png_header_only(100_000, 100_000))
    (m / "big_header.png").write_bytes(_png_header_only(12_000, 12_000))
    (m / "no_pixels.png").write_bytes(_png_header_only(640, 480))
    (m / "text_bomb.png").write_bytes(_png_text_bomb(m))
    _wav(m / "speech.wav", _tone(0.5))
    _wav(m / "silence.wav", np.zeros(16000, np.int16))
    _wav(m / "six.wav", _tone(0.5, 48000, 6), 48000)
    _wav(m / "short.wav", _tone(0.01))
    _wav(m / "nan.wav", np.full(8000, np.nan, np.float32))
    (m / "sound.jpg").write_bytes((m / "speech.wav").read_bytes())
    (m / "empty.wav").write_bytes(b"")
    (m / "garbage.wav").write_bytes(np.random.default_rng(2).bytes(4096))
    (m / "garbage.mp3").write_bytes(np.random.default_rng(3).bytes(4096))
    (m / "text.wav").write_text("not a sound\n")
    (m / "header_only.wav").write_bytes(_wav_claiming(0)[:44])
    (m / "claims_2gb.wav").write_bytes(_wav_claiming(0x7FFFFFF0))
    (m / "truncated.wav").write_bytes((m / "speech.wav").read_bytes()[:60])
    (m / "звук 🔊.wav").write_bytes((m / "garbage.wav").read_bytes())
    _clip(m / "clip.mp4", astronaut, sound=False)
    _clip(m / "talk.mp4", astronaut, sound=True)
    (m / "truncated.mp4").write_bytes((m / "talk.mp4").read_bytes()[:3000])
    (m / "folder.jpg").mkdir()
    (m / "folder.wav").mkdir()
    (m / "folder.mp4").mkdir()
    os.mkfifo(m / "fifo.jpg")
    os.mkfifo(m / "fifo.wav")
    os.mkfifo(m / "fifo.mp4")
    (m / "loop.jpg").symlink_to(m / "loop.jpg")
    (m / "locked.wav").write_bytes((m / "speech.wav").read_bytes())
    (m / "locked.wav").chmod(0)
    return m


def _number_cases() -> Iterator[Case]:
    """Every numeric option of every command, out of range (argparse refuses them)."""
    options = {
        ("render", "--audio", "{m}/speech.wav", "-o", "out.mp4"): (
            "--fps",
            "--lookahead",
            "--seed",
        ),
        ("demo", "-o", "out.mp4"): ("--fps",),
        ("drive", "--video", "{m}/clip.mp4", "-o", "out.mp4"): ("--neutral-frame",),
        ("live", "--vcam", "off"): ("--fps", "--seconds", "--voice-offset"),
        ("bench", "render"): ("--frames",),
        ("bench", "live"): ("--seconds",),
        ("bench", "track"): ("--seconds",),
        ("bench", "gui"): ("--seconds",),
        ("bench", "speech"): ("--seconds",),
    }
    for command, names in options.items():
        label = " ".join(command[:2]) if command[0] == "bench" else command[0]
        for name in names:
            for value in BAD_NUMBERS:
                if (name, value) in VALID:
                    continue
                yield Case(f"{label} {name} {value!r}", (*command, name, value))
    for value in ("52.4", "1001"):
        yield Case(f"render --lookahead {value}", _render("--lookahead", value))
    for value in ("61", "1000", "2.5"):
        yield Case(f"render --fps {value}", _render("--fps", value))
    yield Case("live --seconds -5", ("live", "--vcam", "off", "--seconds", "-5"))


def _render(*extra: str, audio: str = "{m}/speech.wav", output: str = "out.mp4") -> tuple[str, ...]:
    return ("render", "--audio", audio, "--size", "64", "--fps", "5", *extra, "-o", output)


def _size_cases() -> Iterator[Case]:
    sizes = ("0", "-2", "nan", "inf", "99999x99999", "513", "3841x2160", "2160x3841", "1e3")
    for size in (*sizes, "abc", "", "64x0", "64x64x64"):
        yield Case(f"render --size {size!r}", (*_render(), "--size", size))
    yield Case("demo --size 99999", ("demo", "--size", "99999", "-o", "out.mp4"))
    yield Case("sheet --size 7", ("sheet", "--size", "7", "-o", "out.png"))
    yield Case("drive --size 0", ("drive", "--video", "{m}/clip.mp4", "--size", "0", "-o", "o.mp4"))
    yield Case("live --size 99999x99999", ("live", "--vcam", "off", "--size", "99999x99999"))


PORTRAITS: dict[str, Expect] = {
    "empty.jpg": "refused",
    "garbage.jpg": "refused",
    "text.jpg": "refused",
    "truncated.jpg": "refused",
    "huge_header.png": "refused",
    "big_header.png": "refused",
    "no_pixels.png": "refused",
    "text_bomb.png": "refused",
    "tiny.png": "refused",
    "noface.png": "refused",
    "upside_down.jpg": "refused",
    "sound.jpg": "refused",
    "folder.jpg": "refused",
    "fifo.jpg": "refused",
    "loop.jpg": "refused",
    "missing.jpg": "refused",
    "/dev/zero": "refused",
    "x" * 300 + ".jpg": "refused",
    "gray16.png": "works",
}
SOUNDS: dict[str, Expect] = {
    "empty.wav": "refused",
    "garbage.wav": "refused",
    "garbage.mp3": "refused",
    "text.wav": "refused",
    "header_only.wav": "refused",
    "claims_2gb.wav": "refused",
    "truncated.wav": "refused",
    "short.wav": "refused",
    "звук 🔊.wav": "refused",
    "clip.mp4": "refused",
    "truncated.mp4": "refused",
    "portrait.jpg": "refused",
    "folder.wav": "refused",
    "fifo.wav": "refused",
    "missing.wav": "refused",
    "/dev/zero": "refused",
    "/dev/null": "refused",
    "http://example.com/speech.wav": "refused",
    "x" * 300 + ".wav": "refused",
    "locked.wav": "either",  # readable all the same when the tests run as root
    "silence.wav": "works",
    "six.wav": "works",
    "nan.wav": "works",
    "talk.mp4": "works",
}
VIDEOS: dict[str, Expect] = {
    "folder.mp4": "refused",
    "fifo.mp4": "refused",
    "/dev/zero": "refused",
    "missing.mp4": "refused",
    "http://example.com/v.mp4": "refused",
    "speech.wav": "refused",
    "portrait.jpg": "either",  # FFmpeg reads a photo as a one-frame video
    "truncated.mp4": "refused",
    "garbage.jpg": "refused",
    "talk.mp4": "works",
}


def _media(name: str) -> str:
    return name if name.startswith(("/", "http")) else "{m}/" + name


def _file_cases() -> Iterator[Case]:
    for name, expect in PORTRAITS.items():
        yield Case(
            f"portrait {name[:40]}", (*_render(), "--portrait", _media(name)), expect, "out.mp4"
        )
    for name, expect in SOUNDS.items():
        yield Case(f"sound {name[:40]}", _render(audio=_media(name)), expect, "out.mp4")
    for name, expect in VIDEOS.items():
        args = ("drive", "--video", _media(name), "--size", "64", "-o", "out.mp4")
        yield Case(f"video {name[:40]}", args, expect, "out.mp4")
    yield Case("live --audio-file fifo", ("live", "--vcam", "off", "--audio-file", "{m}/fifo.wav"))


def _output_cases() -> Iterator[Case]:
    yield Case("render -o the sound", _render(output="{m}/speech.wav"))
    yield Case("render -o the sound (mp4)", _render(audio="{m}/talk.mp4", output="{m}/talk.mp4"))
    yield Case("render -o a link to the sound", _render(audio="{m}/talk.mp4", output="link.mp4"))
    yield Case(
        "render -o the portrait",
        (*_render(output="{m}/portrait.jpg"), "--portrait", "{m}/portrait.jpg"),
    )
    yield Case("drive -o the video", ("drive", "--video", "{m}/clip.mp4", "-o", "{m}/clip.mp4"))
    yield Case(
        "sheet -o the portrait", ("sheet", "--portrait", "{m}/tiny.png", "-o", "{m}/tiny.png")
    )
    yield Case(
        "demo -o the portrait", ("demo", "--portrait", "{m}/portrait.jpg", "-o", "{m}/portrait.jpg")
    )
    yield Case(
        "live --record the sound",
        ("live", "--vcam", "off", "--audio-file", "{m}/talk.mp4", "--record", "{m}/talk.mp4"),
    )
    yield Case(
        "live --record the portrait",
        ("live", "--vcam", "off", "--portrait", "{m}/portrait.jpg", "--record", "{m}/portrait.jpg"),
    )
    yield Case(
        "live --record the video",
        ("live", "--vcam", "off", "--video-file", "{m}/clip.mp4", "--record", "{m}/clip.mp4"),
    )
    yield Case(
        "live --record x.avi", ("live", "--vcam", "off", "--record", "x.avi"), output="x.avi"
    )
    for name in (
        "x.avi",
        "x",
        "x.mp4.",
        "",
        ".",
        "/",
        "nowhere/out.mp4",
        "/dev/null",
        "/proc/out.mp4",
    ):
        yield Case(f"render -o {name!r}", _render(output=name))
    yield Case("render -o a folder", _render(output="folder.mp4"))
    yield Case("render -o a fifo", _render(output="fifo.mp4"))
    yield Case(
        "render -o a long name", _render(output="y" * 300 + ".mp4"), output="y" * 300 + ".mp4"
    )
    yield Case("render -o read-only folder", _render(output="ro/out.mp4"), "either", "ro/out.mp4")
    yield Case("sheet -o x.mp4", ("sheet", "-o", "x.mp4"), output="x.mp4")
    yield Case("render --say ''", ("render", "--say", "", *TINY, "-o", "o.mp4"), output="o.mp4")
    yield Case(
        "render --say '   '", ("render", "--say", "   ", *TINY, "-o", "o.mp4"), output="o.mp4"
    )
    yield Case(
        "render unknown voice",
        ("render", "--say", "hi", "--voice", "zz-nope", *TINY, "-o", "o.mp4"),
        output="o.mp4",
    )
    yield Case("render no command", ())


def _working_cases() -> Iterator[Case]:
    yield Case("render tiny, unicode name", _render(output="видео 🎬.mp4"), "works", "видео 🎬.mp4")
    yield Case(
        "render --say", ("render", "--say", "Hi.", *TINY, "-o", "say.mp4"), "works", "say.mp4"
    )
    yield Case(
        "render edge numbers",
        (*_render("--lookahead", "1000", "--seed", "4294967295", "--vad", "off"), "--fps", "60"),
        "works",
        "out.mp4",
    )
    yield Case("render 2x2", (*_render(), "--size", "2x2"), "either", "out.mp4")
    yield Case(
        "drive --neutral-frame 1e6",
        (
            "drive",
            "--video",
            "{m}/clip.mp4",
            "--size",
            "64",
            "--neutral-frame",
            "1000000",
            "-o",
            "d.mp4",
        ),
        "works",
        "d.mp4",
    )
    yield Case("sheet tiny", ("sheet", "--size", "64", "-o", "s.png"), "works", "s.png")


def _all_cases() -> list[Case]:
    return [*_number_cases(), *_size_cases(), *_file_cases(), *_output_cases(), *_working_cases()]


def _sha256(path: Path) -> str | None:
    if not path.is_file() or path.is_symlink():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs(folder: Path) -> dict[Path, str | None]:
    return {
        p: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and os.access(p, os.R_OK)
    }


def _prepare(folder: Path, media: Path) -> None:
    folder.mkdir()
    (folder / "folder.mp4").mkdir()
    os.mkfifo(folder / "fifo.mp4")
    (folder / "link.mp4").symlink_to(media / "talk.mp4")
    (folder / "ro").mkdir(mode=0o555)


def _run_case(case: Case, folder: Path, media: Path) -> Outcome:
    _prepare(folder, media)
    before = set(folder.rglob("*"))
    args = [a.replace("{m}", str(media)) for a in case.args]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "avatar_app.cli", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return Outcome(case, None, stderr, (f"no answer within {TIMEOUT:.0f} s",))
    problems = []
    if done.returncode not in (0, EXIT_USER_ERROR):
        problems.append(f"exit code {done.returncode}")
    if "Traceback" in done.stderr:
        problems.append("a traceback")
    if done.returncode == EXIT_USER_ERROR and "error:" not in done.stderr:
        problems.append("refused without an error: line")
    wanted = {"works": 0, "refused": EXIT_USER_ERROR}.get(case.expect)
    if wanted is not None and done.returncode != wanted:
        problems.append(f"expected it to be {case.expect}")
    left = {str(p.relative_to(folder)) for p in set(folder.rglob("*")) - before}
    produced = {case.output} if case.output and done.returncode == 0 else set()
    if left - produced:
        problems.append(f"left files behind: {sorted(left - produced)}")
    if produced and not _complete(folder / str(case.output)):
        problems.append("the output is not a complete file")
    seconds = time.monotonic() - started
    return Outcome(case, done.returncode, done.stderr, tuple(problems), seconds)


def _complete(path: Path) -> bool:
    if path.suffix == ".png":
        with Image.open(path) as image:
            image.load()
        return True
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0)) > 0


@pytest.mark.slow
def test_bad_and_odd_input_never_crashes_hangs_or_loses_a_file(media: Path, tmp_path: Path) -> None:
    cases = _all_cases()
    assert len(cases) >= 150
    assert len({c.name for c in cases}) == len(cases), "case names are unique"
    inputs = _inputs(media)
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(
            pool.map(
                lambda item: _run_case(item[1], tmp_path / f"case{item[0]}", media),
                enumerate(cases),
            )
        )
    changed = [p.name for p, digest in _inputs(media).items() if inputs.get(p) != digest]
    assert not changed, f"inputs changed: {changed}"
    assert sorted(p.name for p in media.iterdir() if ".partial" in p.name) == []
    failed = [o for o in outcomes if o.problems]
    worked = sum(o.code == 0 for o in outcomes)
    refused = sum(o.code == EXIT_USER_ERROR for o in outcomes)
    print(f"{len(outcomes)} cases: {worked} worked, {refused} refused, {len(failed)} failed")
    for slow in sorted(outcomes, key=lambda o: -o.seconds)[:5]:
        print(f"  slowest: {slow.case.name} {slow.seconds:.1f} s")
    assert not failed, "\n\n".join(
        f"{o.case.name} {o.case.args}: {', '.join(o.problems)}\n{o.stderr[-1500:]}" for o in failed
    )


@pytest.mark.slow
def test_ctrl_c_during_render_leaves_nothing_and_exits_130(tmp_path: Path) -> None:
    _wav(tmp_path / "long.wav", _tone(60.0))
    render = subprocess.Popen(
        [sys.executable, "-m", "avatar_app.cli", *("render", "--audio", "long.wav"), "-o", "o.mp4"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while not any(".partial" in p.name for p in tmp_path.iterdir()):
        assert render.poll() is None, render.communicate()[1]
        assert time.monotonic() < deadline, "the render never started writing"
        time.sleep(0.05)
    time.sleep(0.5)  # frames are being written now
    render.send_signal(signal.SIGINT)
    _, stderr = render.communicate(timeout=60)
    assert render.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]
