"""The virtual microphone: the user's voice, delayed to match the avatar's mouth, for a call app.

A call app hears the real microphone at once but sees the avatar's mouth later, by the
lookahead plus the render and hand-off; the voice then leads the mouth past what viewers
accept (ITU-R BT.1359). ``VoiceOut`` plays the microphone's sound into an output that call
apps take as a microphone, delayed by the measured picture delay plus a user offset.

Where the voice goes (``--voice-out``):
- ``auto`` on Linux: a null sink plus a remapped source described as "Avatar Microphone",
  created with ``pactl`` (PulseAudio, or PipeWire through pipewire-pulse) and removed on stop,
  at exit and on SIGTERM (the runner's handler stops the session); the leftovers of a run that
  crashed are found by the sink's name and the owner's pid and removed on the next start.
- ``auto`` on Windows/macOS: an installed VB-CABLE ("CABLE Input") or BlackHole output; with
  none, a warning says what to install and the session carries on without.
- a name: an existing output (PortAudio's name, or a sound server's sink by name or
  description).

The writer keeps the sound in a ring buffer stamped by capture time; PortAudio's callback reads
the sample captured ``delay`` before the moment it will be heard. A changed delay is reached by
playing up to ``MAX_SPEED_CHANGE`` faster or slower (inaudible, no clicks), never by a jump,
unless it is off by more than ``RESYNC_S`` (start-up, a stall).
"""

from __future__ import annotations

import atexit
import logging
import os
import platform
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from avatar_app.live.audio_source import StreamingResampler
from avatar_app.live.sound_server import pulse_target
from avatar_app.pipeline.frames import AudioChunk
from engines.errors import DeviceError

log = logging.getLogger(__name__)

SINK_NAME = "avatar_app_voice"
"""The null sink's name: how this app's devices (and a crashed run's leftovers) are found."""
SOURCE_NAME = "avatar_app_microphone"
DESCRIPTION = "Avatar Microphone"
OWNER_PROPERTY = "avatar_app.pid"
DRIVERS = ("CABLE Input", "BlackHole")  # virtual cables call apps list as microphones
INSTALL_HINT = {
    "Windows": "install VB-CABLE (https://vb-audio.com/Cable/) and pick 'CABLE Output' in the "
    "call app",
    "Darwin": "install BlackHole (`brew install blackhole-2ch`) and pick 'BlackHole 2ch' in the "
    "call app",
}
RING_SECONDS = 4.0
MAX_SPEED_CHANGE = 0.005  # +/-0.5 % speed while the delay moves to its target
RESYNC_S = 0.25  # further off than this: jump (only at start-up or after a stall)
GATE_RAMP_S = 0.01  # push-to-talk opens and closes the voice with this fade
FLOOR_DECAY = 0.01  # the least delay forgets an old peak by 10 ms per second
MARGIN_S = 0.02  # kept between the newest sound and what is played
DELAY_SMOOTHING = 0.2  # weight of a new target in the smoothed one (one per second)
_PACTL_TIMEOUT = 5.0


def _now_ns() -> int:
    """``time.monotonic_ns()``, the clock capture times are on (a seam for tests)."""
    return time.monotonic_ns()


def _system() -> str:
    """The OS's name as ``platform.system()`` says it (a seam for tests)."""
    return platform.system()


# -- the Linux virtual devices ------------------------------------------------------------------


def _pactl(*args: str) -> str:
    env = {**os.environ, "LC_ALL": "C"}
    done = subprocess.run(
        ["pactl", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=_PACTL_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise DeviceError(f"pactl {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def our_modules() -> list[tuple[int, int | None]]:
    """The sound server's modules this app loaded: (module id, owner pid or None)."""
    found = []
    for line in _pactl("list", "short", "modules").splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or SINK_NAME not in fields[2]:
            continue
        owner = re.search(rf"{re.escape(OWNER_PROPERTY)}=\W?(\d+)", fields[2])
        found.append((int(fields[0]), int(owner.group(1)) if owner else None))
    return found


def remove_leftovers() -> int:
    """Unload the devices of earlier runs that are no longer alive; how many were unloaded."""
    import psutil

    removed = 0
    for module, owner in our_modules():
        if owner is not None and owner != os.getpid() and psutil.pid_exists(owner):
            raise DeviceError(
                f"Another avatar-app (pid {owner}) already provides the {DESCRIPTION!r}; "
                "stop it first, or run this one with --voice-out off."
            )
        if owner != os.getpid():
            _unload(module)
            removed += 1
    if removed:
        log.info("Removed %d virtual-microphone module(s) left by an earlier run", removed)
    return removed


def _unload(module: int) -> None:
    try:
        _pactl("unload-module", str(module))
    except DeviceError as exc:
        log.debug("%s", exc)


class VirtualMicrophone:
    """A null sink and "Avatar Microphone" recording its monitor; ``close`` removes both."""

    def __init__(self) -> None:
        if _system() != "Linux" or shutil.which("pactl") is None:
            raise DeviceError(
                "Creating the virtual microphone needs PulseAudio or PipeWire and `pactl` "
                "(Debian/Ubuntu: sudo apt install pulseaudio-utils)."
            )
        try:
            _pactl("info")
        except (DeviceError, OSError, subprocess.TimeoutExpired) as exc:
            first = str(exc).splitlines()[0]
            raise DeviceError(
                f"No PulseAudio or PipeWire sound server answers ({first}). Start one "
                "(`systemctl --user start pipewire-pulse` or `pulseaudio --start`), or use "
                "--voice-out off."
            ) from exc
        remove_leftovers()
        owner = f"{OWNER_PROPERTY}='{os.getpid()}'"
        self.modules: list[int] = []
        try:
            self.modules.append(
                int(
                    _pactl(
                        "load-module",
                        "module-null-sink",
                        f"sink_name={SINK_NAME}",
                        f"sink_properties=\"device.description='Avatar Voice Output' {owner}\"",
                    )
                )
            )
            self.modules.append(
                int(
                    _pactl(
                        "load-module",
                        "module-remap-source",
                        f"master={SINK_NAME}.monitor",
                        f"source_name={SOURCE_NAME}",
                        f"source_properties=\"device.description='{DESCRIPTION}' {owner} "
                        f"{SINK_NAME}='1'\"",
                    )
                )
            )
        except (DeviceError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
            self.close()
            raise DeviceError(f"The virtual microphone could not be created ({exc}).") from exc
        atexit.register(self.close)
        log.info("Created the virtual microphone %r (modules %s)", DESCRIPTION, self.modules)

    def close(self) -> None:
        """Remove the devices; idempotent."""
        modules, self.modules = self.modules, []
        for module in reversed(modules):
            _unload(module)
        if modules:
            atexit.unregister(self.close)
            log.info("Removed the virtual microphone %r", DESCRIPTION)


# -- finding the output ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """Where the writer plays: a PortAudio output, with a sound-server sink to route it to."""

    device: int | str
    label: str
    pulse_sink: str | None = None


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:
        raise DeviceError(
            f"Sound output is not available ({exc}). On Debian/Ubuntu install libportaudio2."
        ) from exc
    return sounddevice


def _outputs(sd: Any) -> list[tuple[int, str]]:
    return [
        (i, str(d["name"])) for i, d in enumerate(sd.query_devices()) if d["max_output_channels"]
    ]


def _pulse_route(sd: Any, sink: str, label: str) -> Output:
    for index, name in _outputs(sd):
        if name == "pulse":
            return Output(index, label, sink)
    raise DeviceError(
        "PortAudio reaches the sound server only through ALSA's 'pulse' device, and there is "
        "none: install libasound2-plugins (Fedora: alsa-plugins-pulseaudio)."
    )


def _sinks() -> list[tuple[str, str]]:
    """The sound server's sinks as (name, description); [] without one."""
    if shutil.which("pactl") is None:
        return []
    try:
        text = _pactl("list", "sinks")
    except (DeviceError, OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for block in re.split(r"^Sink #\d+", text, flags=re.MULTILINE)[1:]:
        name = re.search(r"^\tName: (.*)$", block, re.MULTILINE)
        description = re.search(r"^\tDescription: (.*)$", block, re.MULTILINE)
        if name:
            found.append((name.group(1), description.group(1) if description else name.group(1)))
    return found


def find_output(name: str) -> Output:
    """An existing output by (part of) its PortAudio name or a sink's name or description."""
    sd = _sounddevice()
    wanted = name.casefold()
    for whole in (True, False):
        for sink, description in _sinks():
            keys = (sink.casefold(), description.casefold())
            if any(k == wanted if whole else wanted in k for k in keys):
                return _pulse_route(sd, sink, description)
        for index, label in _outputs(sd):
            if (label.casefold() == wanted) if whole else (wanted in label.casefold()):
                return Output(index, label)
    names = ", ".join(repr(label) for _, label in _outputs(sd)) or "none"
    raise DeviceError(f"No sound output named {name!r}. Available outputs: {names}.")


def find_driver() -> Output | None:
    """An installed virtual cable (VB-CABLE, BlackHole), or None."""
    sd = _sounddevice()
    for driver in DRIVERS:
        for index, label in _outputs(sd):
            if driver.casefold() in label.casefold():
                return Output(index, label)
    return None


# -- the delayed writer ---------------------------------------------------------------------------


class VoiceOut:
    """Plays fed sound into an output, ``delay`` seconds after it was captured; see the module
    docstring. ``feed`` is cheap and never waits; the output has its own callback thread."""

    def __init__(
        self,
        setting: str,
        rate: int = 48_000,
        offset_s: float = 0.0,
        follows_gate: bool = True,
        latency: float = 0.04,
    ) -> None:
        self.setting = setting
        self.rate = rate
        self.offset_s = offset_s
        self.follows_gate = follows_gate
        self.latency = latency
        self.label = ""
        self.warning = ""  # why the voice does not go out, for the user; "" when it does
        self.underflows = 0  # callbacks PortAudio says came too late (it played silence)
        self.underruns = 0  # callbacks that found too little sound (silence was played)
        self._virtual: VirtualMicrophone | None = None
        self._stream: Any = None
        self._ring = np.zeros(int(RING_SECONDS * rate), np.float32)
        self._resampler: tuple[int, StreamingResampler] | None = None  # for fed sound's rate
        self._written = 0  # samples fed so far (the ring holds the newest ones)
        self._origin_ns: int | None = None  # capture time of sample 0
        self._read = 0.0  # the callback's position, in samples since sample 0
        self._playing = False  # the read position has been set
        self._floor = 0.0  # least delay the sound's arrival allows, in samples
        self._error = 0.0  # smoothed distance to the wanted position, in samples
        self._delay = 0.0  # seconds from capture to output, as last played
        self._target: float | None = None
        self._gain = 1.0
        self._gate_open = True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Find or create the output and start playing silence; ``DeviceError`` if it cannot."""
        output = self._output()
        if output is None:
            return
        sd = _sounddevice()
        try:
            with pulse_target("PULSE_SINK", output.pulse_sink):
                stream = sd.OutputStream(
                    device=output.device,
                    samplerate=self.rate,
                    channels=1,
                    dtype="float32",
                    latency=self.latency,
                    callback=self._callback,
                )
            stream.start()
        except Exception as exc:
            self.stop()
            raise DeviceError(
                f"The voice output {output.label!r} cannot be opened ({exc})."
            ) from exc
        self._stream = stream
        self.label = output.label
        log.info("Voice goes out to %r", output.label)

    def stop(self) -> None:
        """Close the stream and remove created devices; idempotent."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:
                log.debug("Closing the voice output failed", exc_info=True)
        virtual, self._virtual = self._virtual, None
        if virtual is not None:
            virtual.close()

    def _output(self) -> Output | None:
        if self.setting != "auto":
            return find_output(self.setting)
        system = _system()
        if system == "Linux":
            self._virtual = VirtualMicrophone()
            return _pulse_route(_sounddevice(), SINK_NAME, DESCRIPTION)
        driver = find_driver()
        if driver is None:
            hint = INSTALL_HINT.get(system, "install a virtual audio cable")
            self.warning = (
                f"No virtual microphone is installed, so the voice is not synced: {hint}."
            )
            log.warning("%s", self.warning)
        return driver

    @property
    def running(self) -> bool:
        return self._stream is not None

    # -- steering (any thread) ---------------------------------------------------------------

    def set_picture_delay(self, seconds: float) -> None:
        """The measured capture-to-picture delay; the voice follows it smoothly (plus offset)."""
        target = max(0.0, seconds + self.offset_s)
        previous = self._target
        self._target = (
            target if previous is None else previous + DELAY_SMOOTHING * (target - previous)
        )

    @property
    def target_delay(self) -> float | None:
        """Seconds from capture to output the writer aims for (None before a measurement)."""
        return self._target

    @property
    def least_delay(self) -> float:
        """Seconds the sound's arrival and the output buffer take: the delay cannot be less."""
        return self._floor / self.rate + MARGIN_S

    @property
    def delay(self) -> float:
        """Seconds from capture to output now (moves toward ``target_delay``)."""
        return self._delay

    def set_gate(self, is_open: bool) -> None:
        """Push-to-talk and mute: the voice follows them unless ``follows_gate`` is off."""
        self._gate_open = is_open or not self.follows_gate

    # -- the feeding thread ------------------------------------------------------------------

    def feed(self, chunk: AudioChunk) -> None:
        """Sound captured at ``chunk.pts_ns``; placed by capture time (gaps become silence).

        Any rate and channels: channels are averaged, and another rate than the output's is
        resampled (the output runs at the microphone's own rate, so its sound goes out as it
        came, not at the 16 kHz the lip-sync model hears; a microphone swapped while live may
        bring another rate)."""
        samples = np.asarray(chunk.samples, np.float32)
        if samples.ndim == 2:
            samples = samples.mean(axis=1)
        if chunk.rate != self.rate:
            if self._resampler is None or self._resampler[0] != chunk.rate:
                self._resampler = (chunk.rate, StreamingResampler(chunk.rate, self.rate))
            # The output lines up with the input from its first sample on (it only comes out
            # the filter's half length later), so the capture times still hold.
            samples = self._resampler[1].process(samples)
        if self._origin_ns is None:
            self._origin_ns = chunk.pts_ns
        position = round((chunk.pts_ns - self._origin_ns) * self.rate / 1e9)
        if position > self._written + self.rate // 50:  # a gap of more than 20 ms: silence
            self._put(np.zeros(position - self._written, np.float32))
        elif position < self._written - self.rate // 20:  # sound for time already covered
            samples = samples[min(samples.size, self._written - position) :]
        gain = 1.0 if self._gate_open else 0.0
        if gain != self._gain and samples.size:  # fade over GATE_RAMP_S: no click
            ramp = np.clip(np.arange(1, samples.size + 1) / (GATE_RAMP_S * self.rate), 0, 1)
            gains = self._gain + (gain - self._gain) * ramp
            samples = samples * gains.astype(np.float32)
            self._gain = float(gains[-1])
        elif gain == 0.0:
            samples = np.zeros_like(samples)
        self._put(samples)

    def _put(self, samples: np.ndarray) -> None:
        size = len(self._ring)
        samples = samples[-size:]
        start = self._written % size
        first = min(size - start, samples.size)
        self._ring[start : start + first] = samples[:first]
        self._ring[: samples.size - first] = samples[first:]
        self._written += samples.size  # after the copy: the callback reads only below it

    # -- PortAudio's callback ----------------------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """Resample the ring at 1 +/- 0.5 % speed toward the target position. Never blocks."""
        now_ns = _now_ns()
        if status and status.output_underflow:
            self.underflows += 1
        origin, target = self._origin_ns, self._target
        if origin is None or target is None:
            outdata.fill(0)
            return
        try:
            ahead = float(time_info.outputBufferDacTime) - float(time_info.currentTime)
        except (AttributeError, TypeError, ValueError):
            ahead = 0.0
        if not 0.0 <= ahead < 1.0:
            ahead = self.latency
        heard_ns = now_ns + ahead * 1e9  # when the first sample of this buffer is heard
        heard = (heard_ns - origin) * self.rate / 1e9  # ... as a position in the fed sound
        # The voice cannot come out sooner than the sound arrives plus this buffer: hold the
        # recent peak of that (decaying 10 ms per second) as the least delay, plus a margin.
        written = self._written
        self._floor = max(heard - written + frames, self._floor - frames * FLOOR_DECAY)
        wanted = heard - max(target * self.rate, self._floor + MARGIN_S * self.rate)
        error = wanted - self._read
        if not self._playing or abs(error) > RESYNC_S * self.rate:  # start, or a stall
            self._playing = True
            self._read, error = wanted, 0.0
        # The clock readings jitter by a millisecond or two: steer by a smoothed error, closing
        # it with a time constant of about a second (the speed change is then inaudible).
        self._error += 0.1 * (error - self._error)
        speed = 1.0 + float(np.clip(self._error / self.rate, -MAX_SPEED_CHANGE, MAX_SPEED_CHANGE))
        positions = self._read + np.arange(frames) * speed
        self._read += frames * speed
        self._delay = (heard_ns - origin) / 1e9 - positions[0] / self.rate
        size = len(self._ring)
        index = np.floor(positions).astype(np.int64)
        fraction = (positions - index).astype(np.float32)
        valid = (index >= max(0, written - size + 1)) & (index + 1 < written)
        if not valid.all():
            self.underruns += int(index[-1] + 1 >= written)
        a = self._ring[index % size]
        b = self._ring[(index + 1) % size]
        outdata[:, 0] = np.where(valid, a + (b - a) * fraction, 0.0)
