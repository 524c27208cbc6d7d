"""Labelled-speech sources besides espeak-ng: Festival TTS, pocketsphinx alignment, real clips."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from engines.speech.training.utterance import SAMPLE_RATE, PhoneSpan, Utterance
from engines.speech.visemes import PHONES

FRONT_LEFT = Path("/usr/share/sounds/alsa/Front_Left.wav")

needs_festival = pytest.mark.skipif(
    shutil.which("festival") is None,
    reason="festival not installed (apt install festival festvox-kallpc16k festvox-us-slt-hts)",
)
needs_alsa_sounds = pytest.mark.skipif(
    not FRONT_LEFT.is_file(), reason="alsa-utils' /usr/share/sounds/alsa not installed"
)


def _pocketsphinx() -> None:
    pytest.importorskip("pocketsphinx", reason="pocketsphinx (train extra) not installed")


def assert_covers(phones: Sequence[PhoneSpan], seconds: float) -> None:
    """Spans are contiguous, non-empty, ARPAbet or SIL, and cover 0..seconds."""
    assert phones, "no phones"
    assert phones[0].start == 0.0
    assert phones[-1].end == pytest.approx(seconds, abs=1e-6)
    for previous, span in itertools.pairwise(phones):
        assert span.start == pytest.approx(previous.end, abs=1e-9)
    for span in phones:
        assert span.end > span.start
        assert span.phone in PHONES


def voiced_region(audio: np.ndarray, threshold: float = 0.05) -> tuple[float, float]:
    """First and last 10 ms frame whose peak exceeds ``threshold``, in seconds."""
    frame = SAMPLE_RATE // 100
    peaks = np.abs(audio[: len(audio) // frame * frame]).reshape(-1, frame).max(axis=1)
    loud = np.nonzero(peaks > threshold)[0]
    return loud[0] / 100, (loud[-1] + 1) / 100


# --- Festival ---------------------------------------------------------------------------------


@needs_festival
def test_festival_voices_include_an_installed_one() -> None:
    from engines.speech.training.festival_tts import festival_voices

    voices = festival_voices()
    assert voices, "festival is installed but no voice synthesises"
    assert {"kal_diphone", "cmu_us_slt_arctic_hts"} & set(voices)


@needs_festival
@pytest.mark.parametrize("voice", ["kal_diphone", "cmu_us_slt_arctic_hts"])
def test_festival_mama_papa(voice: str) -> None:
    from engines.speech.training.festival_tts import festival_voices, synthesize

    if voice not in festival_voices():
        pytest.skip(f"Festival voice {voice} not installed")
    utterance = synthesize("mama papa", voice)
    assert isinstance(utterance, Utterance)
    assert utterance.audio.dtype == np.float32 and utterance.audio.ndim == 1
    assert utterance.seconds > 0.4
    assert 0.01 < float(np.abs(utterance.audio).max()) <= 1.0
    assert utterance.source == f"festival:{voice}" and utterance.text == "mama papa"
    assert_covers(utterance.phones, utterance.seconds)
    spoken = [p.phone for p in utterance.phones if p.phone != "SIL"]
    assert spoken[0] == "M" and "P" in spoken and {"AA", "AH"} & set(spoken)
    assert spoken.index("M") < spoken.index("P")


@needs_festival
def test_festival_quotes_rate_and_batch() -> None:
    from engines.speech.training.festival_tts import festival_voices, synthesize_many

    voice = festival_voices()[0]
    texts = ['He said "stop" \\ it\u2019s (café).', "mama papa", "mama papa"]
    normal, *_ = synthesize_many(texts[:2], voice)
    assert normal.text == texts[0] and normal.seconds > 0.5
    slow, fast = (synthesize_many([texts[1]], voice, rate)[0] for rate in (0.7, 1.5))
    assert fast.seconds < slow.seconds
    assert_covers(fast.phones, fast.seconds)


@needs_festival
def test_festival_rejects_text_without_words() -> None:
    from engines.speech.training.festival_tts import festival_voices, synthesize

    with pytest.raises(ValueError, match="nothing to synthesise"):
        synthesize(" . ", festival_voices()[0])
    with pytest.raises(ValueError, match="not available"):
        synthesize("hello", "no_such_voice")


def test_festival_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from engines.speech.training import festival_tts

    monkeypatch.setattr(festival_tts.shutil, "which", lambda name: None)
    festival_tts._voice_phonesets.cache_clear()
    try:
        assert festival_tts.festival_voices() == []
        with pytest.raises(RuntimeError, match="festival is not installed"):
            festival_tts.synthesize("hello", "kal_diphone")
    finally:
        festival_tts._voice_phonesets.cache_clear()


def test_festival_phone_maps_give_arpabet() -> None:
    from engines.speech.training.festival_tts import MRPA_TO_ARPABET, RADIO_TO_ARPABET

    assert set(RADIO_TO_ARPABET.values()) <= set(PHONES)
    assert set(MRPA_TO_ARPABET.values()) <= set(PHONES)
    assert RADIO_TO_ARPABET["ax"] == "AH" and RADIO_TO_ARPABET["pau"] == "SIL"


# --- pocketsphinx -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def front_left() -> np.ndarray:
    if not FRONT_LEFT.is_file():
        pytest.skip("alsa-utils' /usr/share/sounds/alsa not installed")
    from engines.speech.training.real_speech import load_audio

    return load_audio(FRONT_LEFT)


def test_align_front_left(front_left: np.ndarray) -> None:
    _pocketsphinx()
    from engines.speech.training.sphinx_align import align

    phones = align(front_left, "Front left.")
    seconds = len(front_left) / SAMPLE_RATE
    assert_covers(phones, seconds)
    spoken = [p for p in phones if p.phone != "SIL"]
    assert [p.phone for p in spoken] == ["F", "R", "AH", "N", "T", "L", "EH", "F", "T"]
    first, last = voiced_region(front_left)
    assert first - 0.1 <= spoken[0].start <= first + 0.1
    assert last - 0.15 <= spoken[-1].end <= last + 0.1
    # The pause between the words is silence, and "left" starts after it.
    gap = [p for p in phones if p.phone == "SIL" and spoken[0].start < p.start < spoken[-1].end]
    assert gap and gap[0].end - gap[0].start > 0.1


def test_align_names_missing_words(front_left: np.ndarray) -> None:
    _pocketsphinx()
    from engines.speech.training.sphinx_align import align

    with pytest.raises(ValueError, match="zzyzxq"):
        align(front_left, "front zzyzxq left")


def test_allphone_front_left(front_left: np.ndarray) -> None:
    _pocketsphinx()
    from engines.speech.training.sphinx_align import allphone

    phones = allphone(front_left)
    assert_covers(phones, len(front_left) / SAMPLE_RATE)
    spoken = [p.phone for p in phones if p.phone != "SIL"]
    assert len(spoken) >= 4
    assert "T" in spoken and "N" in spoken


# --- real speech ------------------------------------------------------------------------------


def test_normalise_prompt() -> None:
    from engines.speech.training.real_speech import normalise_prompt, number_words

    assert number_words(7) == "seven" and number_words(42) == "forty two"
    assert number_words(500) == "five hundred" and number_words(1234) == "one two three four"
    assert normalise_prompt("Press 1, then * [beep] (tone)") == "Press one, then star"
    assert normalise_prompt("3D audio #") == "three D audio pound"
    assert normalise_prompt("<beep ascending>") == ""


@needs_alsa_sounds
def test_real_clips_have_speakers_and_no_noise() -> None:
    from engines.speech.training.real_speech import real_clips

    clips = real_clips()
    alsa = [c for c in clips if c.speaker == "alsa"]
    assert len(alsa) == 8
    assert all(c.path.is_file() and c.transcript and c.licence for c in clips)
    assert not any(c.path.name == "Noise.wav" for c in clips)
    assert {c.transcript for c in alsa} >= {"front left", "rear center", "side right"}


@needs_alsa_sounds
def test_labelled_real_utterances_for_alsa_clips() -> None:
    _pocketsphinx()
    from engines.speech.training.real_speech import labelled_real_utterances, real_clips

    clips = [c for c in real_clips() if c.speaker == "alsa"]
    utterances = labelled_real_utterances(clips)
    assert len(utterances) == len(clips)
    for utterance, clip in zip(utterances, clips, strict=True):
        assert utterance.source == "real:alsa" and utterance.text == clip.transcript
        assert utterance.audio.dtype == np.float32
        assert_covers(utterance.phones, utterance.seconds)
        assert sum(p.phone != "SIL" for p in utterance.phones) >= 5
