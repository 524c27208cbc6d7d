"""``avatar-app drive``: the portrait follows the face in a video (head, eyes, brows, mouth).

Each frame of the driving clip is tracked with mediapipe in video mode; the first frame with a
face is the neutral pose unless another is named. Where the face is lost the portrait eases
to idle life within 300 ms and back when it is found. The clip's sound, if any, is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np

from avatar_app.atomic_output import atomic_output
from avatar_app.audio_file import AudioFileError, load_audio, output_format, stream_audio
from avatar_app.local_file import check_video_file, ffmpeg_url
from avatar_app.pipeline import builder
from avatar_app.pipeline.settings import PipelineSettings
from avatar_app.video_writer import VideoWriter
from engines.controls import NEUTRAL
from engines.errors import DeviceError

log = logging.getLogger(__name__)


DEFAULTS = PipelineSettings(size=(512, 512), mode="webcam")


def _frames(path: Path) -> tuple[Iterator[np.ndarray], float, int]:
    """RGB frames of the clip, its frame rate and (an estimate of) its frame count."""
    check_video_file(path)
    try:
        container: Any = av.open(ffmpeg_url(path))
    except (OSError, av.FFmpegError) as exc:
        raise DeviceError(f"Cannot open the video {path} ({exc}). Check the path.") from exc
    if not container.streams.video:
        container.close()
        raise DeviceError(f"{path} has no video track. Pick a video of a face.")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 25)
    total = stream.frames or int(
        float(stream.duration * stream.time_base) * fps if stream.duration else 0
    )

    decoded = container.decode(stream)
    # Read the first frame now, so a broken file fails before any output is written.
    first = _next_frame(path, container, decoded)
    if first is None:
        raise DeviceError(f"{path} has no readable video frames. Pick a video of a face.")

    def frames() -> Iterator[np.ndarray]:
        with container:
            frame: np.ndarray | None = first
            while frame is not None:
                yield frame
                frame = _next_frame(path, container, decoded)

    return frames(), fps, total


def _next_frame(path: Path, container: Any, decoded: Iterator[Any]) -> np.ndarray | None:
    try:
        frame = next(decoded, None)
    except av.FFmpegError as exc:
        container.close()
        raise DeviceError(
            f"Cannot read the video {path} ({exc}): it is damaged or not a video. "
            "Pick another file, or convert it to MP4."
        ) from exc
    return None if frame is None else frame.to_ndarray(format="rgb24")


def render_driven(
    video: Path,
    output: Path,
    settings: PipelineSettings = DEFAULTS,
    neutral_frame: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render the portrait following ``video``'s face; returns the number of frames.

    ``neutral_frame``: the frame showing the resting face (None: the first with a face).
    """
    frames, fps, total = _frames(video)  # a bad clip fails before the slow work
    portrait = builder.ready_portrait(settings)
    rate = max(1, round(fps))
    sound = _sound_format(video)
    idle = builder.idle_life(settings)
    mixer = builder.mixer(replace(settings, mode="webcam"))
    first = neutral_frame or 0
    width, height = settings.size
    written = 0
    # A recorded clip is copied as it is seen, not mirrored like a selfie view.
    face_stage = builder.face_stage(mirror=False)
    try:
        with (
            atomic_output(output) as partial,
            VideoWriter(
                partial,
                width,
                height,
                rate,
                audio_rate=sound[0] if sound else None,
                audio_channels=sound[1] if sound else 1,
            ) as writer,
        ):
            chunks = stream_audio(video, *sound) if sound else iter(())
            for index, rgb in enumerate(frames):
                t = index / fps
                face = face_stage.track(rgb, t, may_calibrate=index >= first)
                controls = mixer.controls(t, idle.controls_at(t), NEUTRAL, face)
                writer.write(portrait.render(controls))
                written += 1
                # The sound goes in beside the frames it plays with, so the muxer buffers little.
                while sound and writer.audio_samples_written < written / fps * sound[0]:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    writer.write_audio(chunk)
                if progress:
                    progress(written, max(total, written))
            for chunk in chunks:
                writer.write_audio(chunk)
    finally:
        face_stage.close()
    if first >= written:
        log.warning(
            "The neutral frame %d is past the last frame of %s (%d); the portrait only idles. "
            "Pick a frame from 0 to %d.",
            first,
            video,
            written - 1,
            written - 1,
        )
    elif face_stage.follower.neutral is None:
        log.warning("No face was found in %s: the portrait only idles", video)
    return written


def _sound_format(video: Path) -> tuple[int, int] | None:
    """(rate, channels) of the clip's sound in the output, or None when it has none."""
    try:
        load_audio(video, rate=16000, channels=1)  # checks the sound, warns of damage
        return output_format(video)
    except AudioFileError:
        return None
