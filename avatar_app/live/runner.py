"""``avatar-app live`` and ``avatar-app bench live``: settings from options, then a session."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from avatar_app.exit_codes import EXIT_INTERRUPTED, EXIT_USER_ERROR
from avatar_app.framing import parse_size
from avatar_app.pipeline.session import LiveSession, LiveStats, SessionEvent, State, StateChanged
from avatar_app.pipeline.settings import PipelineSettings
from engines.errors import DeviceError

STATUS_EVERY = 5.0  # seconds between status lines
BENCH_TARGETS = {
    "fps_min": 29.5,
    "dropped_percent": 0.5,
    "latency_ms_p95": 90.0,
    "cpu_percent": 60.0,
}
SWAP_AT = 0.5  # bench live swaps the portrait this far into the run
MICROPHONE_STATES = {
    "reconnecting": "MICROPHONE DOWN (reconnecting)",
    "silent": "microphone silent (muted?)",
    "stopped": "microphone stopped",
}


def settings_from_args(args: argparse.Namespace) -> PipelineSettings:
    """The pipeline settings ``live``'s options (and the preview's) ask for."""
    return PipelineSettings(
        portrait=args.portrait,
        size=parse_size(args.size),
        fit=args.fit,
        fps=args.fps,
        engine=args.engine,
        mode=args.mode,
        vad_aggressiveness=int(args.vad),
        push_to_talk=args.ptt,
        microphone=args.mic,
        audio_file=args.audio_file,
        webcam=args.webcam,
        video_file=args.video_file,
        virtual_camera=args.vcam,
        test_pattern=args.test_pattern,
        voice_out=args.voice_out,
        voice_offset_ms=args.voice_offset,
        voice_follows_gate=not args.voice_always_on,
    )


def start_session(args: argparse.Namespace, session: LiveSession) -> None:
    """Start ``session`` and the recording ``--record`` asks for."""
    session.start()
    if args.record:
        try:
            session.start_recording(args.record).result()
        except BaseException:
            session.stop()
            raise


def run_live_session(args: argparse.Namespace) -> int:
    """Headless: run until Ctrl-C, SIGTERM or ``--seconds``, with a status line every 5 s.

    Exits 0, 130 after Ctrl-C, or 2 with an ``error:`` line when the recording failed (the
    camera went on meanwhile, but the file is not what was asked for)."""
    if args.ptt == "key":
        raise DeviceError(
            "Push-to-talk on a held key needs the window: run `avatar-app-preview --ptt key`, "
            "or use --ptt vad here."
        )
    session = LiveSession(settings_from_args(args))
    session.subscribe(_print_state_changes)
    start_session(args, session)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("Live. Press Ctrl-C to stop.", file=sys.stderr)
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    interrupted = False
    try:
        while True:
            left = STATUS_EVERY if deadline is None else deadline - time.monotonic()
            if stop.wait(max(0.0, min(STATUS_EVERY, left))):
                break
            if deadline is not None and left <= STATUS_EVERY:
                break
            print(status_line(session.snapshot()), file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        session.stop()
    print(status_line(session.snapshot()), file=sys.stderr)
    if args.record and session.recording_error:
        print(f"error: The recording failed: {session.recording_error}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.record:
        print(f"Recorded {args.record}", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupted else 0


def _print_state_changes(event: SessionEvent) -> None:
    if isinstance(event, StateChanged) and event.state is State.DEGRADED:
        print(f"warning: {event.reason}", file=sys.stderr)


def status_line(stats: LiveStats) -> str:
    line = (
        f"{stats.seconds:7.1f} s  {stats.fps:5.1f} fps  dropped {stats.dropped} "
        f"({stats.dropped_percent}%)  mic->frame {_ms(stats.latency_ms_p50)}/"
        f"{_ms(stats.latency_ms_p95)} ms (p50/p95)  CPU {stats.cpu_percent_of_all_cores}%  "
        f"RSS {stats.rss_mb:.0f} MB"
    )
    if stats.webcam_latency_ms_p95 is not None:
        line += (
            f"  webcam->frame {_ms(stats.webcam_latency_ms_p50)}/"
            f"{_ms(stats.webcam_latency_ms_p95)} ms"
        )
    if stats.voice_delay_ms is not None:
        line += f"  voice delayed {stats.voice_delay_ms:.0f} ms"
    if stats.microphone != "running":
        line += f"  {MICROPHONE_STATES.get(stats.microphone, 'microphone ' + stats.microphone)}"
    if stats.render_errors:
        line += f"  render errors {stats.render_errors}"
    if stats.recording_error:
        line += f"  recording stopped: {stats.recording_error}"
    return line


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def bench_live(seconds: float = 60.0, voice_out: str = "auto") -> dict[str, Any]:
    """The mesh engine at 1280x720, 30 fps, fed speech from a file in real time, no camera.

    Halfway through the run the portrait is swapped for a mirrored copy, and the longest gap
    between two frames handed on during the swap is reported. With ``voice_out`` the delayed
    voice runs too, and the voice-to-mouth offset is reported with it on and off.
    """
    from PIL import Image, ImageOps

    from avatar_app.bench_speech import speech_for_bench
    from avatar_app.portrait_file import bundled_portrait_path
    from engines.speech.features import RATE

    with tempfile.TemporaryDirectory() as folder:
        speech, speech_source = speech_for_bench(20.0)
        wav = Path(folder) / "speech.wav"
        _write_wav(wav, speech, RATE)
        other = Path(folder) / "mirrored.png"
        ImageOps.mirror(Image.open(bundled_portrait_path())).save(other)
        session = LiveSession(
            PipelineSettings(
                engine="mesh", audio_file=wav, virtual_camera="off", voice_out=voice_out
            )
        )
        session.start()
        try:
            time.sleep(seconds * SWAP_AT)
            session.reset_longest_gap()
            started = time.perf_counter()
            session.set_portrait(other).result()
            swap_ms = (time.perf_counter() - started) * 1000
            time.sleep(0.5)  # the cross-fade
            swap_gap_ms = session.snapshot().longest_gap_ms
            time.sleep(max(0.0, seconds * (1 - SWAP_AT) - 0.5))
            stats = session.snapshot()
        finally:
            session.stop()
    measured = {
        "fps_min": stats.fps,
        "dropped_percent": stats.dropped_percent,
        "latency_ms_p95": stats.latency_ms_p95 or float("nan"),
        "cpu_percent": stats.cpu_percent_of_all_cores,
    }
    result = stats.as_dict()
    result.update(
        speech=speech_source,
        rss_mb_start=round(session.rss_start_mb, 1),
        rss_mb_end=result.pop("rss_mb"),
        portrait_swap_ms=round(swap_ms, 1),
        portrait_swap_longest_frame_gap_ms=swap_gap_ms,
        targets={
            key: {
                "target": limit,
                "value": measured[key],
                "pass": measured[key] >= limit if key == "fps_min" else measured[key] <= limit,
            }
            for key, limit in BENCH_TARGETS.items()
        },
        voice_to_mouth_ms=_voice_to_mouth(stats, session.voice_problem, voice_out),
        all_figures="measured in this run",
    )
    del result["longest_gap_ms"]
    return result


def _voice_to_mouth(stats: LiveStats, problem: str, voice_out: str) -> dict[str, Any]:
    """How much later the call hears a sound than it sees the mouth for it (negative: the
    voice leads), with the voice going straight from the microphone and through the delayed
    voice-out (its writer's measured delay; a sound server adds its own buffering to both)."""
    picture = stats.picture_delay_ms_p50
    on = None
    if stats.voice_delay_ms is not None and picture is not None:
        on = round(stats.voice_delay_ms - picture, 1)
    reason = None
    if on is None:
        reason = "voice-out was off" if voice_out == "off" else problem or "no measurement"
    return {
        "voice_out_off": None if picture is None else -picture,
        "voice_out_on": on,
        "voice_out_on_missing_because": reason,
    }


def _write_wav(path: Path, samples: Any, rate: int) -> None:
    import numpy as np
    from scipy.io import wavfile

    wavfile.write(path, rate, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
