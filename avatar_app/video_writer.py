"""Writes RGB frames to an H.264 MP4 file (libx264 through PyAV, yuv420p).

The MP4 is fragmented (a fragment every two seconds), so a recording cut short by a crash or
a full disk still plays up to its last complete fragment.
"""

from __future__ import annotations

import errno
import logging
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from engines.errors import RecordingError

log = logging.getLogger(__name__)

CRF = 18
PRESET = "veryfast"
FRAGMENT_SECONDS = 2


class VideoWriter:
    """``with VideoWriter("out.mp4", 1280, 720, 25) as video: video.write(rgb)``.

    Frame ``i`` is shown at ``i / fps`` seconds. ``write`` takes HxWx3 uint8 RGB frames of the
    size given here. ``close`` is idempotent and also runs when the ``with`` block ends.
    """

    def __init__(self, path: str | os.PathLike[str], width: int, height: int, fps: int) -> None:
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_written = 0
        _check_format(width, height, fps)
        _check_destination(self.path)
        self._container: Any = None
        try:
            self._container = av.open(
                str(self.path),
                mode="w",
                format="mp4",
                options={
                    "movflags": "frag_keyframe+empty_moov+default_base_moof",
                    "flush_packets": "1",
                },
            )
            self._stream = self._container.add_stream(
                "libx264",
                rate=fps,
                options={
                    "crf": str(CRF),
                    "preset": PRESET,
                    "g": str(FRAGMENT_SECONDS * fps),
                    "bf": "0",  # no B-frames: frame i is shown at exactly i / fps from 0
                },
            )
            self._stream.width = width
            self._stream.height = height
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = Fraction(1, fps)
            self._container.start_encoding()
        except (OSError, av.FFmpegError) as exc:
            self._abandon()
            raise _recording_error(self.path, exc) from exc
        log.debug("Writing %dx%d at %d fps to %s", width, height, fps, self.path)

    def write(self, rgb: np.ndarray) -> None:
        """Append one HxWx3 uint8 RGB frame."""
        if self._container is None:
            raise RecordingError(f"The video {self.path} is already closed; open a new one.")
        expected = (self.height, self.width, 3)
        if not isinstance(rgb, np.ndarray) or rgb.shape != expected or rgb.dtype != np.uint8:
            got = (
                f"{'x'.join(map(str, rgb.shape))} {rgb.dtype}"
                if isinstance(rgb, np.ndarray)
                else type(rgb).__name__
            )
            raise ValueError(
                f"expected {self.height}x{self.width}x3 uint8 (height x width x RGB), got {got}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = Fraction(1, self.fps)
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            self._abandon()
            raise _recording_error(self.path, exc) from exc
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file; does nothing the second time."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except (OSError, av.FFmpegError) as exc:
            self._abandon()
            raise _recording_error(self.path, exc) from exc
        self._container = None
        log.debug("Wrote %d frames to %s", self.frames_written, self.path)

    def _abandon(self) -> None:
        """Release the container after a failure without raising again."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except (OSError, av.FFmpegError):
                log.debug("Ignoring a second error while closing %s", self.path, exc_info=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            # Keep what was written playable, but let the original error through.
            try:
                self.close()
            except RecordingError:
                log.debug("Could not finish %s after an error", self.path, exc_info=True)


def _check_format(width: int, height: int, fps: int) -> None:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise RecordingError(
            f"Cannot record {width}x{height}: H.264 needs a positive, even width and height."
        )
    if not isinstance(fps, int) or not 1 <= fps <= 240:
        raise RecordingError(f"Cannot record at {fps!r} fps: use a whole number from 1 to 240.")


def _check_destination(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise RecordingError(
            f"Cannot write the video to {path}: the folder {folder} does not exist. "
            "Create it first or choose another output path."
        )
    if path.is_dir():
        raise RecordingError(f"Cannot write the video to {path}: it is a folder. Add a file name.")


def _recording_error(path: Path, exc: BaseException) -> RecordingError:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return RecordingError(
            f"The disk is full while writing {path}. Free some space or record somewhere else."
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RecordingError(
            f"No permission to write {path}. Choose a folder you can write to, "
            "e.g. your home folder."
        )
    return RecordingError(
        f"Cannot write the video to {path} ({exc}). Check the path, or choose another folder."
    )
