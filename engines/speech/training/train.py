"""Trains the shipped lip-sync model from scratch; one command, reproducible with its seed:

    python -m engines.speech.training.train --out resources/models/lipsync.onnx

Data: espeak-ng (8 English accents x ~100 voice variants, random rate and pitch) and Festival
voices speak sentences from the Python standard library's docstrings; phone times come from
the synthesisers themselves. Held out for measurement: unseen espeak voice variants and
sentences, one whole Festival voice, and real recorded human speech (labelled by pocketsphinx
forced alignment), none of which is trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.speech import espeak, features
from engines.speech.training import dataset, espeak_corpus
from engines.speech.training.dataset import Augmenter, Example, example
from engines.speech.training.text_corpus import sentences
from engines.speech.training.utterance import Utterance
from engines.speech.visemes import VISEMES

log = logging.getLogger("train")

CONTEXT = 20  # 200 ms of past frames
LOOKAHEAD = 3  # future frames: 30 ms + half a window = 42.5 ms of algorithmic lookahead


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


def initial_mean(utterances: list[Utterance]) -> np.ndarray:
    """Average raw log-mel of the training audio: where the running mean starts."""
    sums = np.zeros(features.BANDS)
    count = 0
    for utterance in utterances[:: max(1, len(utterances) // 300)]:
        raw = features.FeatureStream(np.zeros(features.BANDS)).push(utterance.audio)[1]
        sums += raw.sum(axis=0)
        count += len(raw)
    return sums / max(count, 1)


def windows(feats: np.ndarray, index: np.ndarray) -> np.ndarray:
    """[len(index), CONTEXT + 1 + LOOKAHEAD, BANDS] windows, edges padded with the edge frame."""
    offsets = np.arange(-CONTEXT, LOOKAHEAD + 1)
    rows = np.clip(index[:, None] + offsets[None, :], 0, len(feats) - 1)
    return feats[rows]


def stack(examples: list[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All frames of all examples: padded features, the row of each frame, targets."""
    pad = np.zeros((CONTEXT + LOOKAHEAD, features.BANDS), np.float32)
    parts, rows, visemes, jaw = [], [], [], []
    offset = 0
    for ex in examples:
        padded = np.vstack([np.repeat(ex.features[:1], CONTEXT, 0) if len(ex.features) else pad[:0],
                            ex.features,
                            np.repeat(ex.features[-1:], LOOKAHEAD, 0)])  # fmt: skip
        parts.append(padded)
        rows.append(offset + CONTEXT + np.arange(len(ex.features)))
        visemes.append(ex.visemes)
        jaw.append(ex.jaw)
        offset += len(padded)
    return (np.vstack(parts), np.concatenate(rows), np.concatenate(visemes), np.concatenate(jaw))


def train(args: argparse.Namespace) -> dict[str, object]:
    import torch

    from engines.speech.training.network import LipSyncNet

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()
    corpus = make_corpus(args.hours, args.seed, args.festival_share, args.real, args.held_out)
    mean = initial_mean(corpus.train)
    rng = np.random.default_rng(args.seed + 1)
    babble = [u.audio for u in corpus.train[:200]]
    augment = Augmenter(rng, babble)
    train_examples = [example(u, mean) for u in corpus.train]
    train_examples += [example(u, mean, augment(u.audio)) for u in corpus.train]
    # Real voices are scarce and matter most: two more noisy copies of each.
    real_voices = [u for u in corpus.train if u.source.startswith("real:")]
    train_examples += [example(u, mean, augment(u.audio)) for u in real_voices * 2]
    feats, rows, visemes, jaw = stack(train_examples)
    scale = float(feats.std())
    log.info(
        "Data: %d utterances, %.2f h, %d frames in %.0f s",
        len(corpus.train),
        sum(u.seconds for u in corpus.train) / 3600,
        len(rows),
        time.time() - started,
    )
    net = LipSyncNet(CONTEXT, LOOKAHEAD, scale)
    optimiser = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = args.epochs * (len(rows) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    feats_t = torch.from_numpy(feats)
    offsets = torch.arange(-CONTEXT, LOOKAHEAD + 1)
    counts = np.bincount(visemes, minlength=len(VISEMES)).astype(np.float64)
    weights = torch.tensor((counts.sum() / np.maximum(counts, 1) / len(VISEMES)) ** 0.3).float()
    cross_entropy = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    net.train()
    for epoch in range(args.epochs):
        order = torch.from_numpy(rng.permutation(len(rows)))
        total = 0.0
        for step in range(len(rows) // args.batch):
            pick = order[step * args.batch : (step + 1) * args.batch]
            centre = torch.from_numpy(rows)[pick]
            batch = feats_t[centre[:, None] + offsets[None, :]]
            logits, jaw_logit = net(batch)
            loss = cross_entropy(logits, torch.from_numpy(visemes)[pick])
            loss = loss + 4.0 * torch.mean(
                (torch.sigmoid(jaw_logit) - torch.from_numpy(jaw)[pick]) ** 2
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        log.info(
            "epoch %d loss %.3f (%.0f s)", epoch + 1, total / max(step, 1), time.time() - started
        )
    net.eval()
    metrics = evaluate(net, corpus, mean, np.random.default_rng(args.seed + 2))
    metrics["training"] = {
        "utterances": len(corpus.train),
        "hours": round(sum(u.seconds for u in corpus.train) / 3600, 2),
        "sources": sorted({u.source.split(":")[0] for u in corpus.train}),
        "epochs": args.epochs,
        "seed": args.seed,
        "seconds": round(time.time() - started),
    }
    export(net, mean, args.out, metrics)
    return metrics


def predict(net: object, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.no_grad():
        logits, jaw = net(torch.from_numpy(windows(feats, np.arange(len(feats)))))  # type: ignore[operator]
    return logits.argmax(-1).numpy(), torch.sigmoid(jaw).numpy()


def evaluate(
    net: object, corpus: Corpus, mean: np.ndarray, rng: np.random.Generator
) -> dict[str, object]:
    """Frame accuracy over the 15 visemes and jaw correlation per held-out set, clean and noisy."""
    augment = Augmenter(rng, [u.audio for u in corpus.train[:50]])
    results: dict[str, object] = {}
    for name, utterances in corpus.held_out.items():
        for condition in ("clean", "augmented"):
            correct = frames = 0
            jaw_true, jaw_pred = [], []
            for u in utterances:
                audio = augment(u.audio) if condition == "augmented" else None
                ex = example(u, mean, audio)
                guess, jaw = predict(net, ex.features)
                correct += int((guess == ex.visemes).sum())
                frames += len(guess)
                jaw_true.append(ex.jaw)
                jaw_pred.append(jaw)
            corr = float(np.corrcoef(np.concatenate(jaw_true), np.concatenate(jaw_pred))[0, 1])
            results[f"{name}/{condition}"] = {
                "utterances": len(utterances),
                "seconds": round(sum(u.seconds for u in utterances), 1),
                "viseme_frame_accuracy": round(correct / max(frames, 1), 3),
                "jaw_correlation": round(corr, 3),
            }
            log.info("%s/%s: %s", name, condition, results[f"{name}/{condition}"])
    return results


def export(net: object, mean: np.ndarray, out: Path, metrics: dict[str, object]) -> None:
    import onnx
    import torch

    from engines.speech.training.network import ExportedLipSync

    model = ExportedLipSync(net).eval()  # type: ignore[arg-type]
    example_input = torch.zeros(2, CONTEXT + 1 + LOOKAHEAD, features.BANDS)
    # The TorchScript exporter is enough for an MLP and needs no onnxscript; it warns that
    # it and its helpers are deprecated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example_input,),
            str(out),
            input_names=["features"],
            output_names=["viseme_probs", "jaw"],
            dynamic_axes={
                "features": {0: "batch"},
                "viseme_probs": {0: "batch"},
                "jaw": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    proto = onnx.load(str(out))
    meta = {
        "context": CONTEXT,
        "lookahead": LOOKAHEAD,
        "bands": features.BANDS,
        "visemes": list(VISEMES),
        "initial_mean": [round(float(v), 5) for v in mean],
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(proto, str(out))
    metrics["onnx_max_abs_diff"] = _onnx_difference(model, out, example_input.shape[1])
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("Wrote %s (%d bytes)", out, out.stat().st_size)


def _onnx_difference(model: object, path: Path, window: int) -> float:
    """Largest difference between ONNX Runtime and PyTorch on random windows."""
    import onnxruntime as ort
    import torch

    inputs = torch.randn(64, window, features.BANDS) * 3
    with torch.no_grad():
        expected = [t.numpy() for t in model(inputs)]  # type: ignore[operator]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": inputs.numpy()})
    return float(
        max(np.abs(a - b.reshape(a.shape)).max() for a, b in zip(got, expected, strict=True))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("resources/models/lipsync.onnx"))
    parser.add_argument("--hours", type=float, default=2.5, help="hours of synthetic speech")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=int, default=200, help="held-out espeak utterances")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest here)")
    parser.add_argument(
        "--festival-share", type=float, default=0.2, help="part of the hours spoken by Festival"
    )
    parser.add_argument(
        "--no-real", dest="real", action="store_false", help="skip the real-speech measurement"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(json.dumps(train(args), indent=2))


if __name__ == "__main__":
    main()
