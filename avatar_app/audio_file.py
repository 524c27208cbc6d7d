"""Read the sound of an audio file (WAV, MP3, FLAC, OGG, M4A/AAC ...) or of a video, with PyAV.

The file is decoded packet by packet at its own sample rate into float32 samples in -1..1.
Damaged parts are skipped with a warning; every way a file can be unusable ends in an
AudioFileError that names the file and says what to do.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from avatar_app.local_file import ffmpeg_url, is_folder, is_regular, looks_like_url, stat_or_none
from avatar_app.video_writer import AAC_RATES
from engines.errors import AvatarError

log = logging.getLogger(__name__)

MIN_SECONDS = 0.1
"""Shortest sound accepted."""
CLIP_LEVEL = 0.999
"""Samples at least this loud count as full scale."""
CLIPPED_SHARE = 0.01
"""A warning says the sound is clipped when more than this share of samples is at full scale."""
PADDING_SECONDS = 0.1
"""Up to this much sound beyond the end of the last packet is encoder padding."""
INITIAL_SECONDS = 600.0
"""Room for this much sound at most is reserved before decoding; the buffer grows as needed."""
LOST_SECONDS = 0.1
"""Up to this much (or 2 %) less sound than a file declares goes without a warning."""

_HALF = math.sqrt(0.5)  # -3 dB
_STEREO_DOWNMIX: dict[str, tuple[float, float]] = {
    # ffmpeg channel name: (share in left, share in right), after ITU-R BS.775
    "FL": (1.0, 0.0),
    "FR": (0.0, 1.0),
    "FC": (_HALF, _HALF),
    "LFE": (0.0, 0.0),
    "LFE2": (0.0, 0.0),
    "FLC": (1.0, 0.0),
    "FRC": (0.0, 1.0),
    "BL": (_HALF, 0.0),
    "BR": (0.0, _HALF),
    "SL": (_HALF, 0.0),
    "SR": (0.0, _HALF),
    "BC": (0.5, 0.5),
}
_SOUND_FILES = "a WAV, MP3, FLAC, OGG or M4A file, or a video with sound"


class AudioFileError(AvatarError):
    """A sound file cannot be used (missing, not audio, no sound track, damaged, too short)."""


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded sound: ``samples`` is float32 [n, channels] in -1..1 at ``rate`` samples/s.

    ``channel_names`` are ffmpeg's names for the channels ("FL", "FR", "FC", "LFE" ...), or
    empty when unknown. The array is not copied; treat it as read-only.
    """

    samples: np.ndarray
    rate: int
    channel_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.dtype != np.float32:
            raise ValueError(
                f"samples must be float32 [n, channels], got {self.samples.ndim}-D "
                f"{self.samples.dtype}"
            )
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples.shape[0] / self.rate

    def mono(self, rate: int = 16000) -> np.ndarray:
        """One float32 channel at ``rate`` (polyphase resampling, deterministic)."""
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        single = self._with_channels(1).samples[:, 0]
        return np.clip(_resampled(single, self.rate, rate), -1.0, 1.0)

    def for_output(self, max_channels: int = 2) -> Audio:
        """Ready to record: at most ``max_channels`` channels at a sample rate AAC takes.

        5.1 and such become stereo (ITU shares), stereo becomes mono if asked, mono stays mono.
        A rate AAC does not take (e.g. 192 kHz, 37.8 kHz) is resampled to the next one up, or
        to 48 kHz from above 96 kHz. ``self`` comes back when nothing needs changing.
        """
        if max_channels < 1:
            raise ValueError(f"max_channels must be at least 1, got {max_channels}")
        audio = self._with_channels(max_channels)
        rate = _output_rate(audio.rate)
        if rate == audio.rate:
            return audio
        samples = _resampled(audio.samples, audio.rate, rate)
        return Audio(np.clip(samples, -1.0, 1.0), rate, audio.channel_names)

    def _with_channels(self, max_channels: int) -> Audio:
        if self.channels <= max_channels:
            return self
        if self.channels > 2:
            mixed = _downmix_to_stereo(self.samples, self.channel_names)
            return Audio(mixed, self.rate, ("FL", "FR"))._with_channels(max_channels)
        return Audio(self.samples.mean(axis=1, keepdims=True, dtype=np.float32), self.rate, ("FC",))


def load_audio(
    path: str | os.PathLike[str], rate: int | None = None, channels: int | None = None
) -> Audio:
    """The sound in ``path`` (an audio file, or a video's sound track).

    At its own sample rate and channels by default. With ``rate`` and ``channels`` (1 or 2)
    every decoded frame is converted as it arrives, so memory holds only the converted sound:
    16 kHz mono of a 2-hour 48 kHz stereo file is 460 MB instead of 2.8 GB plus copies.
    """
    path = Path(path)
    _check_is_readable_file(path)
    container = _open(path)
    with container:
        stream = container.streams.best("audio")
        if stream is None:
            raise _no_sound_track(path, container)
        declared = _declared_seconds(path, container, stream)
        converter = None if rate is None else _Converter(rate, channels or 1)
        decoded = _Decoded(path, declared, converter)
        decoded.read(container, stream)
    if decoded.length == 0:
        raise _nothing_decoded(path, damaged=bool(decoded.damaged or declared))
    audio = decoded.audio()
    if audio.seconds < MIN_SECONDS:
        raise AudioFileError(
            f"The sound in {path} lasts only {audio.seconds * 1000:.0f} ms; at least "
            f"{MIN_SECONDS:g} s is needed. Pick a longer recording."
        )
    _report_clipping(path, audio.samples)
    log.debug(
        "Read %.2f s of %d-channel sound at %d Hz from %s",
        audio.seconds,
        audio.channels,
        audio.rate,
        path,
    )
    return audio


def check_sound_file(path: str | os.PathLike[str]) -> None:
    """Fail fast, before any slow work, unless ``path`` is a readable file with sound in it."""
    path = Path(path)
    _check_is_readable_file(path)
    with _open(path) as container:
        if container.streams.best("audio") is None:
            raise _no_sound_track(path, container)


def output_format(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(rate, channels) the sound of ``path`` is recorded at: an AAC rate, at most stereo."""
    with _open(Path(path)) as container:
        stream = container.streams.best("audio")
        if stream is None:
            raise _no_sound_track(Path(path), container)
        rate = stream.codec_context.sample_rate or 48000
        return _output_rate(rate), min(max(stream.codec_context.channels, 1), 2)


def stream_audio(path: str | os.PathLike[str], rate: int, channels: int) -> Iterator[np.ndarray]:
    """The sound of an already checked file as float32 [n, channels] chunks at ``rate``.

    Decoded and converted frame by frame, for recording the sound of a long file beside its
    video without holding it; damaged packets are skipped (``load_audio`` warned of them).
    """
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.best("audio")
        if stream is None:
            return
        converter = _Converter(rate, channels)
        for frame in _Decoded(path, None, converter).frames(container, stream):
            chunk = converter.mixed(frame)[0]
            if chunk.shape[1] < channels:  # mono midway through a stereo file
                chunk = np.repeat(chunk, channels, axis=1)
            yield np.clip(chunk, -1.0, 1.0)


class _Converter:
    """Decoded frames to float32 at one rate (libswresample, continuously), then mixed down to
    at most ``channels`` as ``Audio.mono`` and ``Audio.for_output`` would.

    A file whose format changes midway gets a new resampler from that frame on.
    """

    def __init__(self, rate: int, channels: int) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        self.rate = rate
        self.channels = channels
        self._resampler: Any = None
        self._source: tuple[str, str, int] | None = None

    def convert(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        """``frame`` converted (None: what the resampler still holds at the end)."""
        if frame is None:
            return [] if self._resampler is None else list(self._resampler.resample(None))
        source = (frame.format.name, frame.layout.name, frame.sample_rate)
        converted: list[av.AudioFrame] = []
        if source != self._source:
            if self._resampler is not None:
                converted += self._resampler.resample(None)
            self._resampler = av.AudioResampler(format="fltp", rate=self.rate)
            self._source = source
        frame.pts = None  # damaged files jump in time; the sound is taken as it comes
        converted += self._resampler.resample(frame)
        return converted

    def mixed(self, frame: av.AudioFrame) -> tuple[np.ndarray, tuple[str, ...]]:
        """A converted frame's samples mixed down, and the names of their channels."""
        names = tuple(channel.name for channel in frame.layout.channels)
        audio = Audio(_frame_samples(frame), frame.sample_rate, names)._with_channels(self.channels)
        return audio.samples, audio.channel_names


class _Decoded:
    """Decoded frames gathered into one growing float32 [n, channels] array, and the damage."""

    def __init__(
        self, path: Path, declared_seconds: float | None, converter: _Converter | None = None
    ) -> None:
        self.path = path
        self.declared_seconds = declared_seconds
        self.converter = converter
        self.rate = 0
        self.channel_names: tuple[str, ...] = ()
        self.length = 0
        self.damaged = 0  # packets that failed to decode, plus 1 if reading stopped early
        self.packets_end: float | None = None  # where the last packet ends, in seconds
        self._samples = np.zeros((0, 1), np.float32)  # the first `length` rows are sound
        self._mismatch_reported = False

    def read(self, container: Any, stream: Any) -> None:
        """Decode ``stream`` packet by packet, skipping packets that fail."""
        for frame in self.frames(container, stream):
            self._add(frame)

    def frames(self, container: Any, stream: Any) -> Iterator[av.AudioFrame]:
        """Decoded (and converted) frames of ``stream``; counts the packets that fail."""
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:
                log.debug("Reading %s stopped early", self.path, exc_info=True)
                self.damaged += 1
                break
            if packet.pts is not None and packet.duration and packet.time_base is not None:
                end = float((packet.pts + packet.duration) * packet.time_base)
                self.packets_end = max(self.packets_end or end, end)
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                self.damaged += 1
                continue
            for frame in decoded:
                yield from self._converted(frame)
        yield from self._converted(None)

    def _converted(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        if self.converter is not None:
            return self.converter.convert(frame)
        return [] if frame is None else [frame]

    def audio(self) -> Audio:
        """All the sound read, without the encoder's padding at its end; warns about losses."""
        length = self.length
        if self.packets_end is not None:
            # Decoders return whole codec frames (1024 samples for AAC); the last packet's
            # duration says how much of the last one is sound.
            end = round(self.packets_end * self.rate)
            if end < length <= end + PADDING_SECONDS * self.rate:
                length = end
        declared = self.declared_seconds
        if declared is not None and declared - length / self.rate > max(
            LOST_SECONDS, 0.02 * declared
        ):
            log.warning(
                "Only %.2f s of the %.2f s of sound in %s could be read; the file looks "
                "damaged or cut short. Going on with what was read.",
                length / self.rate,
                declared,
                self.path,
            )
        if self.damaged:
            log.warning(
                "%s has damaged parts (unreadable packets: %d); they are left out.",
                self.path,
                self.damaged,
            )
        samples, self._samples = self._samples, np.zeros((0, 1), np.float32)
        samples.resize((length, samples.shape[1]), refcheck=False)  # in place, no copy
        np.clip(samples, -1.0, 1.0, out=samples)
        return Audio(samples, self.rate, self.channel_names)

    def _add(self, frame: av.AudioFrame) -> None:
        if self.converter is None:
            chunk = _frame_samples(frame)
            names = tuple(channel.name for channel in frame.layout.channels)
        else:
            chunk, names = self.converter.mixed(frame)
        if not self.rate:
            self.rate = frame.sample_rate
            self.channel_names = names
            expected = min(self.declared_seconds or 0.0, INITIAL_SECONDS) + 1.0
            self._samples = np.empty((round(expected * self.rate), chunk.shape[1]), np.float32)
        elif frame.sample_rate != self.rate or chunk.shape[1] != len(self.channel_names):
            chunk = self._conform(chunk, frame.sample_rate)
        end = self.length + len(chunk)
        if end > len(self._samples):
            # realloc: large arrays grow in place (mremap) instead of being copied
            capacity = max(end, len(self._samples) * 3 // 2)
            self._samples.resize((capacity, self._samples.shape[1]), refcheck=False)
        self._samples[self.length : end] = chunk
        self.length = end

    def _conform(self, chunk: np.ndarray, rate: int) -> np.ndarray:
        """A chunk whose rate or channel count changed mid-file, made like the first one."""
        if not self._mismatch_reported:
            log.warning(
                "The sound format changes inside %s; converting it to %d Hz, %d channels.",
                self.path,
                self.rate,
                len(self.channel_names),
            )
            self._mismatch_reported = True
        channels = len(self.channel_names)
        if chunk.shape[1] != channels:
            chunk = np.repeat(chunk.mean(axis=1, keepdims=True), channels, axis=1)
        return _resampled(chunk, rate, self.rate)


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 [n, channels], whatever its sample format."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    data = data.T if frame.format.is_planar else data.reshape(-1, channels)
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    if data.dtype.kind == "u":  # u8 and u8p: silence is 128
        half = 2.0 ** (8 * data.dtype.itemsize - 1)
        return ((data.astype(np.float32) - half) / half).astype(np.float32)
    scale = np.float32(2.0 ** (8 * data.dtype.itemsize - 1))
    return (data.astype(np.float32) / scale).astype(np.float32)


def _resampled(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """``samples`` (time along axis 0) at ``new_rate``, by polyphase filtering (deterministic)."""
    if new_rate == rate:
        return samples
    from scipy.signal import resample_poly  # 2 s to import: only when a file needs it

    common = math.gcd(rate, new_rate)
    resampled = resample_poly(samples, new_rate // common, rate // common, axis=0)
    return resampled.astype(np.float32, copy=False)


def _output_rate(rate: int) -> int:
    """``rate`` if AAC takes it, else the next AAC rate up (48 kHz from above 96 kHz)."""
    if rate in AAC_RATES:
        return rate
    if rate > max(AAC_RATES):
        return 48000
    return min(r for r in AAC_RATES if r > rate)


def _downmix_to_stereo(samples: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Stereo from any number of channels, with the ITU shares for named surround channels."""
    weights = np.zeros((samples.shape[1], 2), np.float32)
    for index in range(samples.shape[1]):
        name = names[index] if index < len(names) else ""
        # Unnamed channels alternate between left and right.
        unnamed = (_HALF, 0.0) if index % 2 == 0 else (0.0, _HALF)
        weights[index] = _STEREO_DOWNMIX.get(name, unnamed)
    mixed = samples @ weights
    peak = float(np.abs(mixed).max(initial=0.0))
    if peak > 1.0:
        mixed /= peak
    return mixed.astype(np.float32, copy=False)


def _check_is_readable_file(path: Path) -> None:
    if looks_like_url(path):
        raise AudioFileError(
            f"{path} looks like a web address; avatar-app reads only files on this computer. "
            "Download the file first and pick the copy."
        )
    info = stat_or_none(path)
    if info is None:
        raise AudioFileError(
            f"The sound file {path} does not exist. Check the path, or pick the file again."
        )
    if is_folder(info):
        raise AudioFileError(f"{path} is a folder, not a sound file. Pick {_SOUND_FILES} in it.")
    if not is_regular(info):
        raise AudioFileError(
            f"{path} is not a regular file (a pipe or a device, which may never end). Save the "
            f"sound to a file first, and pick {_SOUND_FILES}."
        )
    if info.st_size == 0:
        raise AudioFileError(
            f"The sound file {path} is empty (0 bytes); the copy or download probably failed. "
            "Copy it again, or pick another one."
        )


def _open(path: Path) -> Any:
    try:
        return av.open(ffmpeg_url(path), metadata_errors="replace")
    except (av.InvalidDataError, av.EOFError) as exc:
        raise AudioFileError(
            f"{path} is not a sound file that can be read (it may be another kind of file, or "
            f"damaged). Pick {_SOUND_FILES}, or convert this one to WAV."
        ) from exc
    except (OSError, av.FFmpegError) as exc:
        raise AudioFileError(
            f"The sound file {path} cannot be opened ({exc}). Check that you may read it, or "
            "copy it somewhere you can and pick the copy."
        ) from exc


def _no_sound_track(path: Path, container: Any) -> AudioFileError:
    format_name = container.format.name
    if format_name.endswith("_pipe") or format_name.startswith("image2"):
        return AudioFileError(f"{path} is a picture, not a sound file. Pick {_SOUND_FILES}.")
    if container.streams.video:
        return AudioFileError(
            f"The video {path} has no sound track. Pick a video with sound, or an audio file "
            "(WAV, MP3, FLAC, OGG or M4A)."
        )
    return AudioFileError(f"{path} holds no sound. Pick {_SOUND_FILES}.")


def _declared_seconds(path: Path, container: Any, stream: Any) -> float | None:
    """How long the file says its sound is, when it says so."""
    if container.format.name == "wav":
        # ffmpeg quietly reads a WAV that was cut short up to its end; the header knows more.
        data_bytes = _wav_data_bytes(path)
        bit_rate = stream.codec_context.bit_rate
        return 8 * data_bytes / bit_rate if data_bytes and bit_rate else None
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None


def _wav_data_bytes(path: Path) -> int | None:
    """The size of the sound data a WAV header announces, if it announces one."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        position = 12
        while position + 8 <= size:
            file.seek(position)
            chunk_id, chunk_size = struct.unpack("<4sI", file.read(8))
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF: left open by a streaming writer
                return None if chunk_size in (0, 0xFFFFFFFF) else int(chunk_size)
            position += 8 + chunk_size + (chunk_size & 1)
    return None


def _nothing_decoded(path: Path, damaged: bool) -> AudioFileError:
    if damaged:
        return AudioFileError(
            f"The sound file {path} is damaged: none of its sound could be decoded. Copy it "
            "again from where it came from, or pick another file."
        )
    return AudioFileError(
        f"The sound file {path} holds no sound (0 seconds). Record or export it again, "
        "or pick another file."
    )


def _report_clipping(path: Path, samples: np.ndarray) -> None:
    # In blocks: a temporary copy of a long file's sound would double the memory it takes.
    block = 1 << 20
    at_full_scale = sum(
        np.count_nonzero(np.abs(samples[i : i + block]) >= CLIP_LEVEL)
        for i in range(0, len(samples), block)
    )
    share = at_full_scale / samples.size
    if share > CLIPPED_SHARE:
        log.warning(
            "The sound in %s is clipped (%.0f%% of samples at full scale), so it may sound "
            "distorted; record it less loud if you can. Going on.",
            path,
            100 * share,
        )
