"""Labelled synthetic speech from Festival: a second TTS family beside espeak-ng.

Festival runs in a subprocess (``festival --batch script.scm``) that synthesises each text,
saves the wave (``utt.save.wave``) and the phone segments (``utt.save.segs``). Festival's
phones (the ``radio`` set of the US voices, ``mrpa`` of British ones) are mapped to ARPAbet.

Needs the Debian packages ``festival`` and voices such as ``festvox-kallpc16k`` (kal_diphone)
and ``festvox-us-slt-hts`` (cmu_us_slt_arctic_hts).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from engines.speech.training.utterance import (
    SAMPLE_RATE,
    PhoneSpan,
    Utterance,
    read_wav_16k,
)

# Festival's "radio" phone set (US voices; "darpa" uses the same names) -> ARPAbet.
_SAME = (
    "aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw "
    "v w y z zh"
)
RADIO_TO_ARPABET: dict[str, str] = {
    **{phone: phone.upper() for phone in _SAME.split()},
    "ax": "AH",  # schwa
    "axr": "ER",  # r-coloured schwa
    "dx": "D",  # flap (butter)
    "el": "L",  # syllabic l (bottle)
    "em": "M",  # syllabic m
    "en": "N",  # syllabic n (button)
    "nx": "N",  # nasal flap (winner)
    "hv": "HH",  # voiced h
    "pau": "SIL",
    "h#": "SIL",
    "brth": "SIL",  # breath
    "sil": "SIL",
}

# Festival's British "mrpa" phone set (rab_diphone, ...) -> nearest ARPAbet.
MRPA_TO_ARPABET: dict[str, str] = {
    "uh": "AH",  # strut
    "e": "EH",
    "a": "AE",
    "o": "AA",  # lot
    "i": "IH",
    "u": "UH",  # foot
    "ii": "IY",
    "uu": "UW",
    "oo": "AO",
    "aa": "AA",
    "@@": "ER",
    "ai": "AY",
    "ei": "EY",
    "oi": "OY",
    "au": "AW",
    "ou": "OW",
    "e@": "EH",  # square
    "i@": "IH",  # near
    "u@": "UH",  # cure
    "@": "AH",
    "h": "HH",
    "#": "SIL",
    **{
        p: p.upper()
        for p in [
            "p",
            "t",
            "k",
            "b",
            "d",
            "g",
            "s",
            "z",
            "sh",
            "zh",
            "f",
            "v",
            "th",
            "dh",
            "ch",
            "jh",
            "m",
            "n",
            "ng",
            "l",
            "y",
            "r",
            "w",
        ]
    },
}

_PHONE_MAPS = {"radio": RADIO_TO_ARPABET, "darpa": RADIO_TO_ARPABET, "mrpa": MRPA_TO_ARPABET}
_ASCII = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
    }
)
_MARK = "AVATAR_FESTIVAL_VOICE"


def _festival() -> str:
    path = shutil.which("festival")
    if path is None:
        raise RuntimeError(
            "festival is not installed: `sudo apt install festival festvox-kallpc16k "
            "festvox-us-slt-hts`"
        )
    return path


def _run(script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
        path = Path(tmp) / "script.scm"
        path.write_text(script, encoding="latin-1")
        return subprocess.run(
            [_festival(), "--batch", str(path)],
            capture_output=True,
            text=True,
            encoding="latin-1",
            timeout=timeout,
            check=False,
        )


@cache
def _voice_phonesets() -> dict[str, str]:
    """Installed voices that synthesise, with the phone set each uses."""
    listed = _run('(format t "%l\\n" (voice.list))\n', timeout=60).stdout
    names = [n for n in listed.strip().strip("()").split() if n.replace("_", "").isalnum()]
    lines = [
        f'(unwind-protect (begin (voice_{name}) (utt.synth (Utterance Text "hello")) '
        f'(format t "{_MARK} {name} %s\\n" (Param.get \'PhoneSet))) nil)'
        for name in names
    ]
    out = _run("\n".join(lines) + "\n", timeout=120).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == _MARK and parts[2] in _PHONE_MAPS:
            found[parts[1]] = parts[2]
    return found


def festival_voices() -> list[str]:
    """Names of the installed Festival voices that work (e.g. ``kal_diphone``,
    ``cmu_us_slt_arctic_hts``); empty when Festival is not installed."""
    if shutil.which("festival") is None:
        return []
    return sorted(_voice_phonesets())


def _scheme_string(text: str) -> str:
    """``text`` as a Scheme string literal (ASCII; quotes and backslashes escaped)."""
    ascii_text = unicodedata.normalize("NFKD", text.translate(_ASCII))
    ascii_text = ascii_text.encode("ascii", "ignore").decode("ascii")
    ascii_text = " ".join(ascii_text.split())
    return '"' + ascii_text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_text(text: str) -> None:
    # Festival crashes (segfault) on texts with nothing to say, such as "" or ".".
    cleaned = _scheme_string(text)
    if not any(c.isalnum() for c in cleaned):
        raise ValueError(f"nothing to synthesise in {text!r}")


def _read_segs(path: Path, phone_map: dict[str, str], total: float) -> tuple[PhoneSpan, ...]:
    """``utt.save.segs`` output (``#`` then ``end 100 phone`` lines) -> spans covering
    ``total`` seconds."""
    spans: list[PhoneSpan] = []
    start = 0.0
    body = path.read_text(encoding="latin-1").split("#", 1)[-1]
    for line in body.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        end = min(float(parts[0]), total)
        name = parts[2]
        if name not in phone_map:
            raise ValueError(f"Festival phone {name!r} has no ARPAbet mapping")
        phone = phone_map[name]
        if end > start:
            if spans and phone == "SIL" and spans[-1].phone == "SIL":
                spans[-1] = PhoneSpan(spans[-1].start, end, "SIL")
            else:
                spans.append(PhoneSpan(start, end, phone))
            start = end
    if start < total:
        if spans and spans[-1].phone == "SIL":
            spans[-1] = PhoneSpan(spans[-1].start, total, "SIL")
        else:
            spans.append(PhoneSpan(start, total, "SIL"))
    return tuple(spans)


def _script(texts: Sequence[str], voice: str, rate: float, out: Path) -> str:
    lines = [
        f"(voice_{voice})",
        # After the voice: selecting a voice resets Duration_Stretch.
        f"(Parameter.set 'Duration_Stretch {1.0 / rate:.6f})",
        # HTS voices ignore Duration_Stretch; hts_engine takes its speed as "-r".
        "(if (and (symbol-bound? 'hts_engine_params) hts_engine_params) "
        f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.6f})))))',
    ]
    for i, text in enumerate(texts):
        lines += [
            f"(set! utt_ (Utterance Text {_scheme_string(text)}))",
            "(utt.synth utt_)",
            f'(utt.save.wave utt_ "{out / f"{i}.wav"}" \'riff)',
            f'(utt.save.segs utt_ "{out / f"{i}.segs"}")',
        ]
    return "\n".join(lines) + "\n"


def synthesize_many(
    texts: Sequence[str], voice: str, rate: float = 1.0, *, skip_failures: bool = False
) -> list[Utterance]:
    """Synthesise ``texts`` with one Festival process (much faster than one per text).

    ``rate`` > 1 speaks faster. A text that Festival fails on raises ``RuntimeError``, or is
    left out with ``skip_failures`` (the ``text`` field tells which utterance is which).
    """
    phonesets = _voice_phonesets()
    if voice not in phonesets:
        raise ValueError(f"Festival voice {voice!r} not available; have {sorted(phonesets)}")
    if not 0.25 <= rate <= 4.0:
        raise ValueError(f"rate {rate} outside 0.25-4")
    for text in texts:
        _check_text(text)
    phone_map = _PHONE_MAPS[phonesets[voice]]
    results: list[Utterance] = []
    todo = list(texts)
    while todo:
        with tempfile.TemporaryDirectory(prefix="festival-out-") as tmp:
            out = Path(tmp)
            proc = _run(_script(todo, voice, rate, out), timeout=60 + 10 * len(todo))
            done = 0
            for i, text in enumerate(todo):
                wav, segs = out / f"{i}.wav", out / f"{i}.segs"
                if not (wav.exists() and segs.exists()):
                    break
                audio = read_wav_16k(wav)
                phones = _read_segs(segs, phone_map, len(audio) / SAMPLE_RATE)
                if audio.size == 0 or all(p.phone == "SIL" for p in phones):
                    break
                results.append(Utterance(audio, phones, f"festival:{voice}", text))
                done += 1
        if done == len(todo):
            break
        failed = todo[done]
        if not skip_failures:
            tail = " ".join(proc.stderr.split()[-30:])
            raise RuntimeError(
                f"festival ({voice}) failed on {failed!r} (exit {proc.returncode}): {tail}"
            )
        todo = todo[done + 1 :]
    return results


def synthesize(text: str, voice: str, rate: float = 1.0) -> Utterance:
    """Synthesise ``text`` with Festival ``voice``: 16 kHz float32 audio and ARPAbet phone
    spans covering it (``source`` is ``"festival:<voice>"``)."""
    return synthesize_many([text], voice, rate)[0]
