"""``avatar-app live`` and ``avatar-app bench live``: build a session from options and run it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from avatar_app.framing import parse_size
from avatar_app.live.session import FrameSink, LiveSession, LiveSettings
from avatar_app.live.webcam_motion import WebcamMotion
from engines.errors import DeviceError

log = logging.getLogger(__name__)

STATUS_EVERY = 5.0  # seconds between status lines
BENCH_TARGETS = {
    "fps_min": 29.5,
    "dropped_percent": 0.5,
    "latency_ms_p95": 90.0,
    "cpu_percent": 60.0,
}


def build_session(args: argparse.Namespace) -> LiveSession:
    """A started session (with its camera and recording) from ``live``'s options."""
    settings = LiveSettings(
        portrait=args.portrait,
        size=parse_size(args.size),
        fit=args.fit,
        fps=args.fps,
        engine=args.engine,
        vad_aggressiveness=None if args.ptt == "always" else int(args.vad),
        policy=args.mode,
    )
    audio = _audio_source(args.mic, args.audio_file)
    webcam = _webcam(args.webcam, args.video_file)
    sinks: list[FrameSink] = []
    session: LiveSession | None = None
    try:
        if args.vcam != "off":
            sinks.append(_virtual_camera(args, settings))
        session = LiveSession(settings, audio, sinks, webcam)
        session.set_push_to_talk(args.ptt != "key")  # "key": shut until the key is held
        session.start()
        if args.record:
            session.start_recording(args.record)
    except BaseException:
        if session is not None:
            session.stop()
        audio.stop()
        if webcam is not None:
            webcam.stop()
        for sink in sinks:
            sink.stop()
        raise
    return session


def _webcam(name: str, video_file: Path | None) -> WebcamMotion | None:
    """The webcam (or a video file standing in for it) and its tracking, or None when off."""
    from avatar_app.live.camera_source import CameraSource, VideoFileSource

    if video_file is not None:
        return WebcamMotion(VideoFileSource(video_file, loop=True))
    if name == "off":
        return None
    device: str | int | None = None if name == "auto" else name
    return WebcamMotion(CameraSource(device))


def _virtual_camera(args: argparse.Namespace, settings: LiveSettings) -> FrameSink:
    from avatar_app.live.virtual_camera import VirtualCameraSink

    width, height = settings.size
    device = None if args.vcam == "auto" else args.vcam
    camera = VirtualCameraSink(
        width, height, settings.fps, device=device, test_pattern=args.test_pattern
    )
    camera.start()
    return camera


def run_live_session(args: argparse.Namespace) -> int:
    """Headless: run until Ctrl-C, SIGTERM or ``--seconds``, with a status line every 5 s."""
    if args.ptt == "key":
        raise DeviceError(
            "Push-to-talk on a held key needs the window: run `avatar-app-preview --ptt key`, "
            "or use --ptt vad here."
        )
    session = build_session(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("Live. Press Ctrl-C to stop.", file=sys.stderr)
    started = time.monotonic()
    deadline = None if args.seconds is None else started + args.seconds
    try:
        while True:
            left = STATUS_EVERY if deadline is None else deadline - time.monotonic()
            if stop.wait(max(0.0, min(STATUS_EVERY, left))):
                break
            if deadline is not None and left <= STATUS_EVERY:
                break
            print(_status_line(session.snapshot()), file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        session.stop()
    print(_status_line(session.snapshot()), file=sys.stderr)
    if args.record:
        print(f"Recorded {args.record}", file=sys.stderr)
    return 0


def _audio_source(mic: str | None, audio_file: Path | None) -> Any:
    from avatar_app.live.audio_source import FileAudioSource, MicrophoneSource

    if audio_file is not None:
        return FileAudioSource(audio_file, loop=True)
    return MicrophoneSource(device=mic)


def _status_line(stats: dict[str, Any]) -> str:
    line = (
        f"{stats['seconds']:7.1f} s  {stats['fps']:5.1f} fps  dropped {stats['dropped']} "
        f"({stats['dropped_percent']}%)  mic->frame {stats['latency_ms_p50']:.0f}/"
        f"{stats['latency_ms_p95']:.0f} ms (p50/p95)  CPU {stats['cpu_percent_of_all_cores']}%  "
        f"RSS {stats['rss_mb']:.0f} MB"
    )
    if "webcam_latency_ms_p95" in stats:
        line += (
            f"  webcam->frame {stats['webcam_latency_ms_p50']:.0f}/"
            f"{stats['webcam_latency_ms_p95']:.0f} ms"
        )
    if stats["render_errors"]:
        line += f"  render errors {stats['render_errors']}"
    if stats["recording_error"]:
        line += f"  recording stopped: {stats['recording_error']}"
    return line


def bench_live(seconds: float = 60.0) -> dict[str, Any]:
    """The mesh engine at 1280x720, 30 fps, fed speech from a file in real time, no camera."""
    from scipy.io import wavfile

    from avatar_app.bench_speech import test_speech
    from avatar_app.live.audio_source import FileAudioSource
    from engines.speech.features import RATE

    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        wavfile.write(wav, RATE, (test_speech(20.0) * 32767).astype(np.int16))
        session = LiveSession(LiveSettings(engine="mesh"), FileAudioSource(wav, loop=True))
        rss_start = session.rss_start_mb
        session.start()
        time.sleep(seconds)
        result = session.snapshot()
        session.stop()
    measured = {
        "fps_min": result["fps"],
        "dropped_percent": result["dropped_percent"],
        "latency_ms_p95": result["latency_ms_p95"],
        "cpu_percent": result["cpu_percent_of_all_cores"],
    }
    result["rss_mb_start"] = round(rss_start, 1)
    result["rss_mb_end"] = result.pop("rss_mb")
    result["targets"] = {
        key: {
            "target": limit,
            "value": measured[key],
            "pass": measured[key] >= limit if key == "fps_min" else measured[key] <= limit,
        }
        for key, limit in BENCH_TARGETS.items()
    }
    return result
