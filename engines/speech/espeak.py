"""Speech synthesis with espeak-ng's C library, with the time of every phoneme.

The library comes from the ``espeakng-loader`` wheel when it is installed, else from the
system (Debian ``libespeak-ng1``). Phoneme times are only available through the C API's
phoneme events, so this talks to the library through ctypes rather than running the
``espeak-ng`` program. espeak-ng keeps global state: all calls go through one lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import EngineUnavailable

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4

INSTALL_HINT = "Install it with `pip install espeakng-loader` or `sudo apt install libespeak-ng1`."


class _EventId(ctypes.Union):
    _fields_ = (
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    )


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Phoneme:
    """``ipa`` starts at ``start`` seconds from the beginning of the audio."""

    start: float
    ipa: str


@dataclass(frozen=True)
class Speech:
    """Mono int16-range float32 audio in [-1, 1] at ``rate`` Hz and the phonemes spoken."""

    audio: np.ndarray
    rate: int
    phonemes: tuple[Phoneme, ...]


class _Library:
    def __init__(self) -> None:
        self.lib, data_path = _load()
        self.lock = threading.Lock()
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        )
        path = data_path.encode() if data_path else None
        self.rate = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, path, options))
        if self.rate <= 0:
            raise EngineUnavailable(f"espeak-ng did not start (code {self.rate}). {INSTALL_HINT}")
        self.lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        self.lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        self.lib.espeak_Synth.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        self.lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[Phoneme] = []
        self._callback = _SynthCallback(self._on_audio)  # kept alive: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        if count > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                ipa = event.id.string.decode("utf-8", errors="ignore")
                self._phonemes.append(Phoneme(event.audio_position / 1000.0, ipa))
            i += 1
        return 0

    def speak(self, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> Speech:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}; try 'en-us' or 'en'.")
            self.lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            self.lib.espeak_SetParameter(_PARAM_RANGE, int(pitch_range), 0)
            self._chunks, self._phonemes = [], []
            data = text.encode("utf-8") + b"\0"
            self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            chunks, phonemes = self._chunks, self._phonemes
            self._chunks, self._phonemes = [], []
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        audio = pcm.astype(np.float32) / 32768.0
        return Speech(audio, self.rate, tuple(phonemes))


def _load() -> tuple[ctypes.CDLL, str | None]:
    try:
        import espeakng_loader

        return ctypes.CDLL(espeakng_loader.get_library_path()), espeakng_loader.get_data_path()
    except (ImportError, OSError, RuntimeError):
        pass
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name), None
    except OSError as exc:
        raise EngineUnavailable(f"espeak-ng is not installed. {INSTALL_HINT}") from exc


@cache
def _library() -> _Library:
    return _Library()


def speak(
    text: str, voice: str = "en-us", rate_wpm: int = 165, pitch: int = 50, pitch_range: int = 50
) -> Speech:
    """Synthesise ``text``; ``pitch`` and ``pitch_range`` are espeak's 0-100 scales."""
    if not text.strip():
        raise ValueError("Nothing to say: the text is empty.")
    return _library().speak(text, voice, rate_wpm, pitch, pitch_range)


def available() -> bool:
    """Whether the espeak-ng library can be loaded here."""
    try:
        _library()
    except EngineUnavailable:
        return False
    return True


def voice_variants() -> list[str]:
    """Names of the voice variants (``f3``, ``m2``, ...) that ship with the library's data."""
    try:
        import espeakng_loader

        folder = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    except (ImportError, RuntimeError):
        folder = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v")
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
