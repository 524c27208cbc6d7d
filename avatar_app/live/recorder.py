"""Records exactly what the camera shows plus the microphone, sound in step with the mouth.

Runs on its own thread behind a bounded queue, so a slow disk never stalls the session. Video
frame ``i`` is the one due at ``start + i / fps`` (a skipped tick repeats the frame before).
The mouth in the frame due at ``due_ns`` shows the sound captured at its ``shows_ns``, a
lookahead plus processing earlier; placed by capture time, the sound would lead the mouth by
that much (110-125 ms was measured). So sound captured at ``c`` is placed at ``c + D``, with
``D`` the median of ``due_ns - shows_ns`` over the first ``SYNC_FRAMES`` frames, fixed for the
whole recording (a moving ``D`` would stretch or cut the sound); gaps become silence, overlaps
are trimmed, and sound is written only up to the end of the video, so both end together.
The MP4 is fragmented, so a crash or ``kill -9`` leaves a playable file. A full disk or any
other write error ends the recording with ``error`` set; the session goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np

from avatar_app.pipeline.frames import AudioChunk, RenderedFrame
from avatar_app.video_writer import VideoWriter
from engines.errors import RecordingError

log = logging.getLogger(__name__)

QUEUE_ITEMS = 120  # about 4 s of frames at 30 fps
SYNC_FRAMES = 10  # frames whose picture delay fixes where the sound goes

_Item = tuple[str, np.ndarray, int, int | None]


class RecorderSink:
    def __init__(
        self, path: Path, width: int, height: int, fps: int, start_ns: int, audio_rate: int = 16_000
    ) -> None:
        self.path = path
        self.fps = fps
        self.start_ns = start_ns
        self.audio_rate = audio_rate
        self.error: str | None = None
        self.dropped = 0
        self._period_ns = 1e9 / fps
        self._writer = VideoWriter(
            path, width, height, fps, audio_rate=audio_rate, audio_channels=1
        )
        self._queue: queue.Queue[_Item | None] = queue.Queue(QUEUE_ITEMS)
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
        """Sound, placed by its capture time plus the picture delay."""
        self._put(("audio", chunk.samples, chunk.pts_ns, None))

    def _put(self, item: _Item) -> None:
        if self.error is not None:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def stop(self) -> None:
        """Finish the file; idempotent."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                kind, data, pts_ns, delay_ns = item
                if kind == "video":
                    self._write_video(data, pts_ns, delay_ns)
                else:
                    self._place_audio(data, pts_ns)
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
        """Empty the queue after a failure so ``stop`` and producers never block."""
        while self._queue.get() is not None:
            pass

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
        self._pending.append((round(at_ns * self.audio_rate / 1e9), samples))

    def _flush_audio(self, pad: bool = False) -> None:
        """Write the placed sound up to the end of the video written so far."""
        limit = self._writer.frames_written * self.audio_rate // self.fps
        while self._pending:
            offset, samples = self._pending[0]
            written = self._writer.audio_samples_written
            end = offset + samples.size
            if end <= written:  # already covered: an overlap
                self._pending.pop(0)
                continue
            if offset >= limit:
                break
            if offset > written:
                self._writer.write_audio(np.zeros(offset - written, np.float32))
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
            self._writer.write_audio(np.zeros(limit - written, np.float32))
