"""``avatar-app devices``: microphones, cameras and virtual-camera back ends, by name."""

from __future__ import annotations

import platform
from pathlib import Path

from avatar_app.live.doctor import LOOPBACK_MARKERS
from engines.errors import AvatarError


def list_cameras() -> list[str]:
    """Video devices as "label (/dev/videoN)"; loopback (virtual) ones are marked."""
    if platform.system() != "Linux":
        return []
    cameras = []
    for node in sorted(Path("/sys/class/video4linux").glob("video*")):
        try:
            label = (node / "name").read_text().strip()
        except OSError:
            continue
        virtual = any(marker in label.lower() for marker in LOOPBACK_MARKERS)
        cameras.append(f"{label} (/dev/{node.name}){' [virtual]' if virtual else ''}")
    return cameras


def device_report() -> str:
    """Every device the live session can use, one section each."""
    from avatar_app.live.audio_source import list_microphones
    from avatar_app.live.virtual_camera import virtual_camera_backends

    try:
        microphones = list_microphones()
    except AvatarError as exc:
        microphones = [f"(none: {exc})"]
    sections = {
        "Microphones (--mic NAME)": microphones,
        "Cameras (--webcam NAME)": list_cameras()
        or ["(none found)" if platform.system() == "Linux" else "(listed when live starts)"],
        "Virtual-camera back ends": virtual_camera_backends(),
    }
    lines = []
    for title, names in sections.items():
        lines.append(f"{title}:")
        lines += [f"  {name}" for name in names or ["(none)"]]
    return "\n".join(lines)
