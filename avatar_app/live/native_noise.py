"""Keeps the sound libraries' native chatter out of the terminal while a microphone is open.

When a device vanishes or refuses to open, ALSA's plugins and PortAudio's ALSA back end print
dozens of lines ("ALSA lib pcm_pulse.c:...", "Expression '...' failed in 'src/hostapi/alsa/
pa_linux_alsa.c'"), some on PortAudio's own thread, long after any call of ours returned. Both
write through C's ``stderr`` stream, never to Python's ``sys.stderr``. So while ``hold`` is in
effect that one stream points at a pipe whose lines are logged at DEBUG (``-v`` shows them);
file descriptor 2, and so Python's warnings, status lines and tracebacks, stay untouched.
sounddevice swaps the same pointer while PortAudio starts; ALSA's ``snd_lib_error_set_handler``
alone would leave PortAudio's lines. Linux only; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

_IOLBF = 1  # glibc's setvbuf mode: line buffered

_lock = threading.Lock()
_holders = 0
_original: int | None = None  # C's own stderr FILE*, while diverted
_pipe_file: int | None = None  # the FILE* writing into the pipe; never closed (see _divert)


def hold() -> None:
    """Divert C's ``stderr`` to the debug log until as many ``release`` calls as ``hold``s."""
    global _holders
    with _lock:
        if _holders == 0:
            _divert()
        _holders += 1


def release() -> None:
    """Undo one ``hold``; C's ``stderr`` is restored when none is left."""
    global _holders
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0:
            _restore()


def _stderr_pointer() -> ctypes.c_void_p | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.c_void_p.in_dll(ctypes.CDLL(None), "stderr")
    except (OSError, ValueError):
        return None


def _divert() -> None:
    global _original, _pipe_file
    pointer = _stderr_pointer()
    if pointer is None:
        return
    if _pipe_file is None:
        # Opened once and kept: a native thread may still be writing to it after a release,
        # so closing it could free a FILE in use.
        libc = ctypes.CDLL(None)
        libc.fdopen.restype = ctypes.c_void_p
        libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
        libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
        reader, writer = os.pipe()
        stream = libc.fdopen(writer, b"w")
        if not stream:
            os.close(reader)
            os.close(writer)
            log.debug("Cannot open a stream to quieten native messages; they go to stderr")
            return
        libc.setvbuf(stream, None, _IOLBF, 0)
        threading.Thread(target=_log_lines, args=(reader,), name="native-log", daemon=True).start()
        _pipe_file = stream
    _original = pointer.value
    pointer.value = _pipe_file


def _restore() -> None:
    global _original
    pointer = _stderr_pointer()
    if pointer is not None and _original is not None:
        pointer.value = _original
    _original = None


def _log_lines(reader: int) -> None:
    """Log every non-empty line from the pipe at DEBUG, for the life of the process."""
    with os.fdopen(reader, "rb") as pipe:
        for raw in pipe:
            line = raw.decode(errors="replace").strip()
            if line:
                log.debug("native: %s", line)
