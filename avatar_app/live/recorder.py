"""Records exactly what the camera shows plus the microphone, sound in step with the mouth.

Runs on its own thread behind a bounded queue, so a slow disk never stalls the session. Video
frame ``i`` is the one due at ``start + i / fps`` (a skipped tick repeats the frame before).
The mouth in the frame due at ``due_ns`` shows the sound captured at its ``shows_ns``, a
lookahead plus processing earlier; placed by capture time, the sound would lead the mouth by
that much (110-125 ms was measured). So sound captured at ``c`` is placed at ``c + D``, with
``D`` the median of ``due_ns - shows_ns`` over the first ``SYNC_FRAMES`` frames, fixed for the
whole recording (a moving ``D`` would stretch or cut the sound); gaps become silence, overlaps
are trimmed, and sound is written only up to the end of the video, so both end together.
The sound is recorded as the source captured it (``audio_rate``, ``audio_channels``: a
microphone's own 48 kHz, say), not at the lip-sync model's 16 kHz mono; sound of another rate or
channel count (a device reopened differently) is converted block by block.
The MP4 is fragmented into half-second pieces, so a crash or ``kill -9`` leaves a file that
plays up to about half a second before it. A full disk or any other write error ends the
recording with ``error`` set; the session goes on. Frames and sound wait in bounded queues.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from avatar_app.pipeline.frames import AudioChunk, RenderedFrame
from avatar_app.video_writer import VideoWriter
from engines.errors import RecordingError

log = logging.getLogger(__name__)

QUEUE_FRAMES = 120  # about 4 s of frames at 30 fps
QUEUE_SOUND_BLOCKS = 1000  # a few seconds of capture blocks (10-50 ms each)
SYNC_FRAMES = 10  # frames whose picture delay fixes where the sound goes
PENDING_SECONDS = 5.0  # sound kept waiting for its video at most (the rest becomes silence)

_Item = tuple[str, np.ndarray, int, int | None]


class RecorderSink:
    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: int,
        start_ns: int,
        audio_rate: int = 16_000,
        audio_channels: int = 1,
    ) -> None:
        self.path = path
        self.fps = fps
        self.start_ns = start_ns
        self.audio_rate = audio_rate
        self.audio_channels = audio_channels
        self.error: str | None = None
        self.dropped = 0
        self._period_ns = 1e9 / fps
        self._writer = VideoWriter(
            path,
            width,
            height,
            fps,
            audio_rate=audio_rate,
            audio_channels=audio_channels,
            low_delay=True,
        )
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._room = {
            "video": threading.BoundedSemaphore(QUEUE_FRAMES),
            "audio": threading.BoundedSemaphore(QUEUE_SOUND_BLOCKS),
        }
        self._last_frame: np.ndarray | None = None
        self.sound_delay_ns: int | None = None  # D (module docstring), once known
        self._delays: list[int] = []
        self._early: list[tuple[np.ndarray, int]] = []  # sound before D is known
        self._pending: list[tuple[int, np.ndarray]] = []  # (sample offset, sound) to write
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        log.info("Recording to %s", path)

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written

    def submit(self, frame: RenderedFrame) -> None:
        """The frame the camera shows for the tick it was due at."""
        shows = frame.shows_ns
        self._put(
            ("video", frame.rgb, frame.due_ns, None if shows is None else frame.due_ns - shows)
        )

    def submit_audio(self, chunk: AudioChunk) -> None:
        """Sound ([n] mono or [n, channels], any rate), placed by its capture time plus the
        picture delay; called on the capture thread, never blocks."""
        self._put(("audio", chunk.samples, chunk.pts_ns, chunk.rate))

    def _put(self, item: _Item) -> None:
        if self.error is not None:
            return
        if not self._room[item[0]].acquire(blocking=False):
            self.dropped += 1
            return
        self._queue.put(item)

    def stop(self) -> None:
        """Finish the file; idempotent."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                kind, data, pts_ns, extra = item
                self._room[kind].release()
                if kind == "video":
                    self._write_video(data, pts_ns, extra)
                else:
                    self._place_audio(self._conformed(data, extra), pts_ns)
            self._decide_delay(force=True)
            self._flush_audio(pad=True)
            self._writer.close()
            log.info("Recorded %d frames to %s", self._writer.frames_written, self.path)
        except RecordingError as exc:
            self.error = str(exc)
            log.error("Recording stopped: %s", exc)
            # The writer has already released the file; whatever it wrote still plays.
            self._drain()

    def _drain(self) -> None:
        """Empty the queue after a failure so ``stop`` never blocks."""
        while (item := self._queue.get()) is not None:
            self._room[item[0]].release()

    def _conformed(self, samples: np.ndarray, rate: int | None) -> np.ndarray:
        """``samples`` as float32 [n, audio_channels] at ``audio_rate``."""
        block = samples.reshape(len(samples), -1).astype(np.float32, copy=False)
        if block.shape[1] != self.audio_channels:
            mono = block.mean(axis=1, keepdims=True)
            block = np.repeat(mono, self.audio_channels, axis=1)
        if rate is not None and rate != self.audio_rate:
            common = math.gcd(rate, self.audio_rate)
            block = resample_poly(block, self.audio_rate // common, rate // common, axis=0)
            block = block.astype(np.float32)
        return block

    def _write_video(self, rgb: np.ndarray, due_ns: int, delay_ns: int | None) -> None:
        if delay_ns is not None and self.sound_delay_ns is None:
            self._delays.append(delay_ns)
            self._decide_delay()
        index = round((due_ns - self.start_ns) / self._period_ns)
        if index < self._writer.frames_written:
            return  # before the recording started, or a tick already written
        while self._last_frame is not None and self._writer.frames_written < index:
            self._writer.write(self._last_frame)  # ticks the session skipped
        self._writer.write(rgb)
        self._last_frame = rgb
        if self.sound_delay_ns is None and self._writer.frames_written >= 3 * SYNC_FRAMES:
            self._decide_delay(force=True)  # frames without speech timing: capture time
        self._flush_audio()

    def _decide_delay(self, force: bool = False) -> None:
        if self.sound_delay_ns is not None or (len(self._delays) < SYNC_FRAMES and not force):
            return
        self.sound_delay_ns = int(np.median(self._delays)) if self._delays else 0
        log.debug("Recording the sound %.1f ms after its capture", self.sound_delay_ns / 1e6)
        early, self._early = self._early, []
        for samples, pts_ns in early:
            self._place_audio(samples, pts_ns)

    def _place_audio(self, samples: np.ndarray, pts_ns: int) -> None:
        if self.sound_delay_ns is None:
            self._early.append((samples, pts_ns))
            return
        at_ns = pts_ns + self.sound_delay_ns - self.start_ns
        offset = round(at_ns * self.audio_rate / 1e9)
        self._pending.append((offset, samples))
        while offset - self._pending[0][0] > PENDING_SECONDS * self.audio_rate:
            self._pending.pop(0)  # the video stalled: memory stays bounded
            self.dropped += 1

    def _flush_audio(self, pad: bool = False) -> None:
        """Write the placed sound up to the end of the video written so far."""
        limit = self._writer.frames_written * self.audio_rate // self.fps
        while self._pending:
            offset, samples = self._pending[0]
            written = self._writer.audio_samples_written
            end = offset + len(samples)
            if end <= written:  # already covered: an overlap
                self._pending.pop(0)
                continue
            if offset >= limit:
                break
            if offset > written:
                self._writer.write_audio(self._silence(offset - written))
                written = offset
            stop = min(end, limit)
            self._writer.write_audio(
                samples[written - offset : stop - offset].astype(np.float32, copy=False)
            )
            if stop < end:
                break
            self._pending.pop(0)
        written = self._writer.audio_samples_written
        if pad and written < limit:
            self._writer.write_audio(self._silence(limit - written))

    def _silence(self, count: int) -> np.ndarray:
        return np.zeros((count, self.audio_channels), np.float32)
