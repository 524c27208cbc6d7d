"""The streaming speech core: audio -> mouth per video frame, on speech made at test time."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from engines.errors import ModelMissing
from engines.speech.features import RATE, WINDOW
from engines.speech.model import LipSyncModel
from engines.speech.stream import SpeechFrame, SpeechMotion
from tests.speech_audio import envelope, phone_openness, spoken

FPS = 25


@cache
def _model() -> LipSyncModel:
    return LipSyncModel()


def run(audio: np.ndarray, chunk: int | None = None, **kwargs: object) -> list[SpeechFrame]:
    motion = SpeechMotion(FPS, _model(), **kwargs)  # type: ignore[arg-type]
    if chunk is None:
        frames = motion.push(audio)
    else:
        frames = []
        for start in range(0, len(audio), chunk):
            frames += motion.push(audio[start : start + chunk])
    return frames + motion.flush()


def field(frames: list[SpeechFrame], name: str) -> np.ndarray:
    return np.array([getattr(f.mouth, name) for f in frames])


def times(frames: list[SpeechFrame]) -> np.ndarray:
    return np.array([f.time for f in frames])


def test_one_frame_per_video_frame_of_audio() -> None:
    audio = np.zeros(int(2.02 * RATE), np.float32)
    frames = run(audio)
    assert [f.index for f in frames] == list(range(51))  # ceil(2.02 s * 25)
    assert np.allclose(times(frames), np.arange(51) / FPS)


def test_streaming_in_10ms_chunks_equals_the_whole_file() -> None:
    audio, _ = spoken("The quick brown fox jumps over the lazy dog, mama papa.")
    whole = run(audio)
    for chunk in (160, 333, 4000):
        pieces = run(audio, chunk=chunk)
        assert [f.index for f in pieces] == [f.index for f in whole]
        for name in ("jaw_open", "mouth_wide", "mouth_round", "lip_press"):
            assert np.allclose(field(pieces, name), field(whole, name), atol=1e-5), (chunk, name)


def test_silence_and_noise_keep_the_mouth_closed() -> None:
    rng = np.random.default_rng(0)
    silence = np.zeros(RATE, np.float32)
    hiss = (rng.standard_normal(2 * RATE) * 10 ** (-45 / 20)).astype(np.float32)
    # Breaths: band-limited noise swells of 0.6 s, loud enough to trip a naive level gate.
    t = np.arange(int(0.6 * RATE)) / RATE
    swell = np.sin(np.pi * t / 0.6) ** 2
    breath = np.convolve(rng.standard_normal(t.size), np.ones(8) / 8, "same") * swell * 0.05
    audio = np.concatenate([silence, hiss, breath, silence, breath, silence]).astype(np.float32)
    frames = run(audio)
    assert field(frames, "jaw_open").max() < 0.08
    assert field(frames, "lip_press").max() < 0.2
    assert np.abs(field(frames, "mouth_wide")).max() < 0.1


def test_jaw_follows_the_speech_envelope_and_the_phones() -> None:
    audio, phones = spoken("Hello, how are you today? I am fine, thanks, and you?")
    frames = run(audio)
    jaw = field(frames, "jaw_open")
    assert np.corrcoef(jaw, envelope(audio, times(frames)))[0, 1] >= 0.6
    assert np.corrcoef(jaw, phone_openness(phones, times(frames)))[0, 1] >= 0.6


def _closures(press: np.ndarray, threshold: float = 0.5) -> int:
    above = press > threshold
    return int(np.sum(above[1:] & ~above[:-1]) + above[0])


def test_mama_papa_closes_the_lips() -> None:
    audio, phones = spoken("mama papa, mama papa.", rate_wpm=120)
    frames = run(audio)
    press = field(frames, "lip_press")
    bilabials = sum(1 for _, p in phones if p in ("M", "P", "B"))
    assert bilabials == 8
    assert _closures(press) >= 6
    # Closed while a bilabial sounds, open on the vowels between them.
    t = times(frames)
    at_vowels = [press[np.argmin(np.abs(t - (s + 0.05)))] for s, p in phones if p == "AA"]
    assert np.median(at_vowels) < 0.3


def test_who_woo_rounds_the_lips_and_see_spreads_them() -> None:
    rounded = run(spoken("who woo, who woo.", rate_wpm=120)[0])
    spread = run(spoken("see me, see me.", rate_wpm=120)[0])

    def while_speaking(frames: list[SpeechFrame], name: str) -> np.ndarray:
        return field(frames, name)[[f.voiced for f in frames]]

    assert field(rounded, "mouth_round").max() > 0.8
    assert while_speaking(rounded, "mouth_round").mean() > 0.4
    assert while_speaking(spread, "mouth_round").mean() < 0.15
    assert while_speaking(spread, "mouth_wide").mean() > 0.15
    assert while_speaking(rounded, "mouth_wide").mean() < 0.0


def test_push_to_talk_release_closes_the_mouth_within_100ms() -> None:
    audio, _ = spoken("aaaah aaaah aaaah aaaah aaaah", rate_wpm=80)
    motion = SpeechMotion(FPS, _model())
    frames: list[SpeechFrame] = []
    release = len(audio) // 2
    for start in range(0, len(audio), 160):
        if start == release - release % 160:
            motion.set_push_to_talk(False)
        frames += motion.push(audio[start : start + 160])
    frames += motion.flush()
    t = times(frames)
    jaw = field(frames, "jaw_open")
    released_at = release / RATE
    assert jaw[(t > 0.5) & (t < released_at - 0.1)].max() > 0.3
    assert jaw[t > released_at + 0.1].max() < 0.05


def test_a_frame_never_waits_for_more_than_the_lookahead() -> None:
    audio, _ = spoken("Testing the delay of the mouth.")
    for lookahead in (0.0525, 0.06, 0.1):
        motion = SpeechMotion(FPS, _model(), lookahead=lookahead)
        assert motion.lookahead <= lookahead + 1e-9
        fed = 0
        for start in range(0, len(audio), 160):
            chunk = audio[start : start + 160]
            fed += chunk.size
            for frame in motion.push(chunk):
                # Emitted as soon as the sound up to time + lookahead is in, not later. Frame 0
                # (t = 0) lies before the first feature frame's centre and waits 12.5 ms more.
                slack = WINDOW / 2 / RATE if frame.index == 0 else 0.0
                assert frame.audio_until <= frame.time + motion.lookahead + slack + 1e-9
                assert fed / RATE <= frame.time + motion.lookahead + slack + 0.01 + 1e-9


def test_too_little_lookahead_is_refused_with_the_minimum() -> None:
    with pytest.raises(ValueError, match=r"at least 52\.5 ms"):
        SpeechMotion(FPS, _model(), lookahead=0.02)


def test_a_missing_model_says_how_to_get_it(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(ModelMissing, match=r"lipsync\.onnx"):
        LipSyncModel(Path(str(tmp_path)) / "lipsync.onnx")
