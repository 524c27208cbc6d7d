"""``avatar-app devices``: microphones, cameras and virtual-camera back ends, by name."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

from avatar_app.live.doctor import LOOPBACK_MARKERS
from engines.errors import AvatarError

V4L2_SYSFS = Path("/sys/class/video4linux")


@dataclass(frozen=True)
class Camera:
    """One entry of a camera picker."""

    label: str
    """What to show: the name Linux gives the device, e.g. "Integrated Camera"."""
    device: str
    """What to pass as ``CameraSource(device=...)``: its path, e.g. ``/dev/video0``."""
    is_virtual: bool = False
    """A loopback device (another program's output, such as our own virtual camera)."""


def cameras() -> list[Camera]:
    """Linux video devices in device-number order ([] elsewhere: OpenCV cannot name them)."""
    if platform.system() != "Linux":
        return []
    found = []
    for node in V4L2_SYSFS.glob("video*"):
        number = re.fullmatch(r"video(\d+)", node.name)
        if number is None:
            continue
        try:
            label = (node / "name").read_text().strip()
        except OSError:
            continue
        virtual = any(marker in label.lower() for marker in LOOPBACK_MARKERS)
        found.append((int(number.group(1)), Camera(label, f"/dev/{node.name}", virtual)))
    return [camera for _, camera in sorted(found, key=lambda pair: pair[0])]


def list_cameras() -> list[str]:
    """Video devices as "label (/dev/videoN)"; loopback (virtual) ones are marked."""
    return [f"{c.label} ({c.device}){' [virtual]' if c.is_virtual else ''}" for c in cameras()]


def device_report() -> str:
    """Every device the live session can use, one section each."""
    from avatar_app.live.audio_source import microphones
    from avatar_app.live.virtual_camera import virtual_camera_backends

    try:
        mics = [
            f"{m.label}{' (default)' if m.is_default else ''}{' [monitor]' if m.is_monitor else ''}"
            for m in microphones()
        ]
    except AvatarError as exc:
        mics = [f"(none: {exc})"]
    sections = {
        "Microphones (--mic NAME)": mics,
        "Cameras (--webcam NAME)": list_cameras()
        or ["(none found)" if platform.system() == "Linux" else "(listed when live starts)"],
        "Virtual-camera back ends": virtual_camera_backends(),
    }
    lines = []
    for title, names in sections.items():
        lines.append(f"{title}:")
        lines += [f"  {name}" for name in names or ["(none)"]]
    return "\n".join(lines)
