"""The live session: sound and webcam -> motion -> renderer -> camera, recording and preview,
steerable while it runs.

Threads (DESIGN.md): the motion thread reads sound chunks and runs the speech stage, publishing
the newest ``SpokenFrame``; the render thread ticks at the target fps, mixes in the webcam's
newest face, renders, and hands a ``RenderedFrame`` to every sink (each sink has its own
thread); the control thread runs commands and reports. Nothing a source, the renderer or a sink
does ends the session: a silent or lost microphone feeds silence (the avatar idles), a renderer
error reuses the previous frame, a sink error is counted by that sink.

Commands (``set_portrait``, ``set_microphone``, ``set_mode`` ...) may come from any thread and
return a ``Future``. The control thread does the slow part (prepare a portrait, open a device)
and then posts the swap to the data thread that owns the thing, which applies it at the top of
its next iteration, before touching data: a portrait changes at a frame boundary with a short
cross-fade, and the virtual camera stays open through every change but an output-size change.

State and stats reach subscribers as typed events (``StateChanged``, ``StatsUpdated``,
``CommandFinished``), called on the session's threads: a GUI forwards them through queued
signals.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatar_app.live.pacer import Pacer
from avatar_app.live.recorder import RecorderSink
from avatar_app.live.virtual_camera import VirtualCameraSink
from avatar_app.live.voice_out import VoiceOut
from avatar_app.live.webcam_motion import WebcamMotion
from avatar_app.pipeline import builder
from avatar_app.pipeline.frames import (
    AudioChunk,
    AudioSource,
    FrameSink,
    RenderedFrame,
    SpokenFrame,
)
from avatar_app.pipeline.portrait import ReadyPortrait
from avatar_app.pipeline.settings import Fit, PipelineSettings
from avatar_app.pipeline.stages import SoundTimeline
from avatar_app.process_stats import rss_mb
from engines.controls import NEUTRAL, FaceControls
from engines.errors import AvatarError
from engines.motion.mixer import Policy

log = logging.getLogger(__name__)

SILENCE_AFTER = 0.15  # s without sound before silence is fed in its place
LATENCY_WINDOW = 3000  # frames kept for latency percentiles
PICTURE_DELAY_WINDOW = 1.0  # s of frames whose median picture delay the voice follows
FADE_SECONDS = 0.25  # cross-fade when the portrait or engine changes
REPORT_EVERY = 1.0  # s between stats events and health checks
IDLE_SPOKEN = SpokenFrame(0.0, NEUTRAL, NEUTRAL)


class State(StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    LIVE = "live"
    DEGRADED = "degraded"  # live, but something is wrong: see the reason
    STOPPED = "stopped"


@dataclass(frozen=True)
class LiveStats:
    """What the session measured since it started; latencies in ms, None before any frame."""

    seconds: float
    frames: int
    fps: float
    dropped: int
    dropped_percent: float
    render_errors: int
    source_errors: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_max: float | None
    picture_delay_ms_p50: float | None  # capture of a sound to the frame showing its mouth
    voice_delay_ms: float | None  # capture to output of the delayed voice; None when off
    webcam_latency_ms_p50: float | None
    webcam_latency_ms_p95: float | None
    longest_gap_ms: float  # longest wait between two frames handed on, since the last reset
    cpu_percent_of_all_cores: float
    rss_mb: float
    microphone: str  # the sound source's status: running, silent, reconnecting, stopped
    recording: Path | None
    recording_error: str | None

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["recording"] = None if self.recording is None else str(self.recording)
        return values


@dataclass(frozen=True)
class Meter:
    level_db: float  # loudness of the newest 10 ms of sound, dBFS
    gate: float  # 0: the mouth is shut to the sound (silence, noise, push-to-talk) .. 1: open


@dataclass(frozen=True)
class StateChanged:
    state: State
    reason: str = ""


@dataclass(frozen=True)
class StatsUpdated:
    stats: LiveStats


@dataclass(frozen=True)
class CommandFinished:
    command: str
    error: str | None = None  # what went wrong, said for the user; None when it worked


SessionEvent = StateChanged | StatsUpdated | CommandFinished
Listener = Callable[[SessionEvent], None]
_Command = tuple[str, Callable[[], None], "Future[None]"]


class LiveSession:
    """``start()``, commands while live, ``stop()``. ``sinks`` are extra frame sinks (a preview)
    besides the virtual camera and recording the settings ask for."""

    def __init__(self, settings: PipelineSettings, sinks: Sequence[FrameSink] = ()) -> None:
        self.settings = settings
        self._extra_sinks = tuple(sinks)
        self._state = State.IDLE
        self._reason = ""
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._lifecycle = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._commands: queue.Queue[_Command | None] = queue.Queue()
        self._motion_inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._render_inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # Owned by the render thread once started.
        self._portrait: ReadyPortrait | None = None
        self._mixer = builder.mixer(settings)
        self._vcam: VirtualCameraSink | None = None
        self._sinks: tuple[FrameSink, ...] = ()
        self._on_screen: np.ndarray | None = None  # the newest frame handed on
        self._shown = NEUTRAL  # the controls it shows
        self._fade_from: np.ndarray | None = None
        self._fade_start_ns = 0
        # Owned by the motion thread once started.
        self._audio: AudioSource | None = None
        self._speech = builder.speech_stage(settings)
        self._timeline = SoundTimeline(self._speech)
        self._meter = Meter(-100.0, 0.0)
        # Read by the render thread, swapped by the control thread.
        self._spoken = IDLE_SPOKEN
        self._webcam: WebcamMotion | None = None
        self._recorder: RecorderSink | None = None
        self._voice: VoiceOut | None = None
        self._voice_problem = ""
        self._gate_open = settings.push_to_talk != "key"  # push-to-talk and mute, for the voice
        # Measurements.
        self._started = time.monotonic()
        self._cpu_started = time.process_time()
        self._frames = 0
        self._render_errors = 0
        self._source_errors = 0
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._webcam_latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._picture_delays: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last_handed_ns: int | None = None
        self._longest_gap_ns = 0
        self._pacer = Pacer(settings.fps)
        self._vcam_errors_seen = 0  # failed sends at the last health check
        self.rss_start_mb = 0.0  # resident memory once started
        self.recording_error: str | None = None  # why the last finished recording failed

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def reason(self) -> str:
        """Why the session is degraded or stopped ("" when nothing is wrong)."""
        return self._reason

    @property
    def portrait(self) -> ReadyPortrait | None:
        """The portrait on screen (after a swap's fade has begun)."""
        return self._portrait

    @property
    def voice_problem(self) -> str:
        """Why the delayed voice does not go out although asked for ("" when it does)."""
        return self._voice_problem

    @property
    def meter(self) -> Meter:
        """The newest sound's level and the voice gate: cheap, for a level meter."""
        return self._meter

    @property
    def shown_controls(self) -> FaceControls:
        """The controls the newest frame shows."""
        return self._shown

    @property
    def latest_spoken(self) -> SpokenFrame:
        """Speech's newest motion: what the next frame's mouth shows."""
        return self._spoken

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event (on session threads); returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def start(self) -> None:
        """Prepare the portrait, open sources and sinks, start the threads.

        Raises ``AvatarError`` with what to do when something cannot start; the session is
        then stopped and holds nothing open.
        """
        with self._lifecycle:  # a stop() from another thread waits until this is done
            self._start()

    def _start(self) -> None:
        if self._state is not State.IDLE:
            raise RuntimeError(f"A session starts once; this one is {self._state}.")
        self._set_state(State.STARTING)
        try:
            self._portrait = builder.ready_portrait(self.settings)
            self._audio = builder.audio_source(self.settings)
            self._audio.capture_tap = self._captured
            self._audio.start()
            self._voice = self._open_voice_out(self.settings)
            self._webcam = self._open_webcam(self.settings)
            self._vcam = builder.virtual_camera(self.settings)
            if self._vcam is not None:
                self._vcam.start()
            self._sinks = self._frame_sinks()
        except BaseException as exc:
            self._close_everything()
            self._set_state(State.STOPPED, str(exc) if isinstance(exc, AvatarError) else "")
            raise
        self._started = time.monotonic()
        self._cpu_started = time.process_time()
        self._pacer = Pacer(self.settings.fps)
        for target, name in (
            (self._motion_loop, "motion"),
            (self._render_loop, "render"),
            (self._control_loop, "session-control"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        # What start-up allocated (models, portrait, GUI) lives as long as the session: keep it
        # out of the garbage collector's full passes, which otherwise stall every thread (and
        # so a frame) for about 100 ms each time one runs.
        gc.freeze()
        self.rss_start_mb = rss_mb()
        self._set_state(State.LIVE)

    def stop(self) -> None:
        """Stop every thread, source and sink; idempotent. A recording is finished first."""
        with self._lifecycle:
            self._stop_all()

    def _stop_all(self) -> None:
        if self._state in (State.IDLE, State.STOPPED) and not self._threads:
            self._state = State.STOPPED
            return
        self._stop.set()
        self._commands.put(None)  # wakes the control thread
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._close_everything()
        self._fail_pending_commands()
        self._set_state(State.STOPPED)

    def __enter__(self) -> LiveSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- commands (any thread) -------------------------------------------------------------

    def set_push_to_talk(self, is_open: bool) -> None:
        """Open or close the mouth's push-to-talk gate (cheap; applied by the motion thread);
        the delayed voice follows it unless ``voice_follows_gate`` is off."""
        self._motion_inbox.put(lambda: self._speech.set_push_to_talk(is_open))
        self._gate_open = is_open
        voice = self._voice
        if voice is not None:
            voice.set_gate(is_open)

    def set_voice_detection(self, aggressiveness: int | None) -> None:
        """Voice gate strictness 0-3, or None: any sound moves the mouth."""
        self._motion_inbox.put(lambda: self._speech.set_voice_detection(aggressiveness))

    def set_neutral(self) -> None:
        """The user's next webcam face is their resting face."""
        webcam = self._webcam
        if webcam is not None:
            webcam.set_neutral()

    def set_portrait(self, path: Path | None) -> Future[None]:
        """Swap in another photo (None: the bundled one), prepared off the render thread."""
        return self._command("portrait", lambda: self._swap_portrait(portrait=path))

    def set_framing(self, fit: Fit) -> Future[None]:
        """Crop around the face ("fill") or show the whole photo ("fit")."""
        return self._command("framing", lambda: self._swap_portrait(fit=fit))

    def set_engine(self, engine: str) -> Future[None]:
        """Render with another engine from the next frames on, same photo."""
        return self._command("engine", lambda: self._swap_engine(engine))

    def set_microphone(self, name: str | None) -> Future[None]:
        """Listen to another microphone (None: the system's default)."""
        return self._command("microphone", lambda: self._swap_audio(name, None))

    def set_audio_file(self, path: Path) -> Future[None]:
        """Play a sound file in a loop in place of the microphone."""
        return self._command("microphone", lambda: self._swap_audio(None, path))

    def set_webcam(self, name: str, video_file: Path | None = None) -> Future[None]:
        """Follow another webcam ("off" for none), or a video file in its place."""
        return self._command("webcam", lambda: self._swap_webcam(name, video_file))

    def set_mode(self, mode: Policy) -> Future[None]:
        """Who drives what: "audio", "webcam" or "hybrid"; opens or closes the webcam."""
        return self._command("mode", lambda: self._swap_mode(mode))

    def set_output_size(self, size: tuple[int, int]) -> Future[None]:
        """Another output size: the one change that reopens the virtual camera; a recording
        in progress is finished (its size cannot change)."""
        return self._command("size", lambda: self._swap_size(size))

    def set_voice_out(self, setting: str, offset_ms: float, follows_gate: bool) -> Future[None]:
        """Turn the delayed voice on ("auto" or an output's name) or "off", or change its offset
        and whether push-to-talk silences it; the last two apply at once, without a reopen."""
        return self._command("voice", lambda: self._swap_voice(setting, offset_ms, follows_gate))

    def start_recording(self, path: Path) -> Future[None]:
        """Record what the camera shows plus the sound to an MP4 (ends a previous one)."""
        return self._command("record", lambda: self._start_recording(path))

    def stop_recording(self) -> Future[None]:
        return self._command("stop recording", self._stop_recording)

    # -- reporting -------------------------------------------------------------------------

    def snapshot(self) -> LiveStats:
        """Frames, rate, drops, latency percentiles, CPU and memory so far."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        latencies = _percentiles(self._latencies, (50, 95, 100))
        webcam = _percentiles(self._webcam_latencies, (50, 95))
        dropped = self._pacer.dropped
        cpu = (time.process_time() - self._cpu_started) / elapsed / (os.cpu_count() or 1)
        recorder, audio, voice = self._recorder, self._audio, self._voice
        return LiveStats(
            seconds=round(elapsed, 1),
            frames=self._frames,
            fps=round(self._frames / elapsed, 2),
            dropped=dropped,
            dropped_percent=round(100.0 * dropped / max(self._frames + dropped, 1), 2),
            render_errors=self._render_errors,
            source_errors=self._source_errors,
            latency_ms_p50=latencies[0],
            latency_ms_p95=latencies[1],
            latency_ms_max=latencies[2],
            picture_delay_ms_p50=_percentiles(self._picture_delays, (50,))[0],
            voice_delay_ms=None if voice is None else round(float(voice.delay) * 1000, 1),
            webcam_latency_ms_p50=webcam[0],
            webcam_latency_ms_p95=webcam[1],
            longest_gap_ms=round(self._longest_gap_ns / 1e6, 1),
            cpu_percent_of_all_cores=round(100.0 * cpu, 1),
            rss_mb=round(rss_mb(), 1),
            microphone=_microphone_status(audio),
            recording=None if recorder is None else recorder.path,
            recording_error=None if recorder is None else recorder.error,
        )

    def reset_longest_gap(self) -> None:
        """Start measuring the longest gap between frames afresh (e.g. around a swap)."""
        self._longest_gap_ns = 0

    # -- the control thread ----------------------------------------------------------------

    def _command(self, name: str, work: Callable[[], None]) -> Future[None]:
        future: Future[None] = Future()
        if self._stop.is_set() or self._state in (State.IDLE, State.STOPPED):
            future.set_exception(AvatarError(f"The session is not live; cannot change {name}."))
            return future
        self._commands.put((name, work, future))
        return future

    def _control_loop(self) -> None:
        next_report = time.monotonic() + REPORT_EVERY
        while not self._stop.is_set():
            try:
                command = self._commands.get(timeout=max(0.0, next_report - time.monotonic()))
            except queue.Empty:
                next_report = time.monotonic() + REPORT_EVERY
                self._report()
                continue
            if command is not None:
                self._run_command(*command)

    def _run_command(self, name: str, work: Callable[[], None], future: Future[None]) -> None:
        try:
            work()
        except AvatarError as exc:
            log.warning("Could not change %s: %s", name, exc)
            future.set_exception(exc)
            self._emit(CommandFinished(name, str(exc)))
            return
        except Exception as exc:  # a bug must not end the call: keep what runs
            log.exception("Changing %s failed", name)
            future.set_exception(exc)
            self._emit(CommandFinished(name, f"Changing {name} failed ({exc}); see the log."))
            return
        future.set_result(None)
        self._emit(CommandFinished(name))

    def _fail_pending_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command is None:
                continue
            name, _, future = command
            future.set_exception(AvatarError(f"The session stopped before {name} changed."))

    def _report(self) -> None:
        self._steer_voice()
        problems = self._problems()
        state = State.DEGRADED if problems else State.LIVE
        self._set_state(state, "; ".join(problems))
        self._emit(StatsUpdated(self.snapshot()))

    def _problems(self) -> list[str]:
        problems = [self._voice_problem] if self._voice_problem else []
        audio, webcam, recorder, vcam = self._audio, self._webcam, self._recorder, self._vcam
        if audio is not None and audio.status != "running":
            problems.append(f"The microphone is {audio.status}; the avatar idles meanwhile")
        elif audio is not None and audio.silent:
            problems.append(
                "The microphone brings only silence: unmute it or pick another input; "
                "the avatar idles meanwhile"
            )
        if webcam is not None and webcam.error:
            problems.append(webcam.error)
        if recorder is not None and recorder.error:
            problems.append(f"Recording stopped: {recorder.error}")
        if vcam is not None:
            errors = vcam.stats()["errors"]
            if errors > self._vcam_errors_seen:
                problems.append("The virtual camera refuses frames; see the log")
            self._vcam_errors_seen = errors
        return problems

    def _swap_portrait(self, **changes: Any) -> None:
        settings = replace(self.settings, **changes)
        ready = builder.ready_portrait(settings)
        self._apply_on_render_thread(lambda: self._show_portrait(ready))
        self.settings = settings

    def _swap_engine(self, engine: str) -> None:
        current = self._portrait
        assert current is not None
        ready = builder.with_engine(current, engine)
        self._apply_on_render_thread(lambda: self._show_portrait(ready))
        self.settings = replace(self.settings, engine=engine)

    def _swap_audio(self, microphone: str | None, audio_file: Path | None) -> None:
        settings = replace(self.settings, microphone=microphone, audio_file=audio_file)
        source = builder.audio_source(settings)
        source.capture_tap = self._captured
        source.start()  # a device that cannot open raises here; the old one keeps going
        old = self._audio

        def swap() -> None:
            self._audio = source

        self._apply_on_motion_thread(swap)
        if old is not None:
            old.stop()
        self.settings = settings

    def _swap_voice(self, setting: str, offset_ms: float, follows_gate: bool) -> None:
        settings = replace(
            self.settings,
            voice_out=setting,
            voice_offset_ms=offset_ms,
            voice_follows_gate=follows_gate,
        )
        voice = self._voice
        if voice is not None and setting == self.settings.voice_out:
            voice.offset_s = offset_ms / 1000
            voice.follows_gate = follows_gate
            voice.set_gate(self._gate_open)
            self.settings = settings
            return
        # The old output goes first: "auto" would otherwise meet its own devices' names.
        self._voice = None
        self._voice_problem = ""
        if voice is not None:
            voice.stop()
        fresh = self._open_voice_out(settings)
        if fresh is not None:
            fresh.set_gate(self._gate_open)
        self._voice = fresh
        self._steer_voice()
        self.settings = settings
        if self._voice_problem:
            raise AvatarError(self._voice_problem)

    def _swap_webcam(self, name: str, video_file: Path | None) -> None:
        self._replace_webcam(replace(self.settings, webcam=name, video_file=video_file))

    def _swap_mode(self, mode: Policy) -> None:
        settings = replace(self.settings, mode=mode)
        if settings.uses_webcam != self.settings.uses_webcam:
            self._replace_webcam(settings)

        def swap() -> None:
            self._mixer.policy = mode

        self._apply_on_render_thread(swap)
        self.settings = settings

    def _replace_webcam(self, settings: PipelineSettings) -> None:
        webcam = self._open_webcam(settings)
        old, self._webcam = self._webcam, webcam
        if old is not None:
            old.stop()
        self.settings = settings

    def _swap_size(self, size: tuple[int, int]) -> None:
        settings = replace(self.settings, size=size)
        ready = builder.ready_portrait(settings)
        self._stop_recording()
        old_vcam = self._vcam

        def swap() -> None:
            self._vcam = None
            self._sinks = self._frame_sinks()
            self._show_portrait(ready)

        self._apply_on_render_thread(swap)
        if old_vcam is not None:
            old_vcam.stop()
        vcam = builder.virtual_camera(settings)
        if vcam is not None:
            vcam.start()

        def attach() -> None:
            self._vcam = vcam
            self._sinks = self._frame_sinks()

        self._apply_on_render_thread(attach)
        self.settings = settings

    def _start_recording(self, path: Path) -> None:
        self._stop_recording()
        assert self._audio is not None  # set while live
        sound = self._audio.recording_format
        self._recorder = builder.recorder(self.settings, path, time.monotonic_ns(), sound)
        self.recording_error = None

    def _stop_recording(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.stop()
            self.recording_error = recorder.error

    def _captured(self, chunk: AudioChunk) -> None:
        """On the capture thread, the sound as captured (the device's rate and channels): for
        the delayed voice (through the motion thread it would come late by that thread's
        stalls, which the delay has too little slack to absorb) and the recording. Never
        blocks."""
        voice, recorder = self._voice, self._recorder
        if voice is not None:
            voice.feed(chunk)
        if recorder is not None:
            recorder.submit_audio(chunk)

    def _apply_on_render_thread(self, change: Callable[[], None]) -> None:
        _apply(self._render_inbox, change, self._stop)

    def _apply_on_motion_thread(self, change: Callable[[], None]) -> None:
        _apply(self._motion_inbox, change, self._stop)

    # -- the motion thread -----------------------------------------------------------------

    def _motion_loop(self) -> None:
        while not self._stop.is_set():
            _drain(self._motion_inbox)
            audio = self._audio
            assert audio is not None
            try:
                chunk = audio.read(timeout=0.05)
            except Exception:  # a broken source must not end the call: idle meanwhile
                self._source_errors += 1
                if self._source_errors <= 3:
                    log.exception("Reading the sound failed; the avatar idles meanwhile")
                self._stop.wait(0.05)
                chunk = None
            if chunk is None:
                until = time.monotonic_ns() - int(SILENCE_AFTER * 1e9)
                self._publish(self._timeline.silence_until(until))
                continue
            self._publish(self._timeline.chunk(chunk))
            self._meter = Meter(_level_db(chunk.samples), self._speech.speech.gate)

    def _publish(self, spoken: list[SpokenFrame]) -> None:
        if spoken:
            self._spoken = spoken[-1]

    # -- the render thread -----------------------------------------------------------------

    def _render_loop(self) -> None:
        assert self._portrait is not None
        previous = self._portrait.frame
        self._on_screen = previous
        while (due := self._pacer.wait(self._stop)) is not None:
            _drain(self._render_inbox)
            spoken, webcam = self._spoken, self._webcam
            face, seen_ns = (None, None) if webcam is None else webcam.latest(time.monotonic_ns())
            controls = self._mixer.controls(due / 1e9, spoken.life, spoken.mouth, face)
            self._shown = controls
            try:
                rgb = self._render(controls, due)
            except Exception:  # one bad frame must not end a call
                self._render_errors += 1
                if self._render_errors <= 3:
                    log.exception("Rendering a frame failed; showing the previous one")
                rgb = previous
            previous = self._on_screen = rgb
            frame = RenderedFrame(
                rgb, due, spoken.heard_ns, seen_ns if face is not None else None, spoken.shows_ns
            )
            self._hand_on(frame)

    def _render(self, controls: FaceControls, due_ns: int) -> np.ndarray:
        portrait = self._portrait
        assert portrait is not None
        rgb = portrait.render(controls)
        fade_from = self._fade_from
        if fade_from is not None:
            progress = (due_ns - self._fade_start_ns) / (FADE_SECONDS * 1e9)
            if progress >= 1.0 or fade_from.shape != rgb.shape:
                self._fade_from = None
            else:
                rgb = cv2.addWeighted(fade_from, 1.0 - progress, rgb, progress, 0.0)
        return rgb

    def _show_portrait(self, ready: ReadyPortrait) -> None:
        """On the render thread: cross-fade from what is on screen to ``ready``."""
        on_screen = self._on_screen
        if on_screen is not None and on_screen.shape == ready.frame.shape:
            self._fade_from = on_screen
            self._fade_start_ns = time.monotonic_ns()
        self._portrait = ready

    def _hand_on(self, frame: RenderedFrame) -> None:
        for sink in self._sinks:
            try:
                sink.submit(frame)
            except Exception:
                log.exception("A frame sink failed")
        recorder = self._recorder
        if recorder is not None:
            recorder.submit(frame)
        self._frames += 1
        handed_ns = time.monotonic_ns()
        if self._last_handed_ns is not None:
            self._longest_gap_ns = max(self._longest_gap_ns, handed_ns - self._last_handed_ns)
        self._last_handed_ns = handed_ns
        if frame.heard_ns is not None:
            self._latencies.append((handed_ns - frame.heard_ns) / 1e6)
        if frame.seen_ns is not None:
            self._webcam_latencies.append((handed_ns - frame.seen_ns) / 1e6)
        if frame.shows_ns is not None:
            self._picture_delays.append((handed_ns - frame.shows_ns) / 1e6)

    # -- helpers ---------------------------------------------------------------------------

    def _frame_sinks(self) -> tuple[FrameSink, ...]:
        return (*(() if self._vcam is None else (self._vcam,)), *self._extra_sinks)

    def _open_webcam(self, settings: PipelineSettings) -> WebcamMotion | None:
        webcam = builder.webcam(settings)
        if webcam is not None:
            webcam.start()
        return webcam

    def _open_voice_out(self, settings: PipelineSettings) -> VoiceOut | None:
        """The virtual microphone, started; one that cannot start is a warning, not a failed
        start (the call still gets the avatar, only the voice is not delayed)."""
        voice = builder.voice_out(settings)
        if voice is None:
            return None
        try:
            voice.start()
        except AvatarError as exc:
            self._voice_problem = f"The voice is not synced: {exc}"
            log.warning("%s", self._voice_problem)
            return None
        if not voice.running:  # nothing to play into: it said why
            self._voice_problem = voice.warning
            return None
        return voice

    def _steer_voice(self) -> None:
        """Aim the voice's delay at the median picture delay of the last second."""
        voice, delays = self._voice, self._picture_delays
        recent = list(delays)[-max(1, round(PICTURE_DELAY_WINDOW * self.settings.fps)) :]
        if voice is not None and recent:
            voice.set_picture_delay(float(np.median(recent)) / 1000)

    def _close_everything(self) -> None:
        self._stop_recording()
        parts = (self._audio, self._voice, self._webcam, self._vcam, *self._extra_sinks)
        for part in parts:
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("Stopping %s failed", type(part).__name__)

    def _set_state(self, state: State, reason: str = "") -> None:
        if (state, reason) == (self._state, self._reason):
            return
        self._state, self._reason = state, reason
        if state is State.DEGRADED:
            log.warning("Degraded: %s", reason)
        self._emit(StateChanged(state, reason))

    def _emit(self, event: SessionEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("A session listener failed")


def _apply(
    inbox: queue.SimpleQueue[Callable[[], None]], change: Callable[[], None], stop: threading.Event
) -> None:
    """Post ``change`` to a data thread's inbox and wait until that thread has run it."""
    done = threading.Event()

    def run() -> None:
        try:
            change()
        finally:
            done.set()

    inbox.put(run)
    while not done.wait(0.05):
        if stop.is_set():
            raise AvatarError("The session stopped before the change took effect.")


def _drain(inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
    while True:
        try:
            change = inbox.get_nowait()
        except queue.Empty:
            return
        change()


def _microphone_status(audio: AudioSource | None) -> str:
    if audio is None:
        return "stopped"
    return "silent" if audio.status == "running" and audio.silent else audio.status


def _level_db(samples: np.ndarray) -> float:
    power = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
    return max(-100.0, 10.0 * math.log10(power + 1e-10))


def _percentiles(values: deque[float], points: tuple[int, ...]) -> tuple[float | None, ...]:
    if not values:
        return tuple(None for _ in points)
    found = np.percentile(np.array(values), points)
    return tuple(round(float(v), 1) for v in found)
