"""Linux system libraries the window needs and neither the wheels nor the bundle carry.

Without them Qt aborts with a long plugin message (or mediapipe with an OSError), so the
launcher checks first and names the packages to install. Importing this never imports Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

# soname -> Debian/Ubuntu package. Qt's GUI itself, OpenGL (PyInstaller never bundles the GL
# family, which must match the system's drivers) and mediapipe's GLES.
COMMON = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLESv2.so.2": "libgles2",
    "libfontconfig.so.1": "libfontconfig1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libdbus-1.so.3": "libdbus-1-3",
}
# Qt's X11 (xcb) platform plugin.
XCB = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def missing_packages() -> list[str]:
    """The Debian packages to install before the window can open here; [] when none."""
    if not sys.platform.startswith("linux"):
        return []
    needed = {**COMMON, **(XCB if _uses_xcb() else {})}
    return [package for soname, package in needed.items() if not _loadable(soname)]


def missing_message(packages: list[str]) -> str:
    return (
        "error: the window needs system libraries that are not installed. On Debian/Ubuntu "
        f"run `sudo apt-get install {' '.join(packages)}`; on other systems install the "
        "packages that provide them."
    )


def _uses_xcb() -> bool:
    """Whether Qt will pick its X11 plugin (the default on Linux unless in a Wayland session)."""
    chosen = os.environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.startswith("xcb")
    wayland = os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


def _loadable(soname: str) -> bool:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and (Path(bundle) / soname).exists():  # carried by the bundle
        return True
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True
