"""The training pipeline end to end on a few seconds of speech: labels, export, runtime."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tests.speech_audio import require_espeak


def test_espeak_labels_line_up_with_the_sound() -> None:
    from engines.speech.training.espeak_corpus import utterance

    require_espeak()
    spoken = utterance("Mama, papa.", "en-us", rate_wpm=120)
    phones = [span.phone for span in spoken.phones if span.phone != "SIL"]
    assert phones[:4] == ["M", "AA", "M", "AH"]
    assert spoken.phones[-1].end == pytest.approx(spoken.seconds)
    for span in spoken.phones:
        part = spoken.audio[int(span.start * 16000) : int(span.end * 16000)]
        if span.phone in ("AA", "AH") and part.size:
            # Vowels are where the sound is.
            assert np.sqrt(np.mean(part**2)) > 0.02


def test_ipa_from_any_voice_maps_to_known_phones() -> None:
    from engines.speech.visemes import PHONE_TO_VISEME, ipa_to_arpabet

    for ipa in ("ˈaɪ", "tʃ", "ɹ", "ˌʉː", "ɾ", "œ", "ɐ", "ʔ", "ŋ", "ˈoʊ"):
        assert ipa_to_arpabet(ipa) in PHONE_TO_VISEME
    assert ipa_to_arpabet("") == "SIL"


@pytest.mark.slow
def test_training_exports_a_model_the_app_can_run(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training needs the train extra (torch)")
    require_espeak()
    from engines.speech.model import LipSyncModel
    from engines.speech.stream import SpeechMotion
    from engines.speech.training.train import train

    out = tmp_path / "lipsync.onnx"
    args = argparse.Namespace(
        out=out, hours=0.01, epochs=1, batch=256, seed=3, threads=1,
        festival_share=0.0, real=False, held_out=3,
    )  # fmt: skip
    metrics = train(args)
    assert metrics["onnx_max_abs_diff"] <= 1e-5
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["espeak_unseen_voices/clean"]["utterances"] == 3
    model = LipSyncModel(out)
    assert model.lookahead_seconds == pytest.approx(0.0425)
    motion = SpeechMotion(25, model)
    frames = motion.push(np.zeros(16000, np.float32)) + motion.flush()
    assert len(frames) == 25
