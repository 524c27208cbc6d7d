"""The voice gate: speech opens it, breath and noise do not, push-to-talk overrides."""

from __future__ import annotations

import numpy as np
import pytest

from engines.speech.gate import VAD_FRAME, VoiceGate

RATE = 16_000


def _gate_values(gate: VoiceGate, audio: np.ndarray) -> np.ndarray:
    frames = len(audio) // VAD_FRAME
    return np.array(
        [gate.update(audio[i * VAD_FRAME : (i + 1) * VAD_FRAME]) for i in range(frames)]
    )


def _vowel(seconds: float, pitch: float = 140.0) -> np.ndarray:
    """A buzzy vowel-like sound: a pitched pulse train through two formant-ish resonances."""
    t = np.arange(int(seconds * RATE)) / RATE
    source = np.sign(np.sin(2 * np.pi * pitch * t)) * 0.2
    return (source * (0.6 + 0.4 * np.sin(2 * np.pi * 700 * t))).astype(np.float32)


def _noise(seconds: float, level_db: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (level_db / 20)).astype(np.float32)


@pytest.mark.parametrize("aggressiveness", [0, 3])
def test_a_voice_opens_the_gate_and_silence_shuts_it(aggressiveness: int) -> None:
    gate = VoiceGate(aggressiveness)
    audio = np.concatenate([np.zeros(RATE // 2), _vowel(1.0), np.zeros(RATE)]).astype(np.float32)
    values = _gate_values(gate, audio)
    assert values[:50].max() == 0.0
    assert values[80:140].min() > 0.9  # open within 300 ms of the onset, for the whole vowel
    assert values[-30:].max() < 0.01  # shut after the hangover


def test_loud_unpitched_noise_never_opens_the_gate() -> None:
    values = _gate_values(VoiceGate(0), _noise(3.0, -20.0))
    assert values.max() < 0.01


def test_push_to_talk_closes_the_gate_while_speech_goes_on() -> None:
    gate = VoiceGate(2)
    values = list(_gate_values(gate, _vowel(1.0)))
    gate.push_to_talk_open = False
    after = _gate_values(gate, _vowel(0.5))
    assert values[-1] > 0.9
    assert after[10:].max() < 0.02  # 100 ms later it is shut
    assert gate.speaking  # the voice is still detected; only the gate is closed


def test_voice_detection_can_be_turned_off_and_bad_settings_are_refused() -> None:
    gate = VoiceGate(None)
    assert _gate_values(gate, _vowel(0.5))[-1] > 0.9
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        VoiceGate(5)
