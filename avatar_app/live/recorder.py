"""Records exactly what the camera shows plus the microphone, aligned by capture time.

Runs on its own thread behind a bounded queue, so a slow disk never stalls the session. Video
frame ``i`` is the one due at ``start + i / fps`` (a skipped tick repeats the frame before);
sound sample ``k`` is the one captured at ``start + k / rate`` (gaps become silence, overlaps
are trimmed). The MP4 is fragmented, so a crash or ``kill -9`` leaves a playable file. A full
disk or any other write error ends the recording with ``error`` set; the session goes on.
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
        self._queue: queue.Queue[tuple[str, np.ndarray, int] | None] = queue.Queue(QUEUE_ITEMS)
        self._last_frame: np.ndarray | None = None
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        log.info("Recording to %s", path)

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written

    def submit(self, frame: RenderedFrame) -> None:
        """The frame the camera shows for the tick it was due at."""
        self._put(("video", frame.rgb, frame.due_ns))

    def submit_audio(self, chunk: AudioChunk) -> None:
        """Sound, placed by its capture time."""
        self._put(("audio", chunk.samples, chunk.pts_ns))

    def _put(self, item: tuple[str, np.ndarray, int]) -> None:
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
                kind, data, pts_ns = item
                if kind == "video":
                    self._write_video(data, pts_ns)
                else:
                    self._write_audio(data, pts_ns)
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

    def _write_video(self, rgb: np.ndarray, due_ns: int) -> None:
        index = round((due_ns - self.start_ns) / self._period_ns)
        if index < self._writer.frames_written:
            return  # before the recording started, or a tick already written
        while self._last_frame is not None and self._writer.frames_written < index:
            self._writer.write(self._last_frame)  # ticks the session skipped
        self._writer.write(rgb)
        self._last_frame = rgb

    def _write_audio(self, samples: np.ndarray, pts_ns: int) -> None:
        offset = round((pts_ns - self.start_ns) * self.audio_rate / 1e9)
        written = self._writer.audio_samples_written
        if offset > written:
            self._writer.write_audio(np.zeros(offset - written, np.float32))
        elif offset < written:
            samples = samples[written - offset :]
        if samples.size:
            self._writer.write_audio(samples.astype(np.float32, copy=False))
