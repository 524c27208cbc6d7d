"""Device and engine lists for the pickers, and the doctor's virtual-camera advice: slow
probes the window runs on a worker thread (no Qt here)."""

from __future__ import annotations

from typing import Any

from engines.errors import AvatarError


def probe_devices() -> dict[str, list[tuple[str, Any, str]]]:
    """Microphones and webcams by the names users know, and engines, off the GUI thread."""
    from avatar_app.live.audio_source import microphones
    from avatar_app.live.devices import cameras
    from engines.renderer import renderer_names, unavailable_reason

    try:
        mics = [
            (m.label + (" (monitor)" if m.is_monitor else ""), m.device, m.device)
            for m in microphones()
        ]
    except AvatarError:
        mics = []
    webcams = [(c.label, c.device, c.device) for c in cameras() if not c.is_virtual]
    engines = []
    for name in renderer_names():
        reason = unavailable_reason(name)
        engines.append((name if reason is None else f"{name} (unavailable)", name, reason or ""))
    return {"microphones": mics, "webcams": webcams, "engines": engines}


def virtual_camera_advice() -> str:
    """The doctor's failing virtual-camera checks with their fixes; "" when all pass."""
    from avatar_app.live.doctor import run_checks

    lines = []
    for check in run_checks():
        if not check.ok and (
            "camera" in check.name or "group" in check.name or "caps" in check.name
        ):
            lines.append(f"• {check.name}: {check.detail}")
            if check.fix:
                lines.append(f"   Fix: {check.fix}")
    return "\n".join(lines)
