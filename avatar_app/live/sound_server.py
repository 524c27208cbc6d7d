"""The input sources of a Linux sound server: PulseAudio, or PipeWire through pipewire-pulse.

PortAudio reaches these servers only through ALSA's ``pulse`` device, which records the
server's default source; the sources themselves ("Blue Yeti Analog Stereo") are listed here.

The listing runs ``pactl`` (Debian/Ubuntu: pulseaudio-utils) in a child process: it works the
same against PulseAudio and pipewire-pulse, needs no Python package, and a server that does not
answer cannot hang the caller, because the child is killed at the timeout. Its text output is
parsed, in the C locale so the labels are English: ``pactl --format=json`` exists only from
PulseAudio 16, and 16.1's writes "(null)" for any description that is not plain ASCII.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2.0
"""How long listing may take in all; a server that answers later is treated as absent."""


@dataclass(frozen=True)
class SoundSource:
    """One input of the sound server."""

    name: str
    """The server's name for it, e.g. ``alsa_input.usb-Blue_Yeti-00.analog-stereo``."""
    description: str
    """What people call it, e.g. "Blue Yeti Analog Stereo"."""
    is_default: bool = False
    is_monitor: bool = False
    """It records what an output plays (rarely what a user wants as a microphone)."""
    alsa_card: int | None = None
    """The ALSA card the server records it from, if any (its ``hw:N`` is then busy)."""
    rate: int | None = None
    """Its sample rate (``Sample Specification``), if listed."""
    channels: int | None = None
    """Its channel count, if listed."""


def list_sources(timeout: float = TIMEOUT_SECONDS) -> list[SoundSource]:
    """The sound server's inputs: the default first, monitors last; [] where there is no server
    (or no ``pactl``, or not Linux)."""
    if platform.system() != "Linux" or shutil.which("pactl") is None:
        return []
    deadline = time.monotonic() + timeout
    info = _pactl(["info"], deadline)
    listing = _pactl(["list", "sources"], deadline) if info is not None else None
    if info is None or listing is None:
        return []
    default = re.search(r"^Default Source: (.*)$", info, re.MULTILINE)
    sources = parse_sources(listing, default.group(1).strip() if default else "")
    return sorted(sources, key=lambda s: (not s.is_default, s.is_monitor))


def parse_sources(text: str, default: str = "") -> list[SoundSource]:
    """The sources in ``LC_ALL=C pactl list sources`` output, in its order."""
    sources = []
    for block in re.split(r"^Source #\d+[ \t]*$", text, flags=re.MULTILINE)[1:]:
        fields = dict(re.findall(r"^\t([A-Za-z][A-Za-z ]*): ?(.*)$", block, re.MULTILINE))
        properties = dict(re.findall(r'^\t\t([\w.-]+) = "(.*)"$', block, re.MULTILINE))
        name = fields.get("Name", "").strip()
        if not name:
            continue
        card = properties.get("alsa.card") or properties.get("api.alsa.card") or ""
        spec = re.search(r"(\d+)ch (\d+)Hz", fields.get("Sample Specification", ""))
        sources.append(
            SoundSource(
                name=name,
                description=fields.get("Description", "").strip() or name,
                is_default=name == default,
                is_monitor=fields.get("Monitor of Sink", "n/a").strip() not in ("", "n/a")
                or properties.get("device.class") == "monitor",
                alsa_card=int(card) if card.isdigit() else None,
                rate=int(spec.group(2)) if spec else None,
                channels=int(spec.group(1)) if spec else None,
            )
        )
    return sources


def _pactl(args: list[str], deadline: float) -> str | None:
    """``pactl ARGS``'s output, or None if it failed or did not finish by ``deadline``."""
    env = {**os.environ, "LC_ALL": "C"}
    env.pop("LANGUAGE", None)  # would translate the labels despite LC_ALL (outside C)
    try:
        done = subprocess.run(
            ["pactl", *args],
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=max(0.05, deadline - time.monotonic()),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("pactl %s: %s", " ".join(args), exc)
        return None
    if done.returncode != 0:
        log.debug("pactl %s: %s", " ".join(args), done.stderr.decode(errors="replace").strip())
        return None
    return done.stdout.decode("utf-8", errors="replace")


_environment_lock = threading.Lock()


@contextmanager
def pulse_target(variable: str, name: str | None) -> Iterator[None]:
    """``variable=name`` (``PULSE_SOURCE`` or ``PULSE_SINK``) while a stream opens: ALSA's
    pulse plugin connects when PortAudio opens the device, and libpulse then uses that source
    or sink instead of the default. One lock for both, as the environment is shared."""
    if name is None:
        yield
        return
    with _environment_lock:
        saved = os.environ.get(variable)
        os.environ[variable] = name
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = saved
