"""The live session: microphone -> mouth and idle life -> renderer -> camera and recorder.

Threads (DESIGN.md): the audio source fills a bounded queue; the motion thread runs the
streaming speech core and publishes the newest ``FaceControls`` into a latest-value slot; the
render thread ticks at the target fps, renders whatever controls are newest, and hands the
frame to every sink (each sink has its own thread). Nothing a source, the renderer or a sink
does ends the session: a silent or lost microphone feeds silence (the avatar idles), a
renderer error reuses the previous frame, a sink error is counted by that sink.

Latency: each frame knows the capture time of the newest audio that shaped it; the session
measures from there to the moment the frame is handed to the sinks.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from avatar_app.live.pacer import Pacer
from avatar_app.live.recorder import RecorderSink
from avatar_app.live.webcam_motion import WebcamMotion
from avatar_app.portrait_file import ready_portrait
from engines.controls import NEUTRAL, FaceControls
from engines.motion.mixer import FacePresence, mix
from engines.motion.talking import TalkingMotion
from engines.speech.features import RATE
from engines.speech.stream import DEFAULT_LOOKAHEAD, SpeechMotion

log = logging.getLogger(__name__)

SILENCE_AFTER = 0.15  # s without sound before silence is fed in its place
LATENCY_WINDOW = 3000  # frames kept for latency percentiles


class AudioSource(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def read(self, timeout: float) -> Any: ...  # an AudioChunk (samples, rate, pts_ns) or None


class FrameSink(Protocol):
    def submit(self, rgb: np.ndarray, pts_ns: int) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class LiveSettings:
    portrait: Path | None = None
    size: tuple[int, int] = (1280, 720)
    fit: Literal["fill", "fit"] = "fill"
    fps: int = 30
    engine: str = "auto"
    lookahead: float = DEFAULT_LOOKAHEAD
    vad_aggressiveness: int | None = 2
    seed: int = 0
    policy: Literal["audio", "webcam", "hybrid"] = "hybrid"  # used when there is a webcam


@dataclass
class LiveStats:
    """Counters since the session started; ``snapshot`` turns them into a report."""

    started: float = field(default_factory=time.monotonic)
    cpu_started: float = field(default_factory=time.process_time)
    frames: int = 0
    render_errors: int = 0
    source_errors: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    webcam_latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))


class LiveSession:
    """``start()``, then ``stop()``; ``set_push_to_talk`` and recording work while it runs."""

    def __init__(
        self,
        settings: LiveSettings,
        audio: AudioSource,
        sinks: list[FrameSink] | None = None,
        webcam: WebcamMotion | None = None,
    ) -> None:
        self.settings = settings
        self.audio = audio
        self.sinks = list(sinks or [])
        self.webcam = webcam
        self.presence = FacePresence()
        ready = ready_portrait(settings.portrait, settings.size, settings.fit, settings.engine)
        self.renderer, self.prepared, self.idle_frame = ready.renderer, ready.prepared, ready.frame
        self.speech = SpeechMotion(
            settings.fps,
            lookahead=settings.lookahead,
            vad_aggressiveness=settings.vad_aggressiveness,
        )
        self.motion = TalkingMotion(settings.fps, seed=settings.seed)
        self.pacer = Pacer(settings.fps)
        self.stats = LiveStats()
        self.recorder: RecorderSink | None = None
        self._latest: tuple[FaceControls, int | None] = (NEUTRAL, None)
        self.shown_controls = NEUTRAL  # what the newest frame shows
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._origin_ns: int | None = None
        self._fed = 0  # samples pushed into the speech core
        self.rss_start_mb = _rss_mb()

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        self.audio.start()
        if self.webcam is not None:
            self.webcam.start()
        for target, name in ((self._motion_loop, "motion"), (self._render_loop, "render")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop every thread, the source and the sinks; idempotent."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.audio.stop()
        if self.webcam is not None:
            self.webcam.stop()
        self.stop_recording()
        for sink in self.sinks:
            sink.stop()

    @property
    def latest_controls(self) -> FaceControls:
        """The controls the next frame will show."""
        return self._latest[0]

    def set_neutral(self) -> None:
        """The user's next webcam face is their resting face."""
        if self.webcam is not None:
            self.webcam.set_neutral()

    def set_push_to_talk(self, is_open: bool) -> None:
        self.speech.set_push_to_talk(is_open)

    def start_recording(self, path: Path) -> None:
        if self.recorder is not None:
            self.stop_recording()
        width, height = self.settings.size
        self.recorder = RecorderSink(
            path, width, height, self.settings.fps, time.monotonic_ns(), audio_rate=RATE
        )

    def stop_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.stop()

    # -- motion thread ---------------------------------------------------------------------

    def _motion_loop(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self.audio.read(timeout=0.05)
            except Exception:  # a broken source must not end the call: idle meanwhile
                self.stats.source_errors += 1
                if self.stats.source_errors <= 3:
                    log.exception("Reading the sound failed; the avatar idles meanwhile")
                self._stop.wait(0.05)
                chunk = None
            if chunk is None:
                self._fill_silence(time.monotonic_ns() - int(SILENCE_AFTER * 1e9))
                continue
            if self._origin_ns is None:
                self._origin_ns = chunk.pts_ns
            self._fill_silence(chunk.pts_ns)
            recorder = self.recorder
            if recorder is not None:
                recorder.submit_audio(chunk.samples, chunk.pts_ns)
            self._feed(np.asarray(chunk.samples, np.float32))

    def _fill_silence(self, until_ns: int) -> None:
        """Keep the sound timeline on the clock through gaps (a lost or stalled microphone)."""
        if self._origin_ns is None:
            self._origin_ns = until_ns
            return
        missing = (until_ns - self._origin_ns) * RATE // 1_000_000_000 - self._fed
        if missing > RATE // 50:
            self._feed(np.zeros(int(missing), np.float32))

    def _feed(self, samples: np.ndarray) -> None:
        self._fed += samples.size
        origin = self._origin_ns or 0
        for frame in self.speech.push(samples):
            self._latest = (self.motion.controls(frame), origin + int(frame.audio_until * 1e9))

    # -- render thread ---------------------------------------------------------------------

    def _render_loop(self) -> None:
        previous = self.idle_frame
        while (due := self.pacer.wait(self._stop)) is not None:
            controls, heard_ns = self._latest
            seen_ns = None
            if self.webcam is not None:
                controls, seen_ns = self._with_webcam(self.webcam, controls)
            self.shown_controls = controls
            try:
                rgb = self.renderer.render(self.prepared, controls)
            except Exception:  # one bad frame must not end a call
                self.stats.render_errors += 1
                if self.stats.render_errors <= 3:
                    log.exception("Rendering a frame failed; showing the previous one")
                rgb = previous
            previous = rgb
            for sink in self.sinks:
                sink.submit(rgb, heard_ns if heard_ns is not None else due)
            recorder = self.recorder
            if recorder is not None:
                recorder.submit(rgb, due)
            self.stats.frames += 1
            handed_ns = time.monotonic_ns()
            if heard_ns is not None:
                self.stats.latencies_ms.append((handed_ns - heard_ns) / 1e6)
            if seen_ns is not None:
                self.stats.webcam_latencies_ms.append((handed_ns - seen_ns) / 1e6)

    def _with_webcam(
        self, webcam: WebcamMotion, talking: FaceControls
    ) -> tuple[FaceControls, int | None]:
        """Mix the webcam's face in by the policy; eases to idle while the face is lost."""
        now_ns = time.monotonic_ns()
        face, seen_ns = webcam.latest(now_ns)
        weight = self.presence.update(now_ns / 1e9, face is not None)
        controls = mix(self.settings.policy, talking, talking, face, weight)
        return controls, seen_ns if face is not None else None

    # -- reporting -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Frames, rate, drops, latency percentiles, CPU and memory so far."""
        stats = self.stats
        elapsed = max(time.monotonic() - stats.started, 1e-9)
        latencies = np.array(stats.latencies_ms) if stats.latencies_ms else np.zeros(1)
        ticks = stats.frames + self.pacer.dropped
        return {
            "seconds": round(elapsed, 1),
            "frames": stats.frames,
            "fps": round(stats.frames / elapsed, 2),
            "dropped": self.pacer.dropped,
            "dropped_percent": round(100.0 * self.pacer.dropped / max(ticks, 1), 2),
            "render_errors": stats.render_errors,
            "source_errors": stats.source_errors,
            "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1),
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1),
            "latency_ms_max": round(float(latencies.max()), 1),
            **_webcam_latency(stats),
            "cpu_percent_of_all_cores": round(
                100.0 * (time.process_time() - stats.cpu_started) / elapsed / (os.cpu_count() or 1),
                1,
            ),
            "rss_mb": round(_rss_mb(), 1),
            "recording_error": self.recorder.error if self.recorder else None,
        }


def _webcam_latency(stats: LiveStats) -> dict[str, float]:
    """Webcam capture -> frame handed to the sinks, when there is a webcam."""
    if not stats.webcam_latencies_ms:
        return {}
    values = np.array(stats.webcam_latencies_ms)
    return {
        "webcam_latency_ms_p50": round(float(np.percentile(values, 50)), 1),
        "webcam_latency_ms_p95": round(float(np.percentile(values, 95)), 1),
    }


def _rss_mb() -> float:
    """Resident memory now (Linux), else the peak so far."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
