"""``avatar-app bench lipsync``: how well the rendered mouth follows real speech, measured on
the pixels.

For each clip of a held-out set (``engines.speech.training.eval_set``: recorded voices the model
never trained on, force-aligned to phones) the bench renders the offline path (the streaming
lip-sync core, articulation, speech-linked and idle motion, the mixer, the renderer; the same
stages ``avatar-app render`` runs) on the bundled portrait, re-detects the face on every frame
with the face landmarker and compares the mouth opening it finds with the aligned phones.

Definitions (all on a 10 ms grid, ``STEP``):

- *aligned openness*: each phone's jaw opening from ``PHONE_JAW`` (the training's jaw target
  table), smoothed with the training's 30 ms Gaussian (``dataset.JAW_SMOOTH_SECONDS``);
- *re-detected opening*: inner-lip gap (landmarks 13-14) over face height (10-152), per
  rendered frame at ``k / fps`` seconds, linearly interpolated onto the grid;
- *volume mouth* (the baseline a PNGtuber meter gives): RMS of the last 20 ms of sound at each
  grid time, eased with a one-pole follower (attack 20 ms, release 80 ms);
- *r*: Pearson correlation with the aligned openness at lag 0; *best lag*: the shift in 10 ms
  steps (+/- 200 ms) with the highest correlation, positive when the mouth comes after the
  sound;
- *m/b/p closed*: share of aligned P, B, M phones during which (+/- 20 ms) the re-detected
  opening falls below the closure threshold, calibrated per portrait between its pressed-shut
  and resting mouth (see ``closure_threshold``); *m/b/p below rest*: the same against the
  portrait's resting gap (the lips at least as near as at rest);
- *model alone*: the network's own jaw output and 15-viseme frame accuracy against the aligned
  phones (per feature frame, as training measures), without articulation or rendering.

Optional variants drive the renderer with one signal only (``aligned``: the aligned openness
itself, the ceiling of renderer plus measurement; ``model-jaw``: the network's jaw alone;
``volume``: the volume mouth) to locate where the loss arises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from engines.controls import FaceControls
from engines.face import topology as topo
from engines.speech.features import RATE
from engines.speech.training.dataset import JAW_SMOOTH_SECONDS
from engines.speech.training.eval_set import DEFAULT_DIR, EvalClip, load_eval_set
from engines.speech.training.utterance import PhoneSpan
from engines.speech.visemes import PHONE_JAW

log = logging.getLogger(__name__)

STEP = 0.01
MAX_LAG_STEPS = 20
VOLUME_WINDOW = 0.02
VOLUME_ATTACK = 0.02
VOLUME_RELEASE = 0.08
BILABIALS = frozenset({"P", "B", "M"})
CLOSURE_MARGIN = 0.02
VARIANTS = ("path", "aligned", "model-jaw", "volume")


# ---- signals on the 10 ms grid --------------------------------------------------------------


def grid(seconds: float) -> np.ndarray:
    """Times 0, 10 ms, ... up to ``seconds`` (exclusive)."""
    return np.arange(int(np.floor(seconds / STEP + 1e-9))) * STEP


def aligned_openness(phones: Sequence[PhoneSpan], times: np.ndarray) -> np.ndarray:
    """The training's jaw target at ``times``: per-phone opening, 30 ms Gaussian smoothing
    (``times`` must be the 10 ms grid for the smoothing to be in seconds)."""
    starts = np.array([p.start for p in phones])
    which = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(phones) - 1)
    raw = np.array([PHONE_JAW.get(phones[i].phone, 0.0) for i in which], np.float64)
    return gaussian_filter1d(raw, JAW_SMOOTH_SECONDS / STEP, mode="nearest")


def volume_mouth(audio: np.ndarray, times: np.ndarray) -> np.ndarray:
    """A volume meter's mouth: causal RMS of the last ``VOLUME_WINDOW`` at each time, eased by a
    one-pole follower (fast attack, slower release), as PNGtuber tools drive their mouths."""
    window = int(VOLUME_WINDOW * RATE)
    power = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    ends = np.clip(np.round(times * RATE).astype(int), 0, len(audio))
    starts = np.clip(ends - window, 0, None)
    rms = np.sqrt((power[ends] - power[starts]) / window)
    attack = 1.0 - np.exp(-STEP / VOLUME_ATTACK)
    release = 1.0 - np.exp(-STEP / VOLUME_RELEASE)
    out = np.empty_like(rms)
    level = 0.0
    for i, value in enumerate(rms):
        level += (attack if value > level else release) * (value - level)
        out[i] = level
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; 0 when either signal is constant."""
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    denominator = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b) / denominator) if denominator > 0 else 0.0


def lag_curve(follower: np.ndarray, leader: np.ndarray, most: int = MAX_LAG_STEPS) -> np.ndarray:
    """Correlation of ``follower[t + lag]`` with ``leader[t]`` for lag = -most..most steps."""
    n = min(len(follower), len(leader))
    scores = []
    for lag in range(-most, most + 1):
        if lag >= 0:
            scores.append(correlation(follower[lag:n], leader[: n - lag]))
        else:
            scores.append(correlation(follower[: n + lag], leader[-lag:n]))
    return np.array(scores)


def best_lag(curve: np.ndarray) -> int:
    """The lag in steps (positive: the follower comes later) where ``curve`` peaks."""
    return int(np.argmax(curve)) - (len(curve) - 1) // 2


def on_grid(frame_times: np.ndarray, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Per-frame values (NaN where no face was found) linearly interpolated at ``times``."""
    ok = ~np.isnan(values)
    if not ok.any():
        return np.zeros_like(times)
    return np.interp(times, frame_times[ok], values[ok])


def bilabial_closures(
    phones: Sequence[PhoneSpan], times: np.ndarray, opening: np.ndarray, threshold: float
) -> tuple[int, int]:
    """(closed, total) over the P/B/M phones: closed when the opening dips below ``threshold``
    within the phone +/- ``CLOSURE_MARGIN``."""
    closed = total = 0
    for span in phones:
        if span.phone not in BILABIALS:
            continue
        inside = (times >= span.start - CLOSURE_MARGIN) & (times <= span.end + CLOSURE_MARGIN)
        if not inside.any():
            continue
        total += 1
        closed += bool(opening[inside].min() < threshold)
    return closed, total


# ---- the renderer and the measure --------------------------------------------------------------


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap over face height (as ``tests/face_metrics.mouth_opening``)."""
    p = points[:, :2]
    gap = float(np.linalg.norm(p[14] - p[13]))
    return gap / float(np.linalg.norm(p[topo.CHIN] - p[topo.FOREHEAD_TOP]))


@dataclass(frozen=True)
class Calibration:
    rest: float  # re-detected opening of the portrait with every control at zero
    pressed: float  # with lip_press 1 (the lips pressed shut)
    threshold: float


def closure_threshold(rest: float, pressed: float) -> float:
    """Closed: a quarter of the way or more from the resting gap to the pressed-shut one, and
    never less than 1 % of the face height above pressed (for a portrait that rests shut)."""
    return pressed + max(0.25 * (rest - pressed), 0.01)


class Measure:
    """Renders controls and re-detects the mouth opening."""

    def __init__(self, portrait: Any) -> None:
        from engines.face.landmarker import FaceLandmarker

        self.portrait = portrait
        self.landmarker = FaceLandmarker(max_faces=1)
        self.frames = 0
        self.missed = 0
        self.render_seconds = 0.0
        self.detect_seconds = 0.0

    def opening(self, controls: FaceControls) -> float:
        started = time.perf_counter()
        image = self.portrait.render(controls)
        detected = time.perf_counter()
        faces = self.landmarker.detect_all(image)
        self.render_seconds += detected - started
        self.detect_seconds += time.perf_counter() - detected
        self.frames += 1
        if not faces:
            self.missed += 1
            return float("nan")
        return mouth_opening(faces[0].points)

    def calibrate(self) -> Calibration:
        rest = self.opening(FaceControls())
        pressed = self.opening(FaceControls(lip_press=1.0))
        return Calibration(rest, pressed, closure_threshold(rest, pressed))

    def close(self) -> None:
        self.landmarker.close()


# ---- per clip -----------------------------------------------------------------------------------


def model_alone(model: Any, clip: EvalClip) -> dict[str, Any]:
    """The network on the whole clip: jaw per feature frame and viseme accuracy vs the phones."""
    from engines.speech import features
    from engines.speech.training.dataset import frame_targets

    feats = features.features_of(clip.utterance.audio, model.initial_mean)
    index = np.arange(len(feats))
    offsets = np.arange(-model.context, model.lookahead + 1)
    rows = np.clip(index[:, None] + offsets[None, :], 0, len(feats) - 1)
    visemes, jaw = [], []
    for start in range(0, len(feats), 512):
        prediction = model.predict(feats[rows[start : start + 512]])
        visemes.append(prediction.visemes.argmax(axis=1))
        jaw.append(prediction.jaw)
    target_visemes, target_jaw = frame_targets(clip.utterance, len(feats))
    guessed, predicted = np.concatenate(visemes), np.concatenate(jaw)
    return {
        "centres": np.asarray(features.frame_centre(index), np.float64),
        "jaw": predicted,
        "target_jaw": target_jaw,
        "correct": int(np.sum(guessed == target_visemes)),
        "frames": len(feats),
    }


def _path_openings(
    clip: EvalClip, settings: Any, measure: Measure
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame times, re-detected openings and the jaw_open the renderer was given, through the
    stages of ``avatar_app.offline.talk.render_talking`` (20 ms chunks, as a microphone)."""
    from avatar_app.offline.talk import CHUNK_SECONDS
    from avatar_app.pipeline import builder

    speech = builder.speech_stage(settings)
    mixer = builder.mixer(replace(settings, mode="audio"))
    audio = clip.utterance.audio
    chunk = int(CHUNK_SECONDS * RATE)
    times, openings, jaws = [], [], []
    for start in range(0, len(audio) + chunk, chunk):
        last = start >= len(audio)
        frames = speech.flush() if last else speech.push(audio[start : start + chunk])
        for spoken in frames:
            controls = mixer.controls(spoken.time, spoken.life, spoken.mouth, None)
            times.append(spoken.time)
            jaws.append(controls.jaw_open)
            openings.append(measure.opening(controls))
        if last:
            break
    return np.array(times), np.array(openings), np.array(jaws)


def _driven_openings(
    signal_times: np.ndarray, jaw: np.ndarray, fps: float, seconds: float, measure: Measure
) -> tuple[np.ndarray, np.ndarray]:
    """The renderer driven by ``jaw_open`` alone, sampled at each frame time."""
    frame_times = np.arange(int(np.ceil(seconds * fps - 1e-9))) / fps
    values = np.interp(frame_times, signal_times, jaw)
    openings = [measure.opening(FaceControls(jaw_open=float(v))) for v in values]
    return frame_times, np.array(openings)


@dataclass
class _Score:
    """Sums over clips for the overall figures."""

    weight: float = 0.0
    r_sum: float = 0.0
    curve: np.ndarray | None = None
    follower: list[np.ndarray] | None = None
    leader: list[np.ndarray] | None = None

    def add(self, follower: np.ndarray, leader: np.ndarray) -> dict[str, Any]:
        curve = lag_curve(follower, leader)
        r = correlation(follower, leader)
        w = float(len(leader))
        self.weight += w
        self.r_sum += w * r
        self.curve = curve * w if self.curve is None else self.curve + curve * w
        self.follower = [*(self.follower or []), follower]
        self.leader = [*(self.leader or []), leader]
        return {"r": round(r, 3), "best_lag_ms": best_lag(curve) * 10}

    def overall(self) -> dict[str, Any]:
        if self.curve is None or not self.follower or not self.leader:
            return {}
        curve = self.curve / self.weight
        pooled = correlation(np.concatenate(self.follower), np.concatenate(self.leader))
        return {
            "r_pooled": round(pooled, 3),
            "r_mean_per_clip": round(self.r_sum / self.weight, 3),
            "best_lag_ms": best_lag(curve) * 10,
            "r_at_best_lag": round(float(curve.max()), 3),
        }


def select(clips: list[EvalClip], minutes: float | None) -> list[EvalClip]:
    """Clips taken in turn from each speaker until ``minutes`` of audio (all when None)."""
    if minutes is None:
        return clips
    queues: dict[str, list[EvalClip]] = {}
    for clip in clips:
        queues.setdefault(clip.speaker, []).append(clip)
    chosen: list[EvalClip] = []
    total = 0.0
    while total < minutes * 60 and any(queues.values()):
        for queue in queues.values():
            if queue and total < minutes * 60:
                clip = queue.pop(0)
                chosen.append(clip)
                total += clip.seconds
    return chosen


def bench_lipsync(
    set_dir: Path | None = None,
    minutes: float | None = None,
    fps: int = 25,
    variants: Sequence[str] = ("path",),
    portrait: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    from avatar_app.pipeline import builder
    from avatar_app.pipeline.settings import PipelineSettings
    from engines.speech.model import LipSyncModel

    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    directory = set_dir or DEFAULT_DIR
    clips = select(load_eval_set(directory), minutes)
    settings = PipelineSettings(
        portrait=portrait, size=(512, 512), fps=fps, mode="audio", engine="mesh"
    )
    started = time.perf_counter()
    ready = builder.ready_portrait(settings)
    measure = Measure(ready)
    calibration = measure.calibrate()
    model = LipSyncModel(threads=1)

    scores = {name: _Score() for name in ("rendered", "controls", "volume", "model_jaw")}
    scores.update({f"rendered_{v}": _Score() for v in variants if v != "path"})
    closed_total = [0, 0, 0]  # closed, bilabials, below the resting gap
    viseme_counts = [0, 0]
    per_clip = []
    for n, clip in enumerate(clips):
        seconds = clip.seconds
        times = grid(seconds)
        target = aligned_openness(clip.utterance.phones, times)
        row: dict[str, Any] = {
            "id": clip.id,
            "speaker": clip.speaker,
            "sex": clip.sex,
            "seconds": round(seconds, 2),
        }
        alone = model_alone(model, clip)
        model_on_grid = np.interp(times, alone["centres"], alone["jaw"])
        row["model_alone"] = {
            "jaw_r_frames": round(correlation(alone["jaw"], alone["target_jaw"]), 3),
            "viseme_accuracy": round(alone["correct"] / alone["frames"], 3),
            **scores["model_jaw"].add(model_on_grid, target),
        }
        viseme_counts[0] += alone["correct"]
        viseme_counts[1] += alone["frames"]
        volume = volume_mouth(clip.utterance.audio, times)
        row["volume"] = scores["volume"].add(volume, target)
        if "path" in variants:
            frame_times, openings, jaws = _path_openings(clip, settings, measure)
            rendered = on_grid(frame_times, openings, times)
            row["rendered"] = scores["rendered"].add(rendered, target)
            row["controls"] = scores["controls"].add(np.interp(times, frame_times, jaws), target)
            closed, total = bilabial_closures(
                clip.utterance.phones, times, rendered, calibration.threshold
            )
            near, _ = bilabial_closures(clip.utterance.phones, times, rendered, calibration.rest)
            row["rendered"]["mbp_closed"] = f"{closed}/{total}"
            row["rendered"]["mbp_below_rest"] = f"{near}/{total}"
            closed_total[0] += closed
            closed_total[1] += total
            closed_total[2] += near
        drives = {
            "aligned": target,
            "model-jaw": model_on_grid,
            "volume": np.clip(volume / (np.percentile(volume, 95) + 1e-9), 0, 1) * 0.7,
        }
        for variant in variants:
            if variant == "path":
                continue
            frame_times, openings = _driven_openings(times, drives[variant], fps, seconds, measure)
            row[f"rendered_{variant}"] = scores[f"rendered_{variant}"].add(
                on_grid(frame_times, openings, times), target
            )
        per_clip.append(row)
        log.info("%s: %s", clip.id, row)
        if progress:
            progress(n + 1, len(clips))
    measure.close()

    speakers = sorted({c.speaker for c in clips})
    overall: dict[str, Any] = {
        "model_alone": {
            "viseme_accuracy": round(viseme_counts[0] / max(viseme_counts[1], 1), 3),
            **scores["model_jaw"].overall(),
        },
        "volume_baseline": scores["volume"].overall(),
    }
    if "path" in variants:
        overall["rendered"] = {
            **scores["rendered"].overall(),
            "mbp_closed": round(closed_total[0] / max(closed_total[1], 1), 3),
            "mbp_count": closed_total[1],
            "mbp_below_rest": round(closed_total[2] / max(closed_total[1], 1), 3),
        }
        overall["controls_jaw_open"] = scores["controls"].overall()
    for variant in variants:
        if variant != "path":
            overall[f"rendered_{variant}"] = scores[f"rendered_{variant}"].overall()
    return {
        "measured": (
            "re-detected inner-lip gap / face height of the mesh engine's frames vs the "
            "forced-aligned phone openness (PHONE_JAW, 30 ms Gaussian), 10 ms grid"
        ),
        "set": {
            "dir": str(directory),
            "clips": len(clips),
            "minutes": round(sum(c.seconds for c in clips) / 60, 2),
            "speakers": speakers,
            "high_pitched_speakers": sorted({c.speaker for c in clips if c.sex == "female"}),
        },
        "render": {
            "engine": ready.engine,
            "fps": fps,
            "size": list(settings.size),
            "interpolation": "linear onto the 10 ms grid" if fps != 100 else "none",
            "frames": measure.frames,
            "frames_without_face": measure.missed,
            "render_ms_per_frame": round(measure.render_seconds / max(measure.frames, 1) * 1e3, 1),
            "detect_ms_per_frame": round(measure.detect_seconds / max(measure.frames, 1) * 1e3, 1),
        },
        "closure": {
            "rest_opening": round(calibration.rest, 4),
            "pressed_opening": round(calibration.pressed, 4),
            "threshold": round(calibration.threshold, 4),
        },
        "overall": overall,
        "per_speaker": _per_speaker(per_clip),
        "clips": per_clip,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _per_speaker(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean per-clip r of each measure, weighted by clip length."""
    out: dict[str, dict[str, Any]] = {}
    for speaker in sorted({r["speaker"] for r in rows}):
        mine = [r for r in rows if r["speaker"] == speaker]
        weights = np.array([r["seconds"] for r in mine])
        summary: dict[str, Any] = {"seconds": round(float(weights.sum()), 1), "sex": mine[0]["sex"]}
        for key in ("rendered", "volume", "model_alone"):
            if key in mine[0]:
                values = np.array([r[key]["r"] for r in mine])
                summary[f"{key}_r"] = round(float(np.average(values, weights=weights)), 3)
        out[speaker] = summary
    return out
