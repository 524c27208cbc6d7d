"""Nothing is sent: the commands a user types make no network connection and no DNS lookup.

Each command runs under ``strace -f``, which sees every ``connect``/``send*`` of the process and
of its native threads (mediapipe's C++ usage logger among them) and children. A lookup or a
connection to anything but loopback fails the test. Only ``avatar-app models fetch`` may reach
the network, and it is not run here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

APP = str(Path(sys.executable).with_name("avatar-app"))
TIMEOUT = 300

# An IPv4 or IPv6 address in strace's rendering of a sockaddr.
_INET_ADDRESS = re.compile(r'inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"')
_SENDING = re.compile(r"\b(?:connect|sendto|sendmsg|sendmmsg)\(")


def _strace_works() -> str | None:
    """None if strace can trace a child here, else why not."""
    if shutil.which("strace") is None:
        return "strace is not installed (scripts/install-system-deps.sh --test installs it)"
    probe = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"strace cannot trace here (ptrace not permitted?): {probe.stderr.strip()}"
    return None


def network_use(trace: str) -> list[str]:
    """The lines of an strace log that reach beyond this machine: connections, datagrams or
    DNS queries to a non-loopback address, and anything naming Google's logging host."""
    found: list[str] = []
    for line in trace.splitlines():
        if "googleapis" in line:
            found.append(line)
            continue
        if not _SENDING.search(line):
            continue
        addresses = _INET_ADDRESS.findall(line)
        if any(not _is_loopback(a) for a in addresses):
            found.append(line)
    return found


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")


def traced(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``avatar-app *args`` under strace; (the finished process, lines using the network)."""
    reason = _strace_works()
    if reason:
        pytest.skip(reason)
    log = tmp_path / "strace.log"
    done = subprocess.run(
        ["strace", "-f", "-qq", "-s", "128", "-e", "trace=network", "-o", str(log), APP, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=tmp_path,
    )
    return done, network_use(log.read_text(errors="replace"))


def _tone_wav(path: Path, seconds: float = 1.5, rate: int = 16_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 180 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def _face_clip(path: Path, astronaut: np.ndarray) -> Path:
    from avatar_app.video_writer import VideoWriter

    frame = np.ascontiguousarray(astronaut[::2, ::2])
    with VideoWriter(path, frame.shape[1], frame.shape[0], 10) as video:
        for _ in range(10):
            video.write(frame)
    return path


def test_network_use_sees_lookups_and_connections() -> None:
    """The checker itself: a DNS query and a TCP connection count, loopback does not."""
    dns = (
        '7 connect(6, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")},'
        " 16) = 0"
    )
    https = (
        "7 connect(6, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2a00:1450:4001::a", &sin6_addr), sin6_scope_id=0}, 28) = 0'
    )
    local = (
        '7 connect(6, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")},'
        " 16) = 0"
    )
    query = '7 sendmmsg(6, [{msg_hdr={msg_iov=[{iov_base="\\4play\\ngoogleapis\\3com"}]}}], 2) = 2'
    unix = '7 connect(5, {sa_family=AF_UNIX, sun_path="/run/pulse/native"}, 110) = 0'
    assert network_use("\n".join([dns, https, local, query, unix])) == [dns, https, query]


@pytest.mark.slow
def test_render_sends_nothing(tmp_path: Path) -> None:
    from tests.speech_audio import require_espeak

    require_espeak()
    done, used = traced(tmp_path, "render", "--say", "hi", "-o", str(tmp_path / "hi.mp4"))
    assert done.returncode == 0, done.stderr
    assert used == [], "render reached the network:\n" + "\n".join(used)


@pytest.mark.slow
def test_demo_sends_nothing(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    done, used = traced(tmp_path, "demo", "--size", "128", "--fps", "5", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert used == [], "demo reached the network:\n" + "\n".join(used)


@pytest.mark.slow
def test_drive_sends_nothing(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = _face_clip(tmp_path / "face.mp4", astronaut)
    done, used = traced(tmp_path, "drive", "--video", str(clip), "-o", str(tmp_path / "d.mp4"))
    assert done.returncode == 0, done.stderr
    assert used == [], "drive reached the network:\n" + "\n".join(used)


@pytest.mark.slow
def test_drive_does_not_fetch_a_video_url(tmp_path: Path) -> None:
    """A URL is refused, not handed to FFmpeg to download."""
    url = "http://example.invalid/face.mp4"
    done, used = traced(tmp_path, "drive", "--video", url, "-o", str(tmp_path / "d.mp4"))
    assert "Traceback" not in done.stderr
    assert done.returncode != 0
    assert used == [], "drive --video URL reached the network:\n" + "\n".join(used)


@pytest.mark.slow
def test_live_sends_nothing(tmp_path: Path) -> None:
    sound = _tone_wav(tmp_path / "tone.wav")
    done, used = traced(
        tmp_path, "live", "--audio-file", str(sound), "--vcam", "off", "--seconds", "2"
    )
    assert done.returncode == 0, done.stderr
    assert used == [], "live reached the network:\n" + "\n".join(used)


def test_programs_we_start_get_the_users_own_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The telemetry block points this process's proxy nowhere; a file manager or browser
    started from the app must still get the user's settings."""
    from engines.face import mediapipe_task

    monkeypatch.setattr(mediapipe_task, "_users_proxy", {})
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "localhost")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    mediapipe_task.block_usage_logging()
    mediapipe_task.block_usage_logging()  # a second landmarker keeps the user's originals
    theirs = mediapipe_task.environment_for_other_programs()
    assert os.environ["https_proxy"] == mediapipe_task.TELEMETRY_PROXY
    assert "no_proxy" not in os.environ
    assert theirs["https_proxy"] == "http://proxy.example:3128"
    assert theirs["no_proxy"] == "localhost"
    assert "HTTPS_PROXY" not in theirs and "NO_PROXY" not in theirs
