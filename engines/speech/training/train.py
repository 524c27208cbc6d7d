"""Trains the shipped lip-sync model from scratch; one command, reproducible with its seed:

    python -m engines.speech.training.train --out resources/models/lipsync.onnx

The data is described in ``corpus.py``; the model card in ``resources/models/lipsync.md``
records the command, the data and the held-out accuracy of the shipped model.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from engines.model_cache import sha256_of
from engines.speech import features
from engines.speech.training.corpus import Corpus, make_corpus
from engines.speech.training.dataset import Augmenter, Example, example
from engines.speech.training.utterance import Utterance
from engines.speech.visemes import VISEMES

log = logging.getLogger("train")

CONTEXT = 20  # 200 ms of past frames
LOOKAHEAD = 3  # future frames: 30 ms + half a window = 42.5 ms of algorithmic lookahead


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
    metrics["sha256"] = sha256_of(out)  # what LipSyncModel checks an override against
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
