"""Writes RGB frames to an H.264 MP4 file (libx264 through PyAV, yuv420p), with optional AAC sound.

The MP4 is fragmented (a fragment every half second at most; a keyframe every two seconds),
so a recording cut short by a crash or a full disk still plays up to its last complete fragment,
from its first second on. ``low_delay`` (live recordings) also stops the encoder holding frames
back (x264's ``zerolatency``), so what reaches the disk trails what was written by under ~0.5 s.
Video frame ``i`` and sound sample ``k`` play at ``i / fps`` and ``k / audio_rate`` seconds;
the AAC encoder's priming (1024 samples) is cut by the file's edit list, which the muxer can
write because the initial moov is delayed to the first fragment.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
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
KEYFRAME_SECONDS = 2
FRAGMENT_SECONDS = 0.5
AAC_BIT_RATE = 128_000
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
_LAYOUTS = {1: "mono", 2: "stereo"}


class VideoWriter:
    """``with VideoWriter("out.mp4", 1280, 720, 25) as video: video.write(rgb)``.

    Frame ``i`` is shown at ``i / fps`` seconds. ``write`` takes HxWx3 uint8 RGB frames of the
    size given here. With ``audio_rate`` the file gets an AAC sound track too, fed by
    ``write_audio`` in any interleaving with ``write``; sample ``k`` plays at
    ``k / audio_rate`` seconds. ``close`` is idempotent and also runs when the ``with`` block
    ends.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: int,
        audio_rate: int | None = None,
        audio_channels: int = 1,
        low_delay: bool = False,
    ) -> None:
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.audio_rate = audio_rate
        self.audio_channels = audio_channels
        self.frames_written = 0
        self.audio_samples_written = 0
        _check_format(width, height, fps)
        _check_audio_format(audio_rate, audio_channels)
        _check_destination(self.path)
        self._container: Any = None
        self._audio_stream: Any = None
        self._audio_pts = 0  # samples handed to the encoder
        self._audio_pending = np.zeros((audio_channels, 0), np.float32)  # planar, < frame size
        self._audio_frame_size = 0
        try:
            self._container = av.open(
                str(self.path),
                mode="w",
                format="mp4",
                options={
                    # delay_moov: the moov goes out with the first fragment, once the muxer
                    # knows the AAC priming it has to cut with an edit list.
                    "movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof",
                    "frag_duration": str(round(FRAGMENT_SECONDS * 1_000_000)),  # microseconds
                    "flush_packets": "1",
                },
            )
            self._stream = self._container.add_stream(
                "libx264",
                rate=fps,
                options={
                    "crf": str(CRF),
                    "preset": PRESET,
                    "g": str(KEYFRAME_SECONDS * fps),
                    "bf": "0",  # no B-frames: frame i is shown at exactly i / fps from 0
                    **({"tune": "zerolatency"} if low_delay else {}),
                },
            )
            self._stream.width = width
            self._stream.height = height
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = Fraction(1, fps)
            if audio_rate is not None:
                self._audio_stream = self._container.add_stream(
                    "aac", rate=audio_rate, layout=_LAYOUTS[audio_channels]
                )
                self._audio_stream.bit_rate = AAC_BIT_RATE
                self._audio_stream.codec_context.time_base = Fraction(1, audio_rate)
            self._container.start_encoding()
            if self._audio_stream is not None:
                self._audio_frame_size = self._audio_stream.codec_context.frame_size or 1024
        except (OSError, av.FFmpegError) as exc:
            self._abandon()
            raise _recording_error(self.path, exc) from exc
        log.debug(
            "Writing %dx%d at %d fps%s to %s",
            width,
            height,
            fps,
            f" with {audio_channels}-channel sound at {audio_rate} Hz" if audio_rate else "",
            self.path,
        )

    def write(self, rgb: np.ndarray) -> None:
        """Append one HxWx3 uint8 RGB frame."""
        self._check_open()
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
        self._encode(self._stream, frame)
        self.frames_written += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Append float32 sound samples, shaped [n, channels] ([n] also for mono).

        Values beyond -1..1 are clipped. Samples are buffered into whole AAC frames; the rest
        is encoded on ``close``.
        """
        self._check_open()
        if self._audio_stream is None:
            raise RecordingError(
                f"The video {self.path} was opened without sound; pass audio_rate to "
                "VideoWriter to record sound."
            )
        channels = self.audio_channels
        shaped = isinstance(samples, np.ndarray) and (
            (samples.ndim == 2 and samples.shape[1] == channels)
            or (samples.ndim == 1 and channels == 1)
        )
        if not shaped or samples.dtype != np.float32:
            got = (
                f"{'x'.join(map(str, samples.shape))} {samples.dtype}"
                if isinstance(samples, np.ndarray)
                else type(samples).__name__
            )
            mono = " (or n for mono)" if channels == 1 else ""
            raise ValueError(f"expected float32 sound of n x {channels} samples{mono}, got {got}")
        planar = samples.reshape(len(samples), channels).T
        planar = np.clip(np.nan_to_num(planar), -1.0, 1.0)
        pending = np.concatenate([self._audio_pending, planar], axis=1)
        size = self._audio_frame_size
        whole = pending.shape[1] - pending.shape[1] % size
        for start in range(0, whole, size):
            self._encode_audio(pending[:, start : start + size])
        self._audio_pending = pending[:, whole:].copy()
        self.audio_samples_written += len(samples)

    def close(self) -> None:
        """Flush the encoders and finish the file; does nothing the second time."""
        if self._container is None:
            return
        if self._audio_stream is not None:
            if self._audio_pending.shape[1]:
                # AAC takes a short last frame and pads it with silence itself; the packet
                # keeps the true duration, so the sound track ends with the last sample.
                self._encode_audio(self._audio_pending)
                self._audio_pending = self._audio_pending[:, :0]
            self._encode(self._audio_stream, None)
        self._encode(self._stream, None)
        try:
            self._container.close()
        except (OSError, av.FFmpegError) as exc:
            self._abandon()
            raise _recording_error(self.path, exc) from exc
        self._container = None
        log.debug(
            "Wrote %d frames and %d sound samples to %s",
            self.frames_written,
            self.audio_samples_written,
            self.path,
        )

    def _check_open(self) -> None:
        if self._container is None:
            raise RecordingError(f"The video {self.path} is already closed; open a new one.")

    def _encode_audio(self, planar: np.ndarray) -> None:
        """Encode one AAC frame of float32 [channels, n] samples, n <= frame size."""
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planar, np.float32),
            format="fltp",
            layout=_LAYOUTS[self.audio_channels],
        )
        frame.sample_rate = self._audio_stream.codec_context.sample_rate
        frame.pts = self._audio_pts
        frame.time_base = Fraction(1, frame.sample_rate)
        self._encode(self._audio_stream, frame)
        self._audio_pts += planar.shape[1]

    def _encode(self, stream: Any, frame: av.VideoFrame | av.AudioFrame | None) -> None:
        """Encode ``frame`` (None flushes) and mux the packets, interleaved by time."""
        try:
            for packet in stream.encode(frame):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            self._abandon()
            raise _recording_error(self.path, exc) from exc

    def _abandon(self) -> None:
        """Release the container after a failure without raising again, and cut the file back
        to its last whole fragment (a write cut off inside a fragment's header makes players
        refuse the whole file)."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except (OSError, av.FFmpegError):
                log.debug("Ignoring a second error while closing %s", self.path, exc_info=True)
            _trim_to_whole_boxes(self.path)

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


def _check_audio_format(rate: int | None, channels: int) -> None:
    if rate is not None and (not isinstance(rate, int) or rate not in AAC_RATES):
        rates = ", ".join(map(str, AAC_RATES))
        raise RecordingError(f"Cannot record sound at {rate!r} Hz: AAC takes one of {rates}.")
    if channels not in _LAYOUTS:
        raise RecordingError(
            f"Cannot record {channels!r} sound channels: use 1 (mono) or 2 (stereo)."
        )


def _check_destination(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise RecordingError(
            f"Cannot write the video to {path}: the folder {folder} does not exist. "
            "Create it first or choose another output path."
        )
    if path.is_dir():
        raise RecordingError(f"Cannot write the video to {path}: it is a folder. Add a file name.")


def _trim_to_whole_boxes(path: Path) -> None:
    """Truncate an MP4 after its last complete top-level box that is not a lone ``moof``."""
    try:
        with open(path, "r+b") as file:
            size = os.fstat(file.fileno()).st_size
            keep = position = 0
            kind = b""
            while position + 8 <= size:
                file.seek(position)
                length, kind = struct.unpack(">I4s", file.read(8))
                if length < 8 or position + length > size:
                    break
                position += length
                if kind != b"moof":
                    keep = position
            if keep < size:
                file.truncate(keep)
                log.debug("Cut %s back to %d bytes of whole fragments", path, keep)
    except OSError:
        log.debug("Could not tidy the end of %s", path, exc_info=True)


def _recording_error(path: Path, exc: BaseException) -> RecordingError:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return RecordingError(
            f"The disk is full while writing {path}. Free some space or record somewhere else."
        )
    if code == errno.EFBIG:
        return RecordingError(
            f"{path} reached the largest file size allowed here (a `ulimit -f` limit or the "
            "file system's). Record somewhere else or lift the limit."
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RecordingError(
            f"No permission to write {path}. Choose a folder you can write to, "
            "e.g. your home folder."
        )
    return RecordingError(
        f"Cannot write the video to {path} ({exc}). Check the path, or choose another folder."
    )
