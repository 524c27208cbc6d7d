"""mediapipe's FaceLandmarker task, as still images (``landmarker``) and video (``tracker``) use
it: created without native log chatter or usage reports to Google, and closed before the
interpreter stops mediapipe's worker threads."""

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


# A proxy whose scheme libcurl does not support: a request through it fails before any lookup
# or connection is made.
TELEMETRY_PROXY = "unsupported://mediapipe-usage-logging-is-off"


def create_face_landmarker(mode: Literal["IMAGE", "VIDEO"], max_faces: int) -> Any:
    """A FaceLandmarker task with blendshapes and transformation matrices, in ``mode``."""
    block_usage_logging()
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


def block_usage_logging() -> None:
    """Keep mediapipe's built-in usage logger from sending anything to Google.

    mediapipe's PyPI builds since about 0.10.30 link Google's "clearcut" usage logger into
    ``libmediapipe.so`` (google-ai-edge/mediapipe#6291; the open-source tree only has a dummy
    logger). It reports every task session to ``https://play.googleapis.com/log``: when a task
    is closed and about once a minute while one runs. mediapipe offers no switch for it; the
    ``BaseOptions`` fields it is given (host system, Python version, CA bundle) only fill the
    report. The upload goes through the libcurl linked into the library, which takes its
    proxy from the environment at each request, so pointing ``https_proxy`` at a scheme curl
    does not support makes every upload fail before a DNS lookup or a connection
    (tests/test_no_network.py watches for both). ``no_proxy`` is removed so it cannot exempt
    the host.

    The variables stay set for the rest of the process (the logger runs on its own thread
    until the process ends) and reach child processes; ``avatar-app models fetch`` runs in a
    process that never calls this, and programs that are not ours (a file manager) are
    started with ``environment_for_other_programs``.
    """
    for name in _PROXY_VARIABLES:
        if name not in _users_proxy:
            _users_proxy[name] = os.environ.get(name)
    for name in ("no_proxy", "NO_PROXY"):
        os.environ.pop(name, None)
    for name in ("https_proxy", "HTTPS_PROXY"):
        os.environ[name] = TELEMETRY_PROXY


_PROXY_VARIABLES = ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY")
_users_proxy: dict[str, str | None] = {}  # as they were before ``block_usage_logging``


def environment_for_other_programs() -> dict[str, str]:
    """This process's environment with the user's own proxy settings: for programs it starts
    that are not its own (a file manager, a browser), which must reach the network as usual."""
    environment = dict(os.environ)
    for name, value in _users_proxy.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


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
