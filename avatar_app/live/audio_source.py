"""Sound for the live session: a microphone (PortAudio via sounddevice) or a file in real time.

Both sources hand out ``AudioChunk``s of exactly ``chunk_ms`` of float32 mono sound at ``rate``,
either to an ``on_chunk`` callback (called on the capture thread; it must not block) or through
``read(timeout)`` from a bounded queue that drops the oldest chunk when full and counts the drops.

Every chunk carries ``pts_ns``: the ``time.monotonic_ns()`` at which its first sample was
captured. For a microphone this is estimated from PortAudio's time info (``currentTime -
inputBufferAdcTime`` is how long ago the first sample of a callback buffer was captured; where a
host API reports nothing sensible, the buffer's duration is used instead) and then smoothed along
the sample count, so chunk spacing follows the sample clock and ``pts_ns`` only ever increases.

A microphone that fails (a PortAudio error, a stream that stopped by itself, or no callback for
more than ``STALL_SECONDS``) is reopened by a supervisor thread with exponential backoff; ``status``
says "running", "reconnecting" or "stopped", and ``silent`` whether a running one brings only
digital silence or nothing at all. Silence is not a failure: only missing callbacks are, and a
stream that has not delivered its first callback gets ``FIRST_CALLBACK_SECONDS`` (doubling after
each reopen that brought nothing), so a source that is present but idle is not reopened in a loop.
While a microphone is open, native ALSA/PortAudio messages go to the debug log
(``native_noise``). Devices are chosen by name, never by index.

``capture_tap`` sees the sound as captured, at the device's own rate and channels (a sound
server's source is opened at its own rate, and the lip-sync rate is made here), for recordings.

On Linux the names include the sound server's sources ("Blue Yeti Analog Stereo", see
``sound_server.py``), which PortAudio itself cannot list: such a source is recorded through
PortAudio's ALSA device ``pulse`` with ``PULSE_SOURCE`` naming it while the stream opens.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.signal import firwin, upfirdn

from avatar_app.live import native_noise
from avatar_app.live.sound_server import SoundSource, list_sources, pulse_target
from avatar_app.pipeline.frames import AudioChunk
from avatar_app.video_writer import AAC_RATES
from engines.errors import DeviceError

log = logging.getLogger(__name__)

Status = Literal["running", "reconnecting", "stopped"]
OnChunk = Callable[["AudioChunk"], None]
_Device = tuple[int, dict[str, Any]]
"""A PortAudio device: its index and ``sd.query_devices(index)``."""

STALL_SECONDS = 1.0
"""A started microphone that delivers nothing for this long is reopened."""
FIRST_CALLBACK_SECONDS = 3.0
"""The first callback after opening may take this long (ALSA's pulse device: ~1.3 s)."""
QUIET_REOPEN_MAX_SECONDS = 30.0
"""The longest wait for a first callback, after reopens that each brought nothing."""
SILENT_SECONDS = 2.0
"""Only exact zeros for this long: ``silent`` (muted, or an idle source)."""
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Waits before successive reconnection attempts; the last one repeats."""
QUEUE_SECONDS = 2.0
"""``read`` keeps at most this much sound; older chunks are dropped."""
_IDLE = "no callback"  # how _problem starts for a stream that never delivered since it opened
_MAX_LATENCY_S = 1.0  # a reported input latency beyond this (or below 0) is not believed
_RESYNC_NS = 200_000_000  # a capture time this much later than the sample clock says: resync
_DRIFT_PER_S = 0.001  # how fast (s/s) the clock estimate may creep later to follow drift


@dataclass(frozen=True)
class Microphone:
    """One entry of a microphone picker."""

    label: str
    """What to show: the sound server's description of a source, or PortAudio's device name."""
    device: str
    """What to pass as ``MicrophoneSource(device=...)``."""
    is_default: bool = False
    is_monitor: bool = False
    """It records what an output plays, not a microphone."""


def microphones() -> list[Microphone]:
    """The inputs a user can pick: the sound server's sources (the default first, monitors
    last), then PortAudio's inputs that are not just another way to them.

    With a sound server, PortAudio's ALSA devices are either routes to the server's default
    source ("pulse", "default", "sysdefault", rate converters...) or cards the server holds
    (busy), so only the ``hw:`` devices of cards it leaves alone are listed; the hidden names
    still work in ``MicrophoneSource``.
    """
    sources = list_sources()
    try:
        sd = _sounddevice()
    except DeviceError:
        if sources:
            return _choices(None, [], sources)
        raise
    return _choices(sd, _portaudio_inputs(sd), sources)


def list_microphones() -> list[str]:
    """The names to show for the inputs (``microphones()``), as ``--mic NAME`` takes them."""
    return [choice.label for choice in microphones()]


class _ChunkQueue:
    """Bounded FIFO that drops the oldest item when full; ``put`` never waits for a reader."""

    def __init__(self, max_items: int) -> None:
        self._items: deque[AudioChunk] = deque()
        self._max = max(1, max_items)
        self._ready = threading.Condition(threading.Lock())
        self.dropped = 0

    def put(self, chunk: AudioChunk) -> None:
        with self._ready:
            if len(self._items) >= self._max:
                self._items.popleft()
                self.dropped += 1
            self._items.append(chunk)
            self._ready.notify()

    def get(self, timeout: float | None) -> AudioChunk | None:
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    def clear(self) -> None:
        with self._ready:
            self._items.clear()


class _Source:
    """What both sources share: chunk size, delivery (callback or queue) and status."""

    def __init__(self, rate: int, chunk_ms: int, on_chunk: OnChunk | None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        self.rate = rate
        self.chunk_ms = chunk_ms
        self.chunk_samples = max(1, rate * chunk_ms // 1000)
        self._on_chunk = on_chunk
        self.capture_tap: OnChunk | None = None
        """Called on the capture thread with the sound as captured, at ``recording_format``'s
        rate (or the device's, see there) as float32 [n, channels], for the recording and the
        delayed voice; must not block."""
        self._queue = _ChunkQueue(math.ceil(QUEUE_SECONDS * 1000 / chunk_ms))
        self._status: Status = "stopped"

    @property
    def status(self) -> Status:
        """ "running", "reconnecting" (microphone only) or "stopped"."""
        return self._status

    @property
    def silent(self) -> bool:
        """Running, but only digital silence (or nothing) comes: a muted or idle input."""
        return False

    @property
    def recording_format(self) -> tuple[int, int]:
        """(rate, channels) to record this source's sound at."""
        return self.rate, 1

    @property
    def dropped(self) -> int:
        """Chunks dropped because ``read`` was not called often enough."""
        return self._queue.dropped

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        """The oldest chunk not read yet, waiting up to ``timeout`` s; None if none came.

        Only for sources made without ``on_chunk``.
        """
        return self._queue.get(timeout)

    def _deliver(self, chunk: AudioChunk) -> None:
        if self._on_chunk is None:
            self._queue.put(chunk)
            return
        try:
            self._on_chunk(chunk)
        except Exception:
            log.exception("The audio chunk handler failed; the chunk is lost")


class _Chunker:
    """Cuts a stream of sample blocks into chunks of exactly ``size`` samples."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer = np.zeros(size, np.float32)
        self._filled = 0

    def push(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Whole chunks completed by ``samples``, each with its start offset into ``samples``
        (negative when it began in an earlier block)."""
        out: list[tuple[int, np.ndarray]] = []
        position = 0
        while position < len(samples):
            take = min(self.size - self._filled, len(samples) - position)
            self._buffer[self._filled : self._filled + take] = samples[position : position + take]
            self._filled += take
            position += take
            if self._filled == self.size:
                out.append((position - self.size, self._buffer))
                self._buffer = np.zeros(self.size, np.float32)
                self._filled = 0
        return out


class StreamingResampler:
    """Polyphase resampling block by block, with the filter ``scipy.signal.resample_poly`` uses.

    The output equals ``resample_poly`` on the whole signal, ``delay_in`` input samples late
    (the filter's half length); nothing is lost at block edges.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        common = math.gcd(rate_in, rate_out)
        self.up, self.down = rate_out // common, rate_in // common
        half = 10 * max(self.up, self.down)
        self._taps = (
            firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        ).astype(np.float64)
        self._delay = half  # in upsampled samples
        self.delay_in = half / self.up
        # How many input samples one output needs from before it: the filter's reach.
        self._history = len(self._taps) // self.up + self.down + 2
        self._buffer = np.zeros(0, np.float64)
        self._base = 0  # global index of _buffer[0]; negative indices are zeros
        self._received = 0  # input samples so far
        self._emitted = 0  # output samples so far
        self._inverse_up = pow(self.up, -1, self.down) if self.down > 1 else 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The output samples that ``samples`` (the next input block) completes."""
        if self.up == self.down:
            return samples.astype(np.float32, copy=False)
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float64)])
        self._received += len(samples)
        # Output k is y[k*down + delay], with y the upsampled input filtered by the taps; it is
        # complete once input up to (k*down + delay) / up has arrived.
        last = (self._received * self.up - 1 - self._delay) // self.down
        count = last - self._emitted + 1
        if count <= 0:
            return np.zeros(0, np.float32)
        first = self._emitted * self.down + self._delay  # upsampled index of the first output
        # Start the filtered block at an input index whose upsampled position is `first` minus
        # a multiple of `down`, far enough back for the whole filter.
        start = (first - len(self._taps)) // self.up
        if self.down > 1:
            start -= (start * self.up - first) * self._inverse_up % self.down
        if start < self._base:  # before the stream began: zeros
            pad = self._base - start
            block = np.concatenate([np.zeros(pad), self._buffer])
        else:
            block = self._buffer[start - self._base :]
        filtered = upfirdn(self._taps, block, self.up, self.down)
        offset = (first - start * self.up) // self.down
        out = filtered[offset : offset + count]
        self._emitted += count
        keep_from = max(
            self._base, (self._emitted * self.down + self._delay) // self.up - self._history
        )
        self._buffer = self._buffer[keep_from - self._base :]
        self._base = keep_from
        return out.astype(np.float32)


class _CaptureClock:
    """The capture time of sample 0 of a stream, from noisy per-buffer estimates.

    Each estimate is an upper bound of the true capture time (data cannot arrive before it was
    captured), so the clock follows the lower envelope of (estimate - count / rate), creeping
    later by at most ``_DRIFT_PER_S`` to follow clock drift, and jumping when the estimates are
    much later (samples were lost).
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._origin: float | None = None  # ns at sample 0
        self._last_count = 0

    def origin_ns(self, estimate_ns: int, count: int) -> float:
        """Sample 0's capture time, given an estimate of sample ``count``'s."""
        candidate = estimate_ns - count * 1e9 / self.rate
        if self._origin is None or candidate - self._origin > _RESYNC_NS:
            self._origin = candidate
        else:
            creep = (count - self._last_count) / self.rate * _DRIFT_PER_S * 1e9
            self._origin = min(self._origin + creep, candidate)
        self._last_count = count
        return self._origin


class MicrophoneSource(_Source):
    """Live sound from an input device, chosen by (part of) its name; None means the default.

    ``start`` opens the device (``DeviceError`` if it is unknown or cannot be opened); after
    that, failures are repaired on a supervisor thread and never raised. The device is opened at
    its own rate (a sound-server source's, else PortAudio's default for it) and resampled to
    ``rate``; channels are averaged for the chunks and kept (up to two) for ``capture_tap``.
    ``on_chunk`` runs on PortAudio's callback thread and must return quickly.
    """

    def __init__(
        self,
        device: str | None = None,
        rate: int = 16000,
        chunk_ms: int = 10,
        on_chunk: OnChunk | None = None,
        latency: float = 0.05,
    ) -> None:
        super().__init__(rate, chunk_ms, on_chunk)
        self.device = device
        self.latency = latency
        self.overflows = 0
        """Callbacks that reported lost input (the callback thread was starved)."""
        self.reconnects = 0
        """Times the device was reopened after a failure."""
        self._lock = threading.Lock()  # guards the stream and its state
        self._stream: Any = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._last_callback = 0.0
        self._last_sound = 0.0  # when a callback last brought something other than zeros
        self._called_back = False  # the open stream has delivered its first callback
        self._quiet_reopens = 0  # reopens in a row after which no callback came
        self._opened_name = ""
        self._channels = 1
        self._device_rate = rate
        self._resampler: StreamingResampler | None = None
        self._chunker = _Chunker(self.chunk_samples)
        self._clock = _CaptureClock(rate)
        self._in_count = 0
        self._out_count = 0
        self._last_pts = 0

    @property
    def device_name(self) -> str:
        """The full name of the device in use, a sound-server source's description for one
        ("" before ``start``)."""
        return self._opened_name

    def start(self) -> None:
        """Open the device and start capturing; a second call does nothing."""
        if self._supervisor is not None:
            return
        self._stopping.clear()
        native_noise.hold()
        try:
            self._open()
        except BaseException:
            native_noise.release()
            raise
        self._status = "running"
        self._supervisor = threading.Thread(
            target=self._supervise, name="mic-supervisor", daemon=True
        )
        self._supervisor.start()

    def stop(self) -> None:
        """Stop capturing and close the device; safe to call any number of times."""
        self._stopping.set()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.join()
            self._close()
            native_noise.release()
        self._status = "stopped"

    @property
    def silent(self) -> bool:
        if self._status != "running":
            return False
        now = time.monotonic()
        return now - self._last_callback > STALL_SECONDS or now - self._last_sound > SILENT_SECONDS

    @property
    def recording_format(self) -> tuple[int, int]:
        """The device's rate (48 kHz if AAC cannot take it) and channels (mono beyond two)."""
        rate = self._device_rate if self._device_rate in AAC_RATES else 48000
        return rate, self._channels if self._channels <= 2 else 1

    def __enter__(self) -> MicrophoneSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- device --------------------------------------------------------------------------

    def _open(self) -> None:
        sd = _sounddevice()
        (index, info), source = _find_input(sd, self.device)
        label = source.description if source is not None else str(info["name"])
        server = source if source is not None else _default_server_source(info)
        device_rate = self._pick_rate(sd, index, info, server)
        channels = _pick_channels(sd, index, info, device_rate, server)
        try:
            with pulse_target("PULSE_SOURCE", source.name if source is not None else None):
                stream = sd.InputStream(
                    device=index,
                    samplerate=device_rate,
                    channels=channels,
                    dtype="float32",
                    blocksize=0,
                    latency=self.latency,
                    callback=self._callback,
                )
        except Exception as exc:  # sounddevice raises PortAudioError, ValueError ...
            raise DeviceError(
                f"The microphone {label!r} cannot be opened ({exc}). Check that no other "
                "program holds it exclusively, or pick another one."
            ) from exc
        with self._lock:
            self._device_rate = device_rate
            self._resampler = (
                StreamingResampler(device_rate, self.rate) if device_rate != self.rate else None
            )
            self._chunker = _Chunker(self.chunk_samples)
            self._clock = _CaptureClock(device_rate)
            self._in_count = 0
            self._out_count = 0
            self._last_callback = self._last_sound = time.monotonic()
            self._called_back = False
            self._channels = channels
            self._stream = stream
            _count_stream(+1)
            self._opened_name = label
        try:
            stream.start()
        except Exception as exc:
            self._close()
            raise DeviceError(f"The microphone {label!r} cannot be started ({exc}).") from exc
        log.info(
            "Microphone %r open at %d Hz%s",
            self._opened_name,
            device_rate,
            f" (resampled to {self.rate} Hz)" if device_rate != self.rate else "",
        )

    def _pick_rate(
        self, sd: Any, index: int, info: dict[str, Any], server: SoundSource | None
    ) -> int:
        """The first rate the device takes of: the sound-server source's own, the device's
        default, ``self.rate``."""
        default = round(float(info["default_samplerate"]))
        wanted = [server.rate] if server is not None and server.rate else []
        for rate in [*wanted, default, self.rate]:
            try:
                sd.check_input_settings(device=index, samplerate=rate, channels=1)
                return rate
            except Exception:
                continue
        return default

    def _close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is None:
            return
        _count_stream(-1)
        try:
            stream.abort()
        except Exception:
            log.debug("Aborting the microphone stream failed", exc_info=True)
        try:
            stream.close()
        except Exception:
            log.debug("Closing the microphone stream failed", exc_info=True)

    # -- capture thread ------------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's callback: copy, resample, cut into chunks, hand on. Never blocks."""
        now_ns = time.monotonic_ns()
        self._last_callback = now_ns / 1e9
        if not self._called_back:
            self._called_back = True
            self._quiet_reopens = 0
        if status:
            if status.input_overflow:
                self.overflows += 1
            else:
                log.debug("Microphone callback status: %s", status)
        block = np.array(indata, dtype=np.float32)  # indata is reused by PortAudio
        if block.any():
            self._last_sound = self._last_callback
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
        lag = _input_lag(time_info)
        if lag is None:
            lag = frames / self._device_rate
        origin_ns = self._clock.origin_ns(now_ns - int(lag * 1e9), self._in_count)
        capture_tap = self.capture_tap
        if capture_tap is not None:
            kept = block if block.shape[1] <= 2 else block.mean(axis=1, keepdims=True)
            pts = int(origin_ns + self._in_count * 1e9 / self._device_rate)
            try:
                capture_tap(AudioChunk(kept, self._device_rate, pts))
            except Exception:
                log.exception("The capture tap (recording, delayed voice) failed")
        self._in_count += frames
        if self._resampler is not None:
            # resample_poly is zero-phase: output k sits at input position k * rate_in / rate.
            mono = self._resampler.process(mono)
        start = self._out_count
        self._out_count += len(mono)
        for offset, samples in self._chunker.push(mono):
            pts = int(origin_ns + (start + offset) * 1e9 / self.rate)
            pts = max(pts, self._last_pts + 1)
            self._last_pts = pts
            np.clip(samples, -1.0, 1.0, out=samples)
            self._deliver(AudioChunk(samples, self.rate, pts))

    # -- supervisor ----------------------------------------------------------------------

    def _supervise(self) -> None:
        """Watch the stream; reopen it with backoff when it fails. Never raises."""
        attempt = 0
        while not self._stopping.wait(0.1):
            try:
                problem = self._problem()
                if problem is None:
                    continue
                if problem.startswith(_IDLE):  # open and well, it seems; only quiet
                    log.info("Microphone %r: %s; reopening it", self._opened_name, problem)
                else:
                    self._status = "reconnecting"
                    log.warning(
                        "Microphone %r failed (%s); reconnecting", self._opened_name, problem
                    )
                self._close()
                attempt = 0
                while not self._stopping.is_set():
                    wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                    if self._stopping.wait(wait):
                        break
                    attempt += 1
                    try:
                        self._reopen()
                    except Exception as exc:
                        log.warning(
                            "Reconnecting the microphone %r failed (attempt %d): %s; next try "
                            "in %.1f s",
                            self.device or "default",
                            attempt,
                            exc,
                            BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)],
                        )
                        self._status = "reconnecting"
                        continue
                    self.reconnects += 1
                    if self._status != "running":
                        self._status = "running"
                        log.warning("Microphone %r is back", self._opened_name)
                    break
            except Exception:  # the supervisor must survive anything
                log.exception("Microphone supervisor error")

    def _problem(self) -> str | None:
        with self._lock:
            stream = self._stream
        if stream is None:
            return "the stream is closed"
        if not stream.active:
            return "the stream stopped by itself"
        quiet = time.monotonic() - self._last_callback
        limit = STALL_SECONDS
        if not self._called_back:  # a present but idle source brings nothing: back off
            limit = min(FIRST_CALLBACK_SECONDS * 2**self._quiet_reopens, QUIET_REOPEN_MAX_SECONDS)
        if quiet > limit and not self._called_back:
            self._quiet_reopens += 1
            return f"{_IDLE} {quiet:.1f} s since it opened"
        if quiet > limit:
            return f"no audio from the device for {quiet:.1f} s"
        return None

    def _reopen(self) -> None:
        """Open again; if the device is gone from PortAudio's list, rescan the devices first."""
        sd = _sounddevice()
        try:
            self._open()
            return
        except DeviceError:
            if not _rescan_allowed():
                raise
        log.info("Rescanning audio devices")
        _rescan(sd)
        self._open()


def _pick_channels(
    sd: Any, index: int, info: dict[str, Any], rate: int, server: SoundSource | None
) -> int:
    """A sound-server source's own channels (at most two) if the device takes them, else 1 if
    it records mono, else as many channels as it has."""
    wanted = [min(server.channels, 2)] if server is not None and server.channels else []
    for channels in [*wanted, 1]:
        try:
            sd.check_input_settings(device=index, samplerate=rate, channels=channels)
            return channels
        except Exception:
            continue
    return max(1, int(info["max_input_channels"]))


def _default_server_source(info: dict[str, Any]) -> SoundSource | None:
    """The sound server's default source, when PortAudio's device is a route to it."""
    if info["name"] not in ("pulse", "default"):
        return None
    return next((source for source in list_sources() if source.is_default), None)


def _input_lag(time_info: Any) -> float | None:
    """Seconds since the first sample of the callback's buffer was captured, if known."""
    try:
        lag = float(time_info.currentTime) - float(time_info.inputBufferAdcTime)
    except (AttributeError, TypeError, ValueError):
        return None
    if not time_info.inputBufferAdcTime or not 0.0 <= lag <= _MAX_LATENCY_S:
        return None
    return lag


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library is missing
        raise DeviceError(
            f"Sound input is not available ({exc}). On Debian/Ubuntu install libportaudio2; "
            "elsewhere reinstall the sounddevice package."
        ) from exc
    return sounddevice


def _portaudio_inputs(sd: Any) -> list[_Device]:
    return [(i, dict(d)) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def _find_input(sd: Any, name: str | None) -> tuple[_Device, SoundSource | None]:
    """The PortAudio input to open for ``name`` and, if ``name`` is a sound-server source (its
    description or server name), that source. A whole name (any case) wins over part of one,
    then the server's sources (in listing order) over PortAudio's names. With None, sounddevice's
    default input."""
    inputs = _portaudio_inputs(sd)
    if name is None:
        return _default_input(sd, inputs), None
    sources = list_sources()
    candidates: list[tuple[tuple[str, ...], SoundSource | _Device]] = [
        ((source.description, source.name), source) for source in sources
    ]
    candidates += [((str(info["name"]),), (index, info)) for index, info in inputs]
    wanted = name.casefold()
    for whole in (True, False):
        found = [
            target
            for keys, target in candidates
            if any(key.casefold() == wanted if whole else wanted in key.casefold() for key in keys)
        ]
        if found:
            if len(found) > 1:
                log.info("Several microphones match %r; using the first listed", name)
            target = found[0]
            if isinstance(target, SoundSource):
                return _server_route(inputs, target), target
            return target, None
    names = ", ".join(repr(choice.label) for choice in _choices(sd, inputs, sources)) or "none"
    raise DeviceError(
        f"No microphone named {name!r}. Available inputs: {names}. Pick one of these (part "
        "of a name is enough), or name none to use the system's default input."
    )


def _choices(sd: Any, inputs: list[_Device], sources: list[SoundSource]) -> list[Microphone]:
    """``microphones()`` from PortAudio's inputs and the sound server's sources."""
    choices = [Microphone(s.description, s.name, s.is_default, s.is_monitor) for s in sources]
    held = {source.alsa_card for source in sources}
    default = _default_input(sd, inputs)[0] if inputs and not sources else None
    for index, info in inputs:
        name = str(info["name"])
        if sources and _host_api(sd, info) == "ALSA":
            card = re.search(r"\(hw:(\d+),\d+\)", name)
            if card is None or int(card.group(1)) in held:
                continue
        choices.append(Microphone(name, name, is_default=index == default))
    return choices


def _host_api(sd: Any, info: dict[str, Any]) -> str:
    try:
        return str(sd.query_hostapis(info["hostapi"])["name"])
    except Exception:  # a PortAudio without host API information
        return ""


def _server_route(inputs: list[_Device], source: SoundSource) -> _Device:
    """The PortAudio device that records a sound-server source (with ``pulse_target``)."""
    for route in ("pulse", "default"):
        for index, info in inputs:
            if info["name"] == route:
                if route != "pulse":
                    log.warning(
                        "PortAudio has no 'pulse' device; recording %r through 'default', which "
                        "picks it only if 'default' is PulseAudio's ALSA plugin",
                        source.description,
                    )
                return index, info
    raise DeviceError(
        f"The microphone {source.description!r} belongs to the sound server, which PortAudio "
        "reaches only through ALSA's 'pulse' device, and there is none. Install the ALSA plugin "
        "for PulseAudio (Debian/Ubuntu: libasound2-plugins; Fedora: alsa-plugins-pulseaudio)."
    )


def _default_input(sd: Any, inputs: list[_Device]) -> _Device:
    """The default input: ``sd.default.device`` is an (input, output) pair (sounddevice's
    ``_InputOutputPair``, or a tuple) or one value for both; a value is PortAudio's index of
    the device (-1: none), or a name that someone set."""
    default = sd.default.device
    if not isinstance(default, (int, str)):
        default = default[0]
    if isinstance(default, str):
        found = _match_name(inputs, default)
        if found is not None:
            return found
        log.warning("The default microphone %r is not available", default)
    elif default is not None:
        for index, info in inputs:
            if index == int(default):
                return index, info
    if not inputs:
        raise DeviceError("No microphone was found. Plug one in (available inputs: none).")
    log.info("No default microphone; using %r", inputs[0][1]["name"])
    return inputs[0]


def _match_name(inputs: list[_Device], name: str) -> _Device | None:
    """The input named ``name`` (any case), else the first whose name contains it, else None."""
    wanted = name.casefold()
    for matches in (
        [(i, d) for i, d in inputs if str(d["name"]).casefold() == wanted],
        [(i, d) for i, d in inputs if wanted in str(d["name"]).casefold()],
    ):
        if matches:
            if len(matches) > 1:
                log.info("Several microphones match %r; using %r", name, matches[0][1]["name"])
            return matches[0]
    return None


# PortAudio lists devices once; a device that comes back (USB replugged, sound server restarted)
# is only seen after re-initialising PortAudio, which closes every PortAudio stream in the
# process. So that is done only while no microphone stream is open.
_open_streams = 0
_open_streams_lock = threading.Lock()


def _count_stream(change: int) -> None:
    global _open_streams
    with _open_streams_lock:
        _open_streams += change


def _rescan_allowed() -> bool:
    with _open_streams_lock:
        return _open_streams == 0


def _rescan(sd: Any) -> None:
    """Restart PortAudio so that it lists the devices again.

    Not with ``sd._initialize()``: that points file descriptor 2 at /dev/null while PortAudio
    starts (up to seconds with a sound server gone), and every other thread's output meanwhile
    is lost, such as the session's warning that the microphone is down. PortAudio's own
    messages go to C's ``stderr``, which ``native_noise`` holds while a microphone is open.
    """
    with _open_streams_lock:
        if _open_streams == 0:
            sd._terminate()
            sd._check(sd._lib.Pa_Initialize(), "Error initializing PortAudio")
            sd._initialized += 1


class FileAudioSource(_Source):
    """A sound file played as if it came from a microphone, paced by the monotonic clock.

    A chunk is released when its last sample has "played"; its ``pts_ns`` is when its first
    sample started. With ``loop`` the file repeats; otherwise the last chunk is padded with
    silence and the source stops by itself (``status`` becomes "stopped"). ``capture_tap``
    gets the same stretch at the file's own rate and channels (an AAC rate, at most stereo),
    decoded as it plays rather than held.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        rate: int = 16000,
        chunk_ms: int = 10,
        on_chunk: OnChunk | None = None,
        loop: bool = False,
    ) -> None:
        from avatar_app.audio_file import load_audio, output_format

        super().__init__(rate, chunk_ms, on_chunk)
        self.path = Path(path)
        self.loop = loop
        self._samples = load_audio(self.path, rate=rate, channels=1).samples[:, 0]
        self._recorded = _NativeSound(self.path, *output_format(self.path))
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()

    def start(self) -> None:
        """Start playing from the beginning; a second call does nothing."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._finished.clear()
        self._status = "running"
        self._thread = threading.Thread(target=self._play, name="file-audio", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop playing; safe to call any number of times."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self._status = "stopped"

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait until a file played without ``loop`` has ended; False on timeout."""
        return self._finished.wait(timeout)

    def __enter__(self) -> FileAudioSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _play(self) -> None:
        size = self.chunk_samples
        samples = self._samples
        chunk_ns = size * 1_000_000_000 // self.rate
        start_ns = time.monotonic_ns()
        position = 0
        index = 0
        try:
            while True:
                self._tap_recording(position, start_ns + index * chunk_ns)
                if self.loop:
                    chunk = samples[(position + np.arange(size)) % len(samples)]
                    if position + size >= len(samples):
                        self._recorded.restart()
                    position = (position + size) % len(samples)
                else:
                    chunk = samples[position : position + size]
                    if len(chunk) < size:
                        chunk = np.concatenate([chunk, np.zeros(size - len(chunk), np.float32)])
                    position += size
                pts = start_ns + index * size * 1_000_000_000 // self.rate
                release = pts + chunk_ns
                wait = (release - time.monotonic_ns()) / 1e9
                if wait > 0 and self._stopping.wait(wait):
                    return
                if self._stopping.is_set():
                    return
                self._deliver(AudioChunk(np.array(chunk, np.float32), self.rate, pts))
                index += 1
                if not self.loop and position >= len(samples):
                    self._status = "stopped"
                    self._finished.set()
                    return
        except Exception:
            log.exception("Playing %s failed", self.path)
            self._status = "stopped"
            self._finished.set()

    @property
    def recording_format(self) -> tuple[int, int]:
        return self._recorded.rate, self._recorded.channels

    def _tap_recording(self, position: int, pts_ns: int) -> None:
        """Hand ``capture_tap`` the file's own sound for the chunk starting at ``position``
        (decoded along while a tap is set, so that it stays in step with the chunks)."""
        tap = self.capture_tap
        if tap is None:
            return
        rate = self._recorded.rate
        count = (position + self.chunk_samples) * rate // self.rate - position * rate // self.rate
        try:
            tap(AudioChunk(self._recorded.take(count), rate, pts_ns))
        except Exception:
            log.exception("The capture tap (recording, delayed voice) failed")


class _NativeSound:
    """A sound file's sound at ``rate`` and ``channels``, decoded as it is taken."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        self.path = path
        self.rate = rate
        self.channels = channels
        self._blocks: Iterator[np.ndarray] | None = None
        self._buffer = np.zeros((0, channels), np.float32)

    def restart(self) -> None:
        """From the beginning again (a loop)."""
        self._blocks = None
        self._buffer = self._buffer[:0]

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` samples, float32 [count, channels]; zeros after the end."""
        from avatar_app.audio_file import stream_audio

        if self._blocks is None:
            self._blocks = stream_audio(self.path, self.rate, self.channels)
        while len(self._buffer) < count:
            block = next(self._blocks, None)
            if block is None:
                missing = np.zeros((count - len(self._buffer), self.channels), np.float32)
                self._buffer = np.concatenate([self._buffer, missing])
                break
            self._buffer = np.concatenate([self._buffer, block.astype(np.float32, copy=False)])
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken
