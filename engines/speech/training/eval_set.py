"""The held-out real-speech evaluation set for ``avatar-app bench lipsync``; a developer step.

    python -m engines.speech.training.eval_set [--out DIR] [--seconds-per-speaker 45]

Fetches Debian's ``uqm-voice`` and ``uqm-content`` with ``apt-get download`` (a private apt
configuration that enables the non-free component, under ``DIR/apt``; nothing is installed),
unpacks them, force-aligns clips to phones with pocketsphinx (``sphinx_align``) and keeps, per
speaker, clips up to a time budget. The recorded voices that ``real_speech`` finds on this
machine and that training never used (``alsa-utils``, the CMU ARCTIC examples) are added. The
Asterisk prompts are left out: their speaker is the one real voice the model trains on, and
the set is kept apart from training by speaker, not by clip.

The set is written as ``DIR/set.json`` (clips, speakers, sources, licences, phone spans) and
``DIR/clips/*.wav`` (16 kHz mono int16). The audio is never committed; the default ``DIR`` is
``~/.cache/avatar-app/eval``. ``load_eval_set`` reads it back without pocketsphinx.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from engines.speech.training.utterance import SAMPLE_RATE, PhoneSpan, Utterance, read_wav_16k

log = logging.getLogger("eval_set")

DEFAULT_DIR = Path("~/.cache/avatar-app/eval").expanduser()
TRAINED_SPEAKERS = frozenset({"asterisk-allison"})
"""Real voices the shipped model was trained on: never in the evaluation set."""
MIN_AGREEMENT = 0.4
"""A clip's alignment must agree with free phone recognition on this share of 10 ms frames
(per viseme): below it the voice is too processed or the text does not match the sound."""
MIN_CLIP_SECONDS = 1.5
MAX_CLIP_SECONDS = 12.0
FEMALE_F0_HZ = 165.0

_APT_SOURCES = (
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian bookworm main contrib non-free\n"
)


@dataclass(frozen=True)
class EvalClip:
    """One held-out clip: its utterance (audio and aligned phones) and where it comes from."""

    id: str
    speaker: str
    sex: str  # "female" / "male", estimated from the speaker's median pitch
    source: str
    licence: str
    utterance: Utterance
    agreement: float | None = None  # alignment vs free phone recognition, per 10 ms frame

    @property
    def seconds(self) -> float:
        return self.utterance.seconds


# ---- fetching -------------------------------------------------------------------------------


def _apt_options(apt: Path) -> list[str]:
    return [
        f"-oDir::Etc::SourceList={apt / 'sources.list'}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt / 'lists'}",
        f"-oDir::Cache={apt}",
    ]


def fetch_debs(packages: Iterable[str], cache: Path) -> list[Path]:
    """``apt-get download`` each package into ``cache/debs`` (kept; fetched once)."""
    debs_dir = cache / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    wanted = list(packages)
    missing = [p for p in wanted if not list(debs_dir.glob(f"{p}_*.deb"))]
    if missing:
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"apt-get is needed to fetch {', '.join(missing)} (Debian only)")
        apt = cache / "apt"
        (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (apt / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (apt / "sources.list").write_text(_APT_SOURCES)
        options = _apt_options(apt)
        subprocess.run(["apt-get", *options, "-q", "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", *options, "-q", "download", *missing], check=True, cwd=debs_dir)
    return [sorted(debs_dir.glob(f"{p}_*.deb"))[-1] for p in wanted]


def unpack(debs: Iterable[Path], root: Path) -> Path:
    """``dpkg-deb -x`` each package under ``root`` (skipped when already there)."""
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        marker = root / f".{deb.name}.done"
        if not marker.exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            marker.touch()
    return root


# ---- labelling ------------------------------------------------------------------------------


def espeak_pronunciation(word: str) -> str | None:
    """ARPAbet for a word the dictionary lacks (an alien name), from espeak-ng's phonemes."""
    from engines.speech import espeak
    from engines.speech.visemes import ipa_to_arpabet

    if not espeak.available():
        return None
    phones = [ipa_to_arpabet(p.ipa) for p in espeak.speak(word, "en-us").phonemes]
    phones = [p for p in phones if p != "SIL"]
    return " ".join(phones) or None


def add_missing_words(text: str) -> None:
    """Give the aligner a pronunciation for each word of ``text`` it does not know."""
    from engines.speech.training import sphinx_align

    found = {}
    for word in sphinx_align.missing_words(text):
        phones = espeak_pronunciation(word)
        if phones:
            found[word] = phones
    if found:
        sphinx_align.add_words(found)


def median_f0(audio: np.ndarray) -> float:
    """Median pitch (Hz) over clearly voiced 40 ms frames: normalised autocorrelation, 70-400 Hz."""
    frame, hop = 640, 320
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 70
    level = np.sqrt(np.mean(np.square(audio))) + 1e-9
    pitches = []
    for start in range(0, len(audio) - frame - hi, hop):
        x = audio[start : start + frame + hi].astype(np.float64)
        a = x[:frame] - x[:frame].mean()
        if np.sqrt(np.mean(a**2)) < level:
            continue
        scores = [
            float(np.dot(a, x[lag : lag + frame] - x[lag : lag + frame].mean()))
            / (
                np.linalg.norm(a)
                * np.linalg.norm(x[lag : lag + frame] - x[lag : lag + frame].mean())
                + 1e-9
            )
            for lag in range(lo, hi)
        ]
        # The shortest lag that scores nearly as well as the best: a periodic signal scores as
        # well at two or three periods, which would halve or third the pitch.
        peak = max(scores)
        if peak > 0.7:
            first = next(i for i, score in enumerate(scores) if score >= 0.9 * peak)
            while first + 1 < len(scores) and scores[first + 1] > scores[first]:
                first += 1
            pitches.append(SAMPLE_RATE / (lo + first))
    return float(np.median(pitches)) if pitches else 0.0


def _stable_order(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class _Candidate:
    id: str
    speaker: str
    source: str
    licence: str
    transcript: str
    load: Callable[[], np.ndarray]  # decoded only when tried: most candidates never are


def _uqm_candidates(cache: Path) -> dict[str, list[_Candidate]]:
    from engines.speech.training import uqm_speech

    root = unpack(fetch_debs(uqm_speech.PACKAGES, cache), cache / "packages")
    by_speaker: dict[str, list[_Candidate]] = {}
    clips = sorted(uqm_speech.uqm_clips(root), key=lambda c: _stable_order(c.name))
    for clip in clips:
        by_speaker.setdefault(clip.speaker, []).append(
            _Candidate(
                Path(clip.name).stem,
                clip.speaker,
                "uqm-voice (Debian non-free) + uqm-content",
                uqm_speech.LICENCE,
                clip.transcript,
                partial(uqm_speech.load_clip, root, clip),
            )
        )
    return by_speaker


def _local_candidates() -> dict[str, list[_Candidate]]:
    from engines.speech.training import real_speech

    by_speaker: dict[str, list[_Candidate]] = {}
    for clip in real_speech.real_clips():
        if clip.speaker in TRAINED_SPEAKERS:
            continue
        by_speaker.setdefault(clip.speaker, []).append(
            _Candidate(
                clip.path.stem,
                clip.speaker,
                clip.source,
                clip.licence,
                clip.transcript,
                partial(real_speech.load_audio, clip.path),
            )
        )
    return by_speaker


def _select(
    candidates: list[_Candidate], budget: float, min_agreement: float, tries: int
) -> list[tuple[_Candidate, np.ndarray, tuple[PhoneSpan, ...], float]]:
    from engines.speech.training import real_speech, sphinx_align

    kept = []
    total = 0.0
    for candidate in candidates[:tries]:
        if total >= budget:
            break
        audio = candidate.load()
        seconds = len(audio) / SAMPLE_RATE
        if not MIN_CLIP_SECONDS <= seconds <= MAX_CLIP_SECONDS:
            continue
        text = real_speech.normalise_prompt(candidate.transcript)
        try:
            add_missing_words(text)
            phones = sphinx_align.align(audio, text)
        except (ValueError, sphinx_align.AlignmentError) as error:
            log.debug("%s: %s", candidate.id, error)
            continue
        agreement = real_speech.frame_agreement(phones, sphinx_align.allphone(audio))
        if agreement < min_agreement:
            log.debug("%s: agreement %.2f", candidate.id, agreement)
            continue
        kept.append((candidate, audio, phones, agreement))
        total += seconds
    return kept


def build(
    out: Path,
    seconds_per_speaker: float = 45.0,
    min_agreement: float = MIN_AGREEMENT,
    tries_per_speaker: int = 40,
) -> dict[str, object]:
    """Fetch, align and write the set under ``out``; returns its description (``set.json``)."""
    from engines.speech.training import real_speech, sphinx_align

    sphinx_align.add_words(real_speech.EXTRA_PRONUNCIATIONS)
    groups: dict[str, list[_Candidate]] = {}
    unreachable: dict[str, str] = {}
    try:
        groups.update(_uqm_candidates(out))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        unreachable["uqm-voice"] = str(error)
        log.warning("The Ur-Quan Masters voices are not reachable: %s", error)
    groups.update(_local_candidates())
    clips: list[EvalClip] = []
    speakers: dict[str, dict[str, object]] = {}
    for speaker, candidates in sorted(groups.items()):
        kept = _select(candidates, seconds_per_speaker, min_agreement, tries_per_speaker)
        if not kept:
            log.info("%s: no clip passed", speaker)
            speakers[speaker] = {"kept": False, "tried": min(len(candidates), tries_per_speaker)}
            continue
        f0 = median_f0(np.concatenate([audio for _, audio, _, _ in kept]))
        sex = "female" if f0 >= FEMALE_F0_HZ else "male"
        seconds = sum(len(audio) for _, audio, _, _ in kept) / SAMPLE_RATE
        speakers[speaker] = {
            "kept": True,
            "clips": len(kept),
            "seconds": round(seconds, 1),
            "median_f0_hz": round(f0),
            "sex": sex,
            "mean_agreement": round(float(np.mean([a for *_, a in kept])), 3),
            "source": kept[0][0].source,
            "licence": kept[0][0].licence,
        }
        log.info("%s: %d clips, %.0f s, f0 %.0f Hz", speaker, len(kept), seconds, f0)
        for candidate, audio, phones, agreement in kept:
            utterance = Utterance(audio, phones, f"real:{speaker}", candidate.transcript)
            clip = EvalClip(
                f"{speaker}--{candidate.id}",
                speaker,
                sex,
                candidate.source,
                candidate.licence,
                utterance,
                round(agreement, 3),
            )
            clips.append(clip)
    description: dict[str, object] = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "aligner": "pocketsphinx 5.1.1 forced alignment (engines/speech/training/sphinx_align.py)",
        "min_agreement": min_agreement,
        "seconds_per_speaker": seconds_per_speaker,
        "trained_speakers_excluded": sorted(TRAINED_SPEAKERS),
        "unreachable": unreachable,
        "speakers": speakers,
    }
    write_eval_set(out, clips, description)
    return description


def write_eval_set(directory: Path, clips: Iterable[EvalClip], info: dict[str, object]) -> None:
    """Write ``clips`` (16 kHz WAV files and their phones) and ``info`` as a set under
    ``directory``."""
    clips_dir = directory / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for clip in clips:
        audio = clip.utterance.audio
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        wavfile.write(clips_dir / f"{clip.id}.wav", SAMPLE_RATE, pcm)
        items.append(
            {
                "id": clip.id,
                "speaker": clip.speaker,
                "sex": clip.sex,
                "source": clip.source,
                "licence": clip.licence,
                "transcript": clip.utterance.text,
                "seconds": round(len(audio) / SAMPLE_RATE, 3),
                "agreement": clip.agreement,
                "phones": [
                    [round(p.start, 3), round(p.end, 3), p.phone] for p in clip.utterance.phones
                ],
            }
        )
    (directory / "set.json").write_text(json.dumps({**info, "clips": items}, indent=1))


# ---- reading --------------------------------------------------------------------------------


def load_eval_set(directory: Path = DEFAULT_DIR) -> list[EvalClip]:
    """The clips of a set written by ``build`` (raises FileNotFoundError when there is none)."""
    description = json.loads((directory / "set.json").read_text())
    clips = []
    for item in description["clips"]:
        audio = read_wav_16k(directory / "clips" / f"{item['id']}.wav")
        phones = tuple(PhoneSpan(float(s), float(e), str(p)) for s, e, p in item["phones"])
        utterance = Utterance(audio, phones, f"real:{item['speaker']}", item["transcript"])
        clips.append(
            EvalClip(
                item["id"],
                item["speaker"],
                item["sex"],
                item["source"],
                item["licence"],
                utterance,
                item.get("agreement"),
            )
        )
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="where the set goes")
    parser.add_argument("--seconds-per-speaker", type=float, default=45.0)
    parser.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT)
    parser.add_argument("--tries-per-speaker", type=int, default=40)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    description = build(
        args.out.expanduser(), args.seconds_per_speaker, args.min_agreement, args.tries_per_speaker
    )
    kept = {k: v for k, v in description["speakers"].items() if v["kept"]}  # type: ignore[attr-defined]
    total = sum(v["seconds"] for v in kept.values())
    print(f"{len(kept)} speakers, {total / 60:.1f} min in {args.out}/set.json")


if __name__ == "__main__":
    main()
