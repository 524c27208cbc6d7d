"""Phone timings for real speech from pocketsphinx's shipped US English model.

``align`` force-aligns audio with a known transcript (word pass, then a phone pass);
``allphone`` recognises phones with the shipped phone language model when there is no
transcript. Both work on 16 kHz mono audio at pocketsphinx's 100 frames per second.

Needs ``pocketsphinx`` (5.x, the ``train`` extra). Decoders are created once per process and
shared behind a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from engines.speech.training.utterance import SAMPLE_RATE, PhoneSpan
from engines.speech.visemes import PHONES

FRAME_RATE = 100
"""pocketsphinx's frames per second (10 ms frames)."""

_FRAME = SAMPLE_RATE // FRAME_RATE
_ARPABET = frozenset(PHONES)
# Filler phones of the acoustic model (silence, noise, breath, ...) all count as silence.
_FILLERS = frozenset({"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+NOISE+", "+UM+", "+UH+"})
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_LOCK = threading.Lock()


class AlignmentError(RuntimeError):
    """pocketsphinx found no path through the transcript (audio and text do not match)."""


def _pocketsphinx() -> Any:
    try:
        import pocketsphinx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "pocketsphinx is not installed: `pip install 'pocketsphinx>=5,<6'` (train extra)"
        ) from error
    return pocketsphinx


@cache
def _align_decoder() -> Any:
    ps = _pocketsphinx()
    # No lattice best-path rescoring: with it the phone pass fails ("Alignment failed in
    # frame N") on about one prompt in 25. Default beams: much wider ones fail more often.
    return ps.Decoder(lm=None, bestpath=False, loglevel="FATAL")


@cache
def _allphone_decoder(lw: float) -> Any:
    ps = _pocketsphinx()
    phone_lm = ps.get_model_path("en-us/en-us-phone.lm.bin")
    return ps.Decoder(allphone=phone_lm, lw=lw, loglevel="FATAL")


def _pcm(audio16k: np.ndarray) -> bytes:
    audio = np.asarray(audio16k, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {audio.shape}")
    if audio.size < _FRAME * 10:
        raise ValueError("audio is shorter than 100 ms")
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _decode(decoder: Any, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def transcript_words(text: str) -> list[str]:
    """Lower-case words of ``text`` as the dictionary spells them (punctuation dropped,
    inner apostrophes kept: ``"Don't stop!"`` -> ``["don't", "stop"]``)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def add_words(pronunciations: Mapping[str, str]) -> None:
    """Add words (lower case) with ARPAbet pronunciations (``"AH N M Y UW T"``) to the
    dictionary that ``align`` uses; words it already has are left alone."""
    decoder = _align_decoder()
    with _LOCK:
        new = {w: p for w, p in pronunciations.items() if decoder.lookup_word(w) is None}
        for i, (word, phones) in enumerate(new.items()):
            bad = [p for p in phones.split() if p not in _ARPABET or p == "SIL"]
            if bad:
                raise ValueError(f"{word!r}: not ARPAbet phones: {bad}")
            decoder.add_word(word, phones, i == len(new) - 1)


def missing_words(text: str) -> list[str]:
    """Words of ``text`` that the shipped dictionary lacks (``align`` refuses those)."""
    decoder = _align_decoder()
    with _LOCK:
        return [w for w in transcript_words(text) if decoder.lookup_word(w) is None]


def _base_word(word: str) -> str:
    """``"read(2)"`` (an alternative pronunciation) -> ``"read"``."""
    return word.split("(", 1)[0]


def _to_phone(name: str) -> str:
    if name in _FILLERS or name.startswith("+"):
        return "SIL"
    if name not in _ARPABET:
        raise ValueError(f"pocketsphinx returned an unknown phone {name!r}")
    return name


def _spans(frames: Iterable[tuple[int, int, str]], n_samples: int) -> tuple[PhoneSpan, ...]:
    """(start frame, end frame exclusive, phone) -> contiguous spans covering the audio."""
    total = n_samples / SAMPLE_RATE
    out: list[PhoneSpan] = []
    t = 0.0
    for start_frame, end_frame, phone in sorted(frames):
        start = min(max(start_frame / FRAME_RATE, t), total)
        end = min(end_frame / FRAME_RATE, total)
        if start > t:
            out.append(PhoneSpan(t, start, "SIL"))
        if end > start:
            out.append(PhoneSpan(start, end, phone))
            t = end
        else:
            t = start
    if t < total:
        out.append(PhoneSpan(t, total, "SIL"))
    return merge_silences(out)


def merge_silences(spans: Sequence[PhoneSpan]) -> tuple[PhoneSpan, ...]:
    """Join runs of adjacent ``SIL`` spans into one."""
    merged: list[PhoneSpan] = []
    for span in spans:
        if merged and span.phone == "SIL" and merged[-1].phone == "SIL":
            merged[-1] = PhoneSpan(merged[-1].start, span.end, "SIL")
        else:
            merged.append(span)
    return tuple(merged)


def _align_pass(decoder: Any, pcm: bytes, padded: list[str], words: list[str]) -> Any:
    """Word pass then phone pass; returns pocketsphinx's ``Alignment``."""
    decoder.set_align_text(" ".join(padded))
    _decode(decoder, pcm)
    segments = decoder.seg() if decoder.hyp() is not None else None
    aligned = [_base_word(s.word) for s in segments or () if _base_word(s.word) in words]
    if aligned != words:
        # The word pass may skip words and align silence only: that is a failure.
        raise AlignmentError("no word alignment")
    decoder.set_alignment()
    _decode(decoder, pcm)
    alignment = decoder.get_alignment()
    if alignment is None:
        raise AlignmentError("no phone alignment")
    return alignment


def align(audio16k: np.ndarray, text: str) -> tuple[PhoneSpan, ...]:
    """Force-align ``text`` to ``audio16k`` (float32 mono 16 kHz) and return phone spans.

    Spans are ARPAbet without stress, ``SIL`` for silences and noises, contiguous from 0 to the
    end of the audio, with 10 ms resolution. Raises ``ValueError`` naming the words missing from
    the dictionary, ``AlignmentError`` when no alignment is found.
    """
    words = transcript_words(text)
    if not words:
        raise ValueError(f"no words to align in {text!r}")
    pcm = _pcm(audio16k)
    decoder = _align_decoder()
    with _LOCK:
        missing = [w for w in words if decoder.lookup_word(w) is None]
        if missing:
            raise ValueError(f"words not in the pocketsphinx dictionary: {', '.join(missing)}")
        alignment = None
        failure: Exception | None = None
        # Silence words at both ends: without them the aligner starts the first phone at frame
        # 0 and stretches the last one to the end. Retried without them if that fails.
        for padded in (["<sil>", *words, "<sil>"], words):
            try:
                alignment = _align_pass(decoder, pcm, padded, words)
                break
            except RuntimeError as error:  # includes "Failed to stop utterance processing"
                failure = error
        if alignment is None:
            raise AlignmentError(f"alignment failed for {text!r}: {failure}")
        frames = [
            (p.start, p.start + p.duration, _to_phone(p.name))
            for p in alignment.phones()
            if p.duration > 0
        ]
    if not frames:
        raise AlignmentError(f"empty phone alignment for {text!r}")
    return _spans(frames, len(audio16k))


def allphone(audio16k: np.ndarray, lw: float = 2.0) -> tuple[PhoneSpan, ...]:
    """Recognise phones in ``audio16k`` with the shipped phone LM (no transcript needed).

    ``lw`` is the language weight (about 0.8-2 works). The result is a noisy teacher: expect
    substitutions between similar phones (AH/AA, IH/IY, ...).
    """
    pcm = _pcm(audio16k)
    decoder = _allphone_decoder(float(lw))
    with _LOCK:
        _decode(decoder, pcm)
        frames = [(s.start_frame, s.end_frame + 1, _to_phone(s.word)) for s in decoder.seg()]
    return _spans(frames, len(audio16k))
