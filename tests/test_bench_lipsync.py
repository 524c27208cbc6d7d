"""``avatar-app bench lipsync``: its measures on signals with known answers, and one small run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avatar_app import bench_lipsync as bench
from engines.speech.features import RATE
from engines.speech.training.eval_set import (
    DEFAULT_DIR,
    TRAINED_SPEAKERS,
    EvalClip,
    load_eval_set,
    write_eval_set,
)
from engines.speech.training.utterance import PhoneSpan, Utterance
from tests.speech_audio import spoken


def _smooth_noise(n: int, seed: int = 0) -> np.ndarray:
    """A random signal with mouth-like speed (about 4 Hz of content) on the 10 ms grid."""
    from scipy.ndimage import gaussian_filter1d

    noise = np.random.default_rng(seed).standard_normal(n + 200)
    return gaussian_filter1d(noise, 4.0)[100:-100]


@pytest.mark.parametrize("shift", [-7, -3, 0, 2, 5])
def test_a_known_lag_is_recovered_exactly(shift: int) -> None:
    leader = _smooth_noise(1200)
    follower = np.roll(leader, shift)  # follower[t] = leader[t - shift]: later when positive
    assert bench.best_lag(bench.lag_curve(follower, leader)) == shift


def test_a_perfect_mouth_correlates_one_whatever_its_scale() -> None:
    target = _smooth_noise(500, seed=1)
    assert bench.correlation(3.0 * target + 0.2, target) == pytest.approx(1.0)
    assert bench.correlation(-target, target) == pytest.approx(-1.0)
    assert bench.correlation(np.ones(50), target[:50]) == 0.0


@pytest.mark.parametrize("delay_ms", [0, 30, -20, 50])
def test_interpolating_25_fps_frames_does_not_hide_a_lag(delay_ms: int) -> None:
    """A mouth rendered at 25 fps and linearly interpolated onto the 10 ms grid keeps its lag to
    the step: the interpolation's kernel is symmetric, so it blurs but does not shift."""
    times = bench.grid(20.0)
    truth = _smooth_noise(len(times) + 40, seed=2)
    target = truth[20:-20]
    frame_times = np.arange(0, 20.0, 1 / 25)
    # The mouth shows at time t what the target was at t - delay.
    delayed = np.interp(frame_times - delay_ms / 1000, times, target)
    on_grid = bench.on_grid(frame_times, delayed, times)
    assert bench.best_lag(bench.lag_curve(on_grid, target)) * 10 == delay_ms


def test_volume_mouth_is_a_causal_eased_rms_meter() -> None:
    audio = np.zeros(2 * RATE, np.float32)
    audio[RATE // 2 : RATE] = 0.5 * np.sign(np.sin(np.arange(RATE // 2) * 0.3))  # RMS 0.5
    times = bench.grid(2.0)
    mouth = bench.volume_mouth(audio, times)
    step = {round(t, 2): v for t, v in zip(times, mouth, strict=True)}
    assert step[0.5] == 0.0  # nothing before the sound: causal
    # The window fills in 20 ms while the 20 ms attack follows: past 1 - 1/e 40 ms in.
    assert step[0.51] < step[0.52] < step[0.54] < 0.5
    assert step[0.54] > 0.5 * (1 - np.exp(-1))
    assert step[0.9] == pytest.approx(0.5, abs=0.01)
    # After the offset the window empties in 20 ms, then the 80 ms release: 1/e left.
    assert step[1.1] == pytest.approx(0.5 * np.exp(-1), abs=0.06)
    assert step[1.9] < 0.01


def test_aligned_openness_uses_the_training_jaw_table() -> None:
    phones = (PhoneSpan(0.0, 0.5, "SIL"), PhoneSpan(0.5, 1.5, "AA"), PhoneSpan(1.5, 2.0, "M"))
    times = bench.grid(2.0)
    openness = bench.aligned_openness(phones, times)
    assert openness[10] == pytest.approx(0.0)
    assert openness[100] == pytest.approx(0.75)  # PHONE_JAW["AA"]
    assert openness[190] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < openness[50] < 0.75  # the 30 ms smoothing crosses the boundary


def test_bilabials_count_as_closed_only_when_the_lips_meet() -> None:
    phones = (
        PhoneSpan(0.0, 0.3, "AA"),
        PhoneSpan(0.3, 0.4, "M"),
        PhoneSpan(0.4, 0.8, "AA"),
        PhoneSpan(0.8, 0.9, "B"),
        PhoneSpan(0.9, 1.2, "AA"),
    )
    times = bench.grid(1.2)
    opening = np.full(len(times), 0.2)
    opening[(times > 0.33) & (times < 0.37)] = 0.005  # shut during the M only
    assert bench.bilabial_closures(phones, times, opening, threshold=0.02) == (1, 2)


def test_closure_threshold_sits_between_pressed_and_resting_lips() -> None:
    assert bench.closure_threshold(rest=0.06, pressed=0.002) == pytest.approx(0.0165)
    # A portrait whose mouth rests shut still needs a visible margin.
    assert bench.closure_threshold(rest=0.003, pressed=0.002) == pytest.approx(0.012)


def _clip(speaker: str, seconds: float) -> EvalClip:
    audio = np.zeros(int(seconds * RATE), np.float32)
    utterance = Utterance(audio, (PhoneSpan(0.0, seconds, "SIL"),), speaker)
    return EvalClip(f"{speaker}-{seconds}", speaker, "male", "test", "none", utterance)


def test_minutes_take_speakers_in_turn() -> None:
    clips = [_clip("a", 30), _clip("a", 31), _clip("a", 32), _clip("b", 30), _clip("c", 30)]
    chosen = bench.select(clips, minutes=1.5)
    assert [c.speaker for c in chosen] == ["a", "b", "c"]
    assert bench.select(clips, None) == clips


def _espeak_clip(text: str, voice: str, speaker: str) -> EvalClip:
    audio, events = spoken(text, voice=voice, pad=0.3)
    seconds = len(audio) / RATE
    spans = [PhoneSpan(0.0, events[0][0], "SIL")]
    ends = [t for t, _ in events[1:]] + [seconds]
    spans += [PhoneSpan(t, end, phone) for (t, phone), end in zip(events, ends, strict=True)]
    utterance = Utterance(audio, tuple(s for s in spans if s.end > s.start), speaker, text)
    return EvalClip(f"{speaker}-0", speaker, "male", "espeak-ng", "GPL-3.0", utterance)


@pytest.mark.slow
def test_bench_runs_on_a_tiny_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avatar_app.cli import main

    clip = _espeak_clip("Bob may pop by, maybe.", "en-us", "espeak-en-us")
    write_eval_set(tmp_path, [clip], {"note": "espeak-ng, its phone events as the alignment"})
    assert main(["bench", "lipsync", "--set", str(tmp_path), "--variants", "path,aligned"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["set"]["clips"] == 1
    assert result["render"]["frames_without_face"] == 0
    overall = result["overall"]
    assert overall["rendered"]["mbp_count"] >= 4
    for figure in (overall["rendered"], overall["volume_baseline"], overall["model_alone"]):
        assert -1.0 <= figure["r_pooled"] <= 1.0
        assert abs(figure["best_lag_ms"]) <= 10 * bench.MAX_LAG_STEPS
    # On clean synthetic speech the rendered mouth follows the phones.
    assert overall["rendered"]["r_pooled"] > 0.3
    assert 0.0 <= overall["model_alone"]["viseme_accuracy"] <= 1.0
    # The renderer driven by the aligned openness itself: the ceiling of renderer + measure.
    assert overall["rendered_aligned"]["r_pooled"] > 0.9
    assert overall["rendered_aligned"]["best_lag_ms"] == 0


def test_a_missing_set_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avatar_app.cli import main

    assert main(["bench", "lipsync", "--set", str(tmp_path / "none")]) != 0
    assert "engines.speech.training.eval_set" in capsys.readouterr().err


def test_the_real_set_holds_out_every_trained_speaker() -> None:
    if not (DEFAULT_DIR / "set.json").is_file():
        pytest.skip(
            f"no real-speech evaluation set in {DEFAULT_DIR}: build it with "
            "`python -m engines.speech.training.eval_set` (a developer step, not CI)"
        )
    clips = load_eval_set(DEFAULT_DIR)
    assert clips
    assert not {c.speaker for c in clips} & TRAINED_SPEAKERS
