"""mediapipe's FaceLandmarker task, as still images (``landmarker``) and video (``tracker``) use
it: created without native log chatter, and closed before the interpreter stops mediapipe's
worker threads."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from typing import Any, Literal, Protocol

from engines.face.model_file import face_landmarker_path

log = logging.getLogger(__name__)

# Routine absl/TFLite lines: "W0000 00:00:...", "I0000 ...", "INFO: Created TensorFlow Lite ...".
_NATIVE_NOISE = re.compile(r"^(?:[IW]\d{4} |INFO: |WARNING: Logging before InitGoogle)")


class Closable(Protocol):
    def close(self) -> None: ...


def create_face_landmarker(mode: Literal["IMAGE", "VIDEO"], max_faces: int) -> Any:
    """A FaceLandmarker task with blendshapes and transformation matrices, in ``mode``."""
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
        running_mode=getattr(vision.RunningMode, mode),
        num_faces=max_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    with quiet_native_stderr():
        return vision.FaceLandmarker.create_from_options(options)


_open_owners: weakref.WeakSet[Closable] = weakref.WeakSet()
_exit_hook_registered = False


def close_at_exit(owner: Closable) -> None:
    """Call ``owner.close()`` at interpreter exit if it is still alive then.

    mediapipe runs every native call on a ThreadPoolExecutor thread, which concurrent.futures
    stops in threading's exit hooks; after that a task can no longer be closed and its
    ``__del__`` prints a TypeError while the interpreter tears down. A plain ``atexit`` hook
    runs too late, so this uses the hook list concurrent.futures itself uses (last registered
    runs first; mediapipe has imported concurrent.futures by the time a task exists).
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        register = getattr(threading, "_register_atexit", None)
        if register is None:  # not CPython >= 3.9: the best remaining option
            import atexit

            register = atexit.register
        register(_close_open_owners)
        _exit_hook_registered = True
    _open_owners.add(owner)


def _close_open_owners() -> None:
    for owner in list(_open_owners):
        owner.close()


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 while the block runs.

    mediapipe's C++ core logs through absl, which ignores ``GLOG_minloglevel`` and offers no
    switch from Python, and prints half a dozen info/warning lines whenever a landmarker is
    created. Those lines go to this module's debug log; any other line (an error, say) is
    written back to stderr. With debug logging enabled nothing is held back.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a windowed app): nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured = sink.read().decode(errors="replace")
    for line in captured.splitlines():
        if _NATIVE_NOISE.match(line):
            log.debug("mediapipe: %s", line)
        elif line.strip():
            print(line, file=sys.stderr)
