"""The real-speech evaluation set's pieces that need no download: dialogue text, speakers,
pitch, and writing and reading a set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.speech.training import eval_set, uqm_speech
from engines.speech.training.utterance import SAMPLE_RATE, PhoneSpan, Utterance

DIALOGUE = """#(HELLO_1)\tsyreen-000.ogg
Attention unidentified space vessel!
Who are you?

#(we_are_vice_squad)
We're the Ethics Police.

#(OK_VICE)\tsyreen-004.ogg
Huh? What ARE you talking about?
"""


def test_dialogue_text_gives_each_voiced_clip_its_lines() -> None:
    assert uqm_speech.parse_dialogue(DIALOGUE) == {
        "syreen-000.ogg": "Attention unidentified space vessel! Who are you?",
        "syreen-004.ogg": "Huh? What ARE you talking about?",
    }  # the player's unvoiced line is not a clip


def test_folders_that_may_share_an_actor_are_one_speaker() -> None:
    assert uqm_speech.speaker_of("commander") == uqm_speech.speaker_of("starbase")
    assert uqm_speech.speaker_of("syreen") != uqm_speech.speaker_of("spathi")


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_median_pitch_of_a_pulse_train(f0: float) -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    k = np.arange(1, 8)[:, None]
    voice = (np.sin(2 * np.pi * f0 * k * t) / k).sum(axis=0).astype(np.float32)
    assert eval_set.median_f0(0.3 * voice) == pytest.approx(f0, rel=0.03)


def test_a_written_set_reads_back(tmp_path: Path) -> None:
    audio = (0.1 * np.sin(np.arange(SAMPLE_RATE) * 0.05)).astype(np.float32)
    phones = (PhoneSpan(0.0, 0.4, "SIL"), PhoneSpan(0.4, 0.7, "AA"), PhoneSpan(0.7, 1.0, "M"))
    clip = eval_set.EvalClip(
        "s--1", "s", "female", "test", "none", Utterance(audio, phones, "real:s", "ah m"), 0.6
    )
    eval_set.write_eval_set(tmp_path, [clip], {"note": "test"})
    (back,) = eval_set.load_eval_set(tmp_path)
    assert (back.id, back.speaker, back.sex, back.agreement) == ("s--1", "s", "female", 0.6)
    assert back.utterance.phones == phones
    assert np.abs(back.utterance.audio - audio).max() < 1e-3
