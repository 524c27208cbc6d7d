"""Output files of the offline commands: checked before any slow work, written all or nothing.

``check_output`` refuses, up front, a path that would fail only after minutes of rendering or
would destroy an input (the output *is* the sound file or the photo). ``atomic_output`` hands
out a hidden temporary name in the same folder and renames it onto the final name once the
file is complete; a failure or Ctrl-C removes it. A half-written render is of no use to anyone
(unlike a live recording, which is kept playable under its own name by the recorder), so it
is deleted rather than left as a ``.partial`` file to clean up by hand.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.errors import AvatarError

VIDEO_SUFFIXES = (".mp4",)
"""Every video we write is H.264 + AAC in MP4; another extension would mislabel it."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
PARTIAL_STEM_CHARS = 64
"""The temporary name keeps at most this much of the final one, so it is never longer."""


class OutputFileError(AvatarError):
    """An output path that cannot or must not be written."""


def check_output(
    path: Path, inputs: Iterable[Path | None] = (), suffixes: tuple[str, ...] = VIDEO_SUFFIXES
) -> None:
    """Raise OutputFileError unless ``path`` can be written and is none of ``inputs``."""
    for source in inputs:
        if source is not None and _same_file(path, source):
            raise OutputFileError(
                f"The output {path} is also an input ({source}); writing it would destroy the "
                f"input. Choose another output name, e.g. {_suggested(path, suffixes)}."
            )
    _check_suffix(path, suffixes)
    _check_name(path)
    _check_destination(path)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    On any exception, KeyboardInterrupt included, the temporary file is removed and nothing
    appears under ``path`` (an older file there is left as it was).
    """
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputFileError(
            f"Cannot write {path} ({exc.strerror or exc}). Check the folder and the free "
            "space, or choose another output path."
        ) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def partial_path(path: Path) -> Path:
    """The hidden name ``path`` is written under until it is complete."""
    stem = path.stem[:PARTIAL_STEM_CHARS]
    return path.with_name(f".{stem}.partial-{os.getpid()}{path.suffix}")


def _check_suffix(path: Path, suffixes: tuple[str, ...]) -> None:
    if path.suffix.lower() not in suffixes:
        kinds = ", ".join(suffixes)
        raise OutputFileError(
            f"The output {path} must end in {kinds}: the kind of file written here, which "
            f"the name should not hide. Use e.g. {(path.stem or 'output') + suffixes[0]}."
        )


def _check_name(path: Path) -> None:
    """Fail now on a name the file system refuses (too long, say), not after the render."""
    try:
        path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise OutputFileError(
                f"The output name {path} is too long for the file system. Choose a shorter one."
            ) from exc
        if exc.errno not in (errno.ENOTDIR, errno.EACCES):
            raise OutputFileError(
                f"Cannot use the output path {path} ({exc.strerror}). Choose another one."
            ) from exc


def _same_file(output: Path, source: Path) -> bool:
    try:
        return os.path.samefile(output, source)
    except (OSError, ValueError):
        try:
            return output.resolve() == source.resolve()
        except (OSError, RuntimeError):
            return False


def _check_destination(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise OutputFileError(
            f"Cannot write {path}: the folder {folder} does not exist. Create it first, or "
            "choose another output path."
        )
    if path.is_dir():
        raise OutputFileError(f"Cannot write {path}: it is a folder. Add a file name to it.")
    if path.exists() and not path.is_file():
        raise OutputFileError(
            f"Cannot write {path}: it is not a regular file (a device or a pipe). Choose a "
            "file name."
        )
    partial = partial_path(path)
    try:  # the one sure test of a folder (permissions, read-only disks, /proc ...)
        partial.touch()
        partial.unlink()
    except OSError as exc:
        raise OutputFileError(
            f"Cannot write in {folder} ({exc.strerror or exc}). Choose a folder you can write "
            "to, e.g. your home folder."
        ) from exc


def _suggested(path: Path, suffixes: tuple[str, ...]) -> str:
    stem = path.stem[:PARTIAL_STEM_CHARS] or "output"
    suffix = path.suffix if path.suffix.lower() in suffixes else suffixes[0]
    return f"{stem}-avatar{suffix}"
