"""The training and held-out speech: synthetic voices, recorded voices and non-speech.

Synthetic: espeak-ng (8 English accents x ~100 voice variants, random rate and pitch) and
Festival speak sentences from the Python standard library's docstrings, with phone times from
the synthesisers. Real: recorded prompts force-aligned by pocketsphinx. Held out: unseen espeak
voice variants and sentences, one whole Festival voice, unseen prompts of the main recorded
speaker, and every other recorded speaker.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engines.speech import espeak
from engines.speech.training import dataset, espeak_corpus
from engines.speech.training.text_corpus import sentences
from engines.speech.training.utterance import Utterance

log = logging.getLogger("train")


@dataclass
class Corpus:
    train: list[Utterance]
    held_out: dict[str, list[Utterance]]


def make_corpus(
    hours: float, seed: int, festival_share: float = 0.2, real: bool = True, held_out: int = 200
) -> Corpus:
    rng = np.random.default_rng(seed)
    texts = sentences()
    rng.shuffle(texts)
    test_texts, train_texts = texts[: len(texts) // 10], texts[len(texts) // 10 :]
    variants = espeak.voice_variants()
    rng.shuffle(variants)
    test_variants, train_variants = variants[:12], variants[12:]

    train: list[Utterance] = []
    seconds = 0.0
    for text in _cycle(train_texts, rng):
        if seconds >= hours * 3600 * (1.0 - festival_share):
            break
        voice, rate, pitch, spread = espeak_corpus.random_voice(rng, train_variants)
        utterance = espeak_corpus.utterance(text, voice, rate, pitch, spread)
        train.append(utterance)
        seconds += utterance.seconds
    train += [
        dataset.non_speech(rng, float(rng.uniform(1.0, 3.0))) for _ in range(len(train) // 15)
    ]
    held_espeak = []
    for text in test_texts[:held_out]:
        voice, rate, pitch, spread = espeak_corpus.random_voice(rng, test_variants)
        held_espeak.append(espeak_corpus.utterance(text, voice, rate, pitch, spread))
    held: dict[str, list[Utterance]] = {"espeak_unseen_voices": held_espeak}
    if festival_share > 0:
        festival_train, festival_test = _festival(
            train_texts, test_texts[: held_out // 2], hours * festival_share, rng
        )
        train += festival_train
        if festival_test:
            held["festival_unseen_voice"] = festival_test
    if real:
        real_train, real_held = _real_speech()
        train += real_train
        held.update(real_held)
    return Corpus(train, held)


def _cycle(items: list[str], rng: np.random.Generator) -> Iterator[str]:
    while True:
        for i in rng.permutation(len(items)):
            # One to three sentences per utterance, so pauses between sentences are learnt too.
            count = int(rng.integers(1, 4))
            yield " ".join(items[(i + k) % len(items)] for k in range(count))


def _festival(
    train_texts: list[str], test_texts: list[str], hours: float, rng: np.random.Generator
) -> tuple[list[Utterance], list[Utterance]]:
    try:
        from engines.speech.training import festival_tts

        voices = festival_tts.festival_voices()
    except (ImportError, RuntimeError) as exc:
        log.warning("Festival is not available (%s): training on espeak-ng only", exc)
        return [], []
    if len(voices) < 2:
        log.warning("Festival has fewer than two voices: none held out")
        return [], []
    held_voice, train_voices = voices[-1], voices[:-1]
    train: list[Utterance] = []
    seconds = 0.0
    texts = _cycle(train_texts, rng)
    while seconds < hours * 3600:
        # One Festival process per batch of 20 texts, each batch at its own speed.
        voice = train_voices[rng.integers(len(train_voices))]
        batch = [next(texts) for _ in range(20)]
        rate = float(rng.uniform(0.8, 1.3))
        spoken = festival_tts.synthesize_many(batch, voice, rate, skip_failures=True)
        train += spoken
        seconds += sum(u.seconds for u in spoken)
    test = festival_tts.synthesize_many(test_texts, held_voice, skip_failures=True)
    log.info("Festival: trained on %s, held out %s", train_voices, held_voice)
    return train, test


def _real_speech() -> tuple[list[Utterance], dict[str, list[Utterance]]]:
    """Recorded human speech labelled by forced alignment: most prompts of the main speaker
    train; the rest of that speaker's prompts and every other speaker are held out."""
    try:
        from engines.speech.training import real_speech

        utterances = real_speech.labelled_real_utterances()
    except (ImportError, RuntimeError, ValueError) as exc:
        log.warning("No real speech (%s): training and measuring on synthetic speech only", exc)
        return [], {}
    main = f"real:{real_speech.MAIN_SPEAKER}"
    ours = sorted((u for u in utterances if u.source == main), key=lambda u: _stable_hash(u.text))
    cut = len(ours) * 85 // 100
    held = {
        "real_unseen_speakers": [u for u in utterances if u.source != main],
        "real_main_speaker_unseen_prompts": ours[cut:],
    }
    log.info("Real speech: %d prompts of %s to train on; held out %s", cut, main,
             {name: len(items) for name, items in held.items()})  # fmt: skip
    return ours[:cut], {name: items for name, items in held.items() if items}


def _stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
