"""The ``avatar-app`` command: ``demo`` renders the scripted sweep to an MP4, ``bench`` measures.

Heavy modules are imported inside the commands, so ``bench`` can restrict BLAS threads
before numpy loads and ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from avatar_app.exit_codes import EXIT_INTERRUPTED, EXIT_USER_ERROR
from avatar_app.version import app_version

if TYPE_CHECKING:
    from avatar_app.pipeline.settings import PipelineSettings

log = logging.getLogger("avatar_app")


@dataclass(frozen=True)
class WindowHooks:
    """What only ``ui`` can do, passed in by the ``avatar-app`` program (``ui.launcher``), so
    that nothing outside ``ui`` imports Qt."""

    open_window: Callable[[bool], int]  # (start in the tray) -> exit code
    bench_gui: Callable[[float], dict[str, Any]]  # (seconds live) -> bench JSON


def main(argv: Sequence[str] | None = None, window: WindowHooks | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.window = window
    if args.command == "bench":
        from avatar_app.bench import single_thread_env

        single_thread_env()
    from avatar_app.logging_setup import setup_logging
    from engines.errors import AvatarError

    setup_logging(args.verbose)
    if args.command is None:
        return run_window(args)
    try:
        return int(args.run(args))
    except AvatarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar-app",
        description="One portrait photo becomes a live, talking face. With no command, the "
        "window opens.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("--version", action="version", version=f"avatar-app {app_version()}")
    parser.add_argument(
        "--tray", action="store_true", help="with no command: start hidden in the system tray"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # -v also after the subcommand; SUPPRESS keeps the top-level value when it is absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )

    demo = commands.add_parser(
        "demo", parents=[common], help="render the scripted motion sweep to an MP4 file"
    )
    demo.add_argument("--portrait", type=Path, help="photo to animate (default: bundled one)")
    demo.add_argument("--size", default="512", help="output size: N (NxN) or WxH; default 512")
    demo.add_argument("--fit", choices=("fill", "fit"), default="fill", help="crop or letterbox")
    demo.add_argument("--fps", type=_fps, default=25, help="frames per second, 1-60")
    demo.add_argument("--engine", default="auto", help="renderer: mesh or auto (default)")
    demo.add_argument("-o", "--output", type=Path, required=True, help="the MP4 file to write")
    demo.set_defaults(run=run_demo)

    sheet = commands.add_parser(
        "sheet",
        parents=[common],
        help="one labelled picture of key poses, mouth shapes and blinks: how your photo looks",
    )
    sheet.add_argument("--portrait", type=Path, help="photo to animate (default: bundled one)")
    sheet.add_argument("--size", default="1280x720", help="frame size rendered: N or WxH")
    sheet.add_argument("--fit", choices=("fill", "fit"), default="fill", help="crop or letterbox")
    sheet.add_argument("--engine", default="auto", help="renderer: mesh or auto (default)")
    sheet.add_argument("-o", "--output", type=Path, required=True, help="image to write (.png)")
    sheet.set_defaults(run=run_sheet)

    render_cmd = commands.add_parser(
        "render",
        parents=[common],
        help="make the portrait speak a sound file (or text) into an MP4",
    )
    said = render_cmd.add_mutually_exclusive_group(required=True)
    said.add_argument("--audio", type=Path, help="speech to lip-sync: wav, mp3, flac, ogg, m4a...")
    said.add_argument("--say", metavar="TEXT", help="text spoken by espeak-ng instead of --audio")
    render_cmd.add_argument("--voice", default="en-us", help="espeak-ng voice for --say")
    render_cmd.add_argument("--portrait", type=Path, help="photo to animate (default: bundled one)")
    render_cmd.add_argument("--size", default="512", help="output size: N (NxN) or WxH")
    render_cmd.add_argument(
        "--fit", choices=("fill", "fit"), default="fill", help="crop or letterbox"
    )
    render_cmd.add_argument("--fps", type=_fps, default=25, help="frames per second, 1-60")
    render_cmd.add_argument("--engine", default="auto", help="renderer: mesh or auto (default)")
    render_cmd.add_argument(
        "--lookahead",
        type=_lookahead,
        default=60.0,
        help=f"ms of sound heard before a frame is shown: {MIN_LOOKAHEAD_MS} to "
        f"{MAX_LOOKAHEAD_MS:g}, used in 10 ms steps (default 60, i.e. 52.5)",
    )
    render_cmd.add_argument(
        "--vad",
        choices=("0", "1", "2", "3", "off"),
        default="2",
        help="voice detection strictness, 0-3, or off (default 2)",
    )
    render_cmd.add_argument(
        "--seed", type=_seed, default=0, help="seed of the idle motion, 0 or more"
    )
    render_cmd.add_argument("-o", "--output", type=Path, required=True, help="the MP4 to write")
    render_cmd.set_defaults(run=run_render)

    drive = commands.add_parser(
        "drive", parents=[common], help="make the portrait follow the face in a video"
    )
    drive.add_argument("--video", type=Path, required=True, help="a video of a face to follow")
    drive.add_argument("--portrait", type=Path, help="photo to animate (default: bundled one)")
    drive.add_argument("--size", default="512", help="output size: N (NxN) or WxH")
    drive.add_argument("--fit", choices=("fill", "fit"), default="fill", help="crop or letterbox")
    drive.add_argument("--engine", default="auto", help="renderer: mesh or auto (default)")
    drive.add_argument(
        "--neutral-frame",
        type=_frame_index,
        help="frame showing the resting face (default: the first with a face)",
    )
    drive.add_argument("-o", "--output", type=Path, required=True, help="the MP4 to write")
    drive.set_defaults(run=run_drive)

    live = commands.add_parser(
        "live", parents=[common], help="run the talking portrait as a camera until Ctrl-C"
    )
    heard = live.add_mutually_exclusive_group()
    heard.add_argument("--mic", metavar="NAME", help="microphone by name (default: the system's)")
    heard.add_argument("--audio-file", type=Path, help="play this sound file in a loop instead")
    live.add_argument("--portrait", type=Path, help="photo to animate (default: bundled one)")
    live.add_argument(
        "--webcam", default="off", help="webcam to follow: a name, a /dev/videoN, auto, or off"
    )
    live.add_argument("--video-file", type=Path, help="follow the face in this video instead")
    live.add_argument(
        "--mode",
        choices=("hybrid", "webcam", "audio"),
        default="hybrid",
        help="with a webcam: speech moves the mouth and the webcam the rest (hybrid), the webcam "
        "moves everything (webcam), or the webcam is ignored (audio)",
    )
    live.add_argument("--engine", default="auto", help="renderer: mesh or auto (default)")
    live.add_argument(
        "--vcam", default="auto", help="virtual camera: auto, off, or a device such as /dev/video9"
    )
    live.add_argument("--test-pattern", action="store_true", help="send colour bars to the camera")
    live.add_argument("--size", default="1280x720", help="camera size: WxH or N (default 1280x720)")
    live.add_argument("--fit", choices=("fill", "fit"), default="fill", help="crop or letterbox")
    live.add_argument("--fps", type=_fps, default=30, help="frames per second, 1-60")
    live.add_argument(
        "--ptt",
        choices=("vad", "always", "key"),
        default="vad",
        help="mouth moves on detected voice (vad, default), on any sound (always), or while "
        "Space is held in the preview window (key)",
    )
    live.add_argument("--vad", choices=("0", "1", "2", "3"), default="2", help="VAD strictness")
    live.add_argument(
        "--voice-out",
        default="off",
        metavar="auto|DEVICE|off",
        help="send your voice, delayed to match the mouth, to a virtual microphone: auto "
        '(Linux: creates "Avatar Microphone"; Windows/macOS: VB-CABLE or BlackHole), an '
        "output's name, or off (default)",
    )
    live.add_argument(
        "--voice-offset",
        type=_voice_offset,
        default=0.0,
        metavar="MS",
        help="extra voice delay in ms, -100..100, for the call app's own video buffering",
    )
    live.add_argument(
        "--voice-always-on",
        action="store_true",
        help="push-to-talk and mute gate only the mouth, not the delayed voice",
    )
    live.add_argument("--record", type=Path, help="also record what the camera shows to this MP4")
    live.add_argument("--seconds", type=_seconds, help="stop by itself after this long")
    live.set_defaults(run=run_live)

    devices = commands.add_parser(
        "devices", parents=[common], help="list microphones, cameras and virtual cameras"
    )
    devices.set_defaults(run=run_devices)
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check what live mode needs and say how to fix it"
    )
    doctor.set_defaults(run=run_doctor)

    bench = commands.add_parser("bench", help="measure speed and memory; prints JSON")
    what = bench.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    render = what.add_parser("render", parents=[common], help="renderer prepare and per-frame time")
    render.add_argument(
        "--frames", type=_frames, help="frames per size (default 200; liveportrait 3)"
    )
    render.add_argument("--portrait", type=Path, help="photo to use (default: bundled one)")
    render.add_argument(
        "--engine", default="auto", help="renderer: mesh, liveportrait or auto (default)"
    )
    render.set_defaults(run=run_bench_render)
    live_bench = what.add_parser(
        "live", parents=[common], help="the live pipeline, real-time paced"
    )
    live_bench.add_argument("--seconds", type=_seconds, default=60.0, help="how long to run")
    live_bench.add_argument(
        "--voice-out",
        default="auto",
        metavar="auto|DEVICE|off",
        help="run the delayed voice too (default auto) and report the voice-to-mouth offset",
    )
    live_bench.set_defaults(run=run_bench_live)
    track = what.add_parser("track", parents=[common], help="webcam tracking cost and latency")
    track.add_argument("--seconds", type=_seconds, default=20.0, help="how long to run live")
    track.set_defaults(run=run_bench_track)
    gui = what.add_parser(
        "gui", parents=[common], help="window launch, go-live and GUI-thread stall (JSON)"
    )
    gui.add_argument("--seconds", type=_seconds, default=30.0, help="how long to stay live")
    gui.set_defaults(run=run_bench_gui)
    speech = what.add_parser("speech", parents=[common], help="lip-sync model cost and lookahead")
    speech.add_argument("--seconds", type=_seconds, default=30.0, help="seconds of speech to run")
    speech.set_defaults(run=run_bench_speech)
    lipsync = what.add_parser(
        "lipsync", parents=[common], help="rendered mouth vs real speech, re-detected (JSON)"
    )
    lipsync.add_argument(
        "--set", type=Path, help="evaluation set (default ~/.cache/avatar-app/eval)"
    )
    lipsync.add_argument(
        "--minutes",
        type=lambda text: _decimal(text, 0.0, 10_000.0, "minutes", low_open=True),
        help="use about this much of the set, speakers in turn (default: all)",
    )
    lipsync.add_argument(
        "--fps",
        type=lambda text: _whole_number(text, 1, 100),
        default=25,
        help="render rate (default 25; 100 needs no interpolation onto the 10 ms grid)",
    )
    lipsync.add_argument(
        "--variants",
        default="path",
        help="comma-separated: path (the whole offline path), aligned, model-jaw, volume",
    )
    lipsync.add_argument("--portrait", type=Path, help="photo to use (default: bundled one)")
    lipsync.set_defaults(run=run_bench_lipsync)

    models = commands.add_parser("models", help="download model files into the user cache")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="WHAT")
    fetch = model_commands.add_parser("fetch", parents=[common], help="download a model")
    fetch.add_argument("name", choices=("face-landmarker", "liveportrait"), help="which model")
    fetch.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="liveportrait only: verify and copy the files you already have in DIR instead",
    )
    fetch.set_defaults(run=run_models_fetch)

    engines = commands.add_parser("engines", help="prepare the neural engine's models")
    engine_commands = engines.add_subparsers(dest="engines_command", required=True, metavar="WHAT")
    export = engine_commands.add_parser(
        "export", parents=[common], help="write ONNX models from the downloaded weights"
    )
    export.add_argument("name", choices=("liveportrait",), help="which engine")
    export.add_argument("--out", type=Path, help="folder for the ONNX files (default: cache)")
    export.set_defaults(run=run_engines_export)
    build_trt = engine_commands.add_parser(
        "build-trt", parents=[common], help="build TensorRT engines for this GPU (cached)"
    )
    build_trt.add_argument("--fp32", action="store_true", help="full precision (default fp16)")
    build_trt.set_defaults(run=run_engines_build_trt)
    return parser


def run_window(args: argparse.Namespace) -> int:
    """The desktop app, where there is a display to show it on and Qt to show it with."""
    if args.window is None:
        print(
            "error: give a command (`avatar-app --help` lists them); the window opens from the "
            "`avatar-app` program itself.",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    if not _has_display():
        print(
            "error: no display to open the window on. Run a command instead, e.g. "
            '`avatar-app render --say "Hello" -o hello.mp4` or `avatar-app live`; '
            "`avatar-app --help` lists them.",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    return int(args.window.open_window(args.tray))


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


MIN_LOOKAHEAD_MS = 52.5
"""The lip-sync model's own lookahead plus one feature hop (``SpeechMotion`` checks it too)."""
MAX_LOOKAHEAD_MS = 1000.0
MAX_FPS = 60
MAX_SECONDS = 7 * 24 * 3600.0
MAX_FRAMES = 100_000
MAX_SEED = 2**32 - 1


def _whole_number(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from {low} to {high}, got {text!r}"
        )
    return value


def _decimal(text: str, low: float, high: float, unit: str, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    inside = (low < value if low_open else low <= value) and value <= high  # False for nan
    if not inside:
        above = f"above {low:g}" if low_open else f"from {low:g}"
        raise argparse.ArgumentTypeError(f"expected {unit} {above} to {high:g}, got {text!r}")
    return value


def _fps(text: str) -> int:
    return _whole_number(text, 1, MAX_FPS)


def _frames(text: str) -> int:
    return _whole_number(text, 1, MAX_FRAMES)


def _frame_index(text: str) -> int:
    return _whole_number(text, 0, 10**9)


def _seed(text: str) -> int:
    return _whole_number(text, 0, MAX_SEED)


def _seconds(text: str) -> float:
    return _decimal(text, 0.0, MAX_SECONDS, "seconds", low_open=True)


def _lookahead(text: str) -> float:
    return _decimal(text, MIN_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS, "milliseconds")


def _voice_offset(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -100.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"expected milliseconds from -100 to 100, got {text!r}")
    return value


def _picture_settings(args: argparse.Namespace, **motion: Any) -> PipelineSettings:
    """The portrait, size, framing and engine the options ask for, plus ``motion`` settings."""
    from avatar_app.framing import parse_size
    from avatar_app.pipeline.settings import PipelineSettings

    picture = {"fps": args.fps} if "fps" in args else {}
    return PipelineSettings(
        portrait=args.portrait,
        size=parse_size(args.size),
        fit=args.fit,
        engine=args.engine,
        **picture,
        **motion,
    )


def _check_output(output: Path, args: argparse.Namespace, *inputs: Path | None) -> None:
    """Refuse, before any slow work, a bad size, or an output that cannot be written or is
    an input, or a photo that cannot be opened.

    Also turns SIGTERM into a normal exit, so an interrupted render leaves no file behind.
    """
    from avatar_app.atomic_output import IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_output
    from avatar_app.framing import parse_size
    from avatar_app.portrait_file import bundled_portrait_path, check_portrait_file

    parse_size(args.size)
    portrait = args.portrait or bundled_portrait_path()
    suffixes = IMAGE_SUFFIXES if args.command == "sheet" else VIDEO_SUFFIXES
    check_output(output, (portrait, *inputs), suffixes)
    check_portrait_file(portrait)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_demo(args: argparse.Namespace) -> int:
    _check_output(args.output, args)
    from avatar_app.offline.demo import render_demo

    settings = _picture_settings(args)
    progress = LazyProgress("Rendering")
    started = time.perf_counter()
    total = render_demo(args.output, settings, progress)
    progress.finish()
    seconds = time.perf_counter() - started
    print(
        f"Wrote {args.output} ({total} frames, {total / args.fps:.1f} s) "
        f"in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f} frames/s)",
        file=sys.stderr,
    )
    return 0


def run_sheet(args: argparse.Namespace) -> int:
    _check_output(args.output, args)
    from avatar_app.offline.sheet import write_sheet

    width, height = write_sheet(args.output, _picture_settings(args))
    print(f"Wrote {args.output} ({width}x{height})", file=sys.stderr)
    return 0


def run_render(args: argparse.Namespace) -> int:
    _check_output(args.output, args, args.audio)
    if args.audio is not None:
        from avatar_app.audio_file import check_sound_file

        check_sound_file(args.audio)
    from avatar_app.offline.talk import render_talking, spoken_text

    settings = _picture_settings(
        args,
        mode="audio",
        lookahead=args.lookahead / 1000.0,
        vad_aggressiveness=2 if args.vad == "off" else int(args.vad),
        push_to_talk="always" if args.vad == "off" else "vad",
        seed=args.seed,
    )
    audio = args.audio if args.say is None else spoken_text(args.say, args.voice)
    progress = LazyProgress("Rendering")
    started = time.perf_counter()
    frames = render_talking(audio, args.output, settings, progress)
    progress.finish()
    seconds = time.perf_counter() - started
    print(
        f"Wrote {args.output} ({frames} frames, {frames / args.fps:.1f} s) in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def run_bench_render(args: argparse.Namespace) -> int:
    from avatar_app.bench import bench_render
    from avatar_app.bench_speech import bench_talk_pipeline

    if args.engine.startswith("liveportrait"):
        from avatar_app.bench_liveportrait import bench_liveportrait

        result = bench_liveportrait(args.engine, args.frames or 3, args.portrait)
        print(json.dumps(result, indent=2))
        return 0
    result = bench_render(engine=args.engine, frames=args.frames or 200, portrait=args.portrait)
    result["talking_video"] = bench_talk_pipeline()
    print(json.dumps(result, indent=2))
    return 0


def run_drive(args: argparse.Namespace) -> int:
    from avatar_app.local_file import check_video_file

    _check_output(args.output, args, args.video)
    check_video_file(args.video)
    from avatar_app.offline.drive import render_driven

    settings = _picture_settings(args, mode="webcam")
    progress = LazyProgress("Rendering")
    frames = render_driven(args.video, args.output, settings, args.neutral_frame, progress)
    progress.finish()
    print(f"Wrote {args.output} ({frames} frames)", file=sys.stderr)
    return 0


def run_live(args: argparse.Namespace) -> int:
    from avatar_app.live.runner import run_live_session

    if args.record is not None:
        from avatar_app.atomic_output import check_output
        from avatar_app.portrait_file import bundled_portrait_path

        inputs = (args.portrait or bundled_portrait_path(), args.audio_file, args.video_file)
        check_output(args.record, inputs)
    return run_live_session(args)


def run_devices(args: argparse.Namespace) -> int:
    from avatar_app.live.devices import device_report

    print(device_report())
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from avatar_app.live.doctor import format_report, run_checks

    checks = run_checks()
    print(format_report(checks))
    return 1 if any(not c.ok and c.required for c in checks) else 0


def run_bench_live(args: argparse.Namespace) -> int:
    from avatar_app.live.runner import bench_live

    print(json.dumps(bench_live(args.seconds, args.voice_out), indent=2))
    return 0


def run_bench_gui(args: argparse.Namespace) -> int:
    if args.window is None:
        print("error: run `avatar-app bench gui` (the program with the window).", file=sys.stderr)
        return EXIT_USER_ERROR
    if not _has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    print(json.dumps(args.window.bench_gui(args.seconds), indent=2))
    return 0


def run_bench_track(args: argparse.Namespace) -> int:
    from avatar_app.bench_track import bench_track

    print(json.dumps(bench_track(args.seconds), indent=2))
    return 0


def run_bench_speech(args: argparse.Namespace) -> int:
    from avatar_app.bench_speech import bench_speech

    print(json.dumps(bench_speech(args.seconds), indent=2))
    return 0


def run_bench_lipsync(args: argparse.Namespace) -> int:
    from avatar_app.bench_lipsync import bench_lipsync

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        result = bench_lipsync(args.set, args.minutes, args.fps, variants, args.portrait)
    except FileNotFoundError as exc:
        print(
            f"error: no evaluation set ({exc}). Build one with "
            "`python -m engines.speech.training.eval_set` (pip install -e '.[train]').",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(json.dumps(result, indent=2))
    return 0


def run_models_fetch(args: argparse.Namespace) -> int:
    if args.name == "liveportrait":
        return _fetch_liveportrait(args.from_dir)
    if args.from_dir is not None:
        print(f"error: --from works only with liveportrait, not {args.name}", file=sys.stderr)
        return EXIT_USER_ERROR
    from avatar_app.model_fetch import fetch_face_landmarker

    progress = LazyProgress("Downloading")
    path = fetch_face_landmarker(progress=progress)
    progress.finish()
    print(f"Saved {path}", file=sys.stderr)
    return 0


def _fetch_liveportrait(from_dir: Path | None) -> int:
    from avatar_app.model_fetch import fetch_liveportrait, import_liveportrait
    from engines.liveportrait.weights import weights_dir

    if from_dir is not None:
        print(f"Checking the LivePortrait files in {from_dir} ...", file=sys.stderr)
        paths = import_liveportrait(from_dir)
    else:
        progress = LazyProgress("Downloading LivePortrait")
        try:
            paths = fetch_liveportrait(progress=progress)
        finally:
            progress.finish()
    print(f"LivePortrait weights ready in {weights_dir()} ({len(paths)} files)", file=sys.stderr)
    return 0


def run_engines_export(args: argparse.Namespace) -> int:
    from engines.liveportrait.renderer import onnx_dir
    from engines.liveportrait.weights import find_weights

    find_weights()  # says what to download before anything slow starts
    try:
        from engines.liveportrait.export import export_official
    except ImportError:
        print(
            "error: exporting needs PyTorch and onnx: pip install 'avatar-app[neural]'",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    out = args.out or onnx_dir()
    print(f"Exporting LivePortrait to ONNX in {out} (a minute or two) ...", file=sys.stderr)
    exported = export_official(out, progress=lambda name: print(f"  {name}", file=sys.stderr))
    worst = max(item.max_abs_diff for item in exported.values())
    print(
        f"Wrote {len(exported)} models; largest ONNX-vs-PyTorch difference {worst:.1e}",
        file=sys.stderr,
    )
    if args.out:
        from engines.liveportrait.renderer import ONNX_ENV_VAR

        print(f"Use them with {ONNX_ENV_VAR}={out} ... --engine liveportrait", file=sys.stderr)
    return 0


def run_engines_build_trt(args: argparse.Namespace) -> int:
    from engines.liveportrait.renderer import onnx_dir
    from engines.liveportrait.tensorrt_backend import build_engines

    engines = build_engines(
        onnx_dir(), fp16=not args.fp32, progress=lambda line: print(line, file=sys.stderr)
    )
    folder = next(iter(engines.values())).parent
    print(f"{len(engines)} TensorRT engines ready in {folder}", file=sys.stderr)
    return 0


class Progress:
    """A text progress bar on stderr: redrawn in place on a terminal, else a line per 10 %."""

    WIDTH = 30

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self._last_tenth = -1

    def update(self, done: int) -> None:
        fraction = min(done / self.total, 1.0)
        if self.interactive:
            filled = round(self.WIDTH * fraction)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%} {done}/{self.total}")
            self.stream.flush()
            return
        tenth = int(fraction * 10)
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {tenth * 10}% ({done}/{self.total})\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


class LazyProgress:
    """A ``(done, total)`` callback whose bar appears once the total is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            self.bar = self.bar or Progress(total, self.label)
            self.bar.update(done)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.finish()


if __name__ == "__main__":
    sys.exit(main())
