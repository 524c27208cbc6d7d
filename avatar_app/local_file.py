"""Input files are local, regular files: never a web address, a pipe or a device.

FFmpeg opens whatever its protocols understand (``http:``, ``concat:``, ...) and blocks for
ever on a FIFO with no writer; Pillow reads ``/dev/zero`` without end. The loaders check
paths with ``stat_or_none`` first, and hand FFmpeg ``ffmpeg_url(path)``, which only reads a file.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from engines.errors import DeviceError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def stat_or_none(path: Path) -> os.stat_result | None:
    """``path``'s status, or None when nothing usable is there (missing, name too long ...)."""
    try:
        return path.stat()
    except (OSError, ValueError):
        return None


def is_regular(info: os.stat_result) -> bool:
    """Whether ``info`` is of a regular file (not a folder, pipe, socket or device)."""
    return stat.S_ISREG(info.st_mode)


def is_folder(info: os.stat_result) -> bool:
    return stat.S_ISDIR(info.st_mode)


def looks_like_url(path: Path) -> bool:
    """``http://...`` and such, as a user typed it (a Path keeps one slash of the two)."""
    return bool(_URL.match(str(path))) and stat_or_none(path) is None


def ffmpeg_url(path: Path) -> str:
    """``path`` for FFmpeg's file protocol only, so no name is taken for a network address."""
    return "file:" + os.path.abspath(path)


def check_video_file(path: Path) -> None:
    """Raise DeviceError unless ``path`` is a local, regular file (a video, one hopes)."""
    if looks_like_url(path):
        raise DeviceError(
            f"{path} looks like a web address; avatar-app reads only files on this computer. "
            "Download the video first and pick the copy."
        )
    info = stat_or_none(path)
    if info is None:
        raise DeviceError(f"Cannot open the video {path}: it does not exist. Check the path.")
    if not is_regular(info):
        kind = "a folder" if is_folder(info) else "not a regular file (a pipe or a device)"
        raise DeviceError(f"Cannot open the video {path}: it is {kind}. Pick a video file.")
