"""The delayed voice writer on a simulated clock: PortAudio's callback driven by hand.

Chunks of 10 ms are fed as a microphone would deliver them and the callback is called every
10 ms with its buffer due 40 ms later; the output must be the input delayed by the target, a
changed target must be reached without a jump (at most 0.5 % speed), push-to-talk must fade the
voice instead of cutting it, and sound that arrives late must raise the delay, not punch holes.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from avatar_app.live import voice_out
from avatar_app.live.voice_out import MAX_SPEED_CHANGE, VoiceOut
from avatar_app.pipeline.frames import AudioChunk

RATE = 16_000
BLOCK = RATE // 100
AHEAD = 0.04


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def __call__(self) -> int:
        return self.ns


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(voice_out, "_now_ns", fake)
    return fake


def _run(
    voice: VoiceOut, clock: Clock, sound: np.ndarray, arrival_ms: int = 10, steer: object = None
) -> tuple[np.ndarray, list[float]]:
    """Feed ``sound`` in 10 ms chunks (each arriving ``arrival_ms`` after its capture) and
    play it; returns what was played and the delay after each callback."""
    out, delays = [], []
    start = clock.ns
    pending: list[AudioChunk] = []
    for i in range(len(sound) // BLOCK):
        clock.ns = start + i * 10_000_000
        pts = clock.ns
        pending.append(AudioChunk(sound[i * BLOCK : (i + 1) * BLOCK], RATE, pts))
        while pending and pending[0].pts_ns + arrival_ms * 1_000_000 <= clock.ns + 10_000_000:
            voice.feed(pending.pop(0))
        if callable(steer):
            steer(i)
        buffer = np.zeros((BLOCK, 1), np.float32)
        now = clock.ns / 1e9
        voice._callback(
            buffer, BLOCK, SimpleNamespace(currentTime=now, outputBufferDacTime=now + AHEAD), None
        )
        out.append(buffer[:, 0].copy())
        delays.append(voice.delay)
    return np.concatenate(out), delays


def _voice() -> VoiceOut:
    voice = VoiceOut("test", rate=RATE)
    voice.set_picture_delay(0.1)
    return voice


def _noise(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * RATE)).astype(np.float32)


def test_the_voice_comes_out_delayed_by_the_target(clock: Clock) -> None:
    sound = _noise(3.0)
    played, delays = _run(_voice(), clock, sound)
    shift = round((0.1 - AHEAD) * RATE)  # heard AHEAD after the callback: played this early
    assert np.allclose(played[shift + RATE :], sound[RATE : len(played) - shift], atol=1e-3)
    assert abs(delays[-1] - 0.1) < 1e-4


def test_a_new_target_is_reached_smoothly(clock: Clock) -> None:
    voice = _voice()

    def steer(i: int) -> None:
        if i == 100:
            voice.set_picture_delay(0.3)  # smoothed: the target moves by a fifth of the way
            voice.set_picture_delay(0.3)

    _, delays = _run(voice, clock, _noise(25.0), steer=steer)
    steps = np.abs(np.diff(delays))
    assert steps.max() <= MAX_SPEED_CHANGE * 0.01 + 1e-6  # never faster than 0.5 % speed
    assert voice.target_delay is not None
    assert abs(delays[-1] - voice.target_delay) < 0.002


def test_push_to_talk_fades_the_voice(clock: Clock) -> None:
    voice = _voice()

    def steer(i: int) -> None:
        if i == 100:
            voice.set_gate(False)

    played, _ = _run(voice, clock, np.full(2 * RATE, 0.5, np.float32), steer=steer)
    assert np.abs(played[-RATE // 2 :]).max() == 0.0
    assert np.abs(np.diff(played[RATE // 2 :])).max() < 0.5 / (voice_out.GATE_RAMP_S * RATE) + 1e-3


def test_the_voice_can_stay_on_through_push_to_talk(clock: Clock) -> None:
    voice = VoiceOut("test", rate=RATE, follows_gate=False)
    voice.set_picture_delay(0.1)
    voice.set_gate(False)
    played, _ = _run(voice, clock, np.full(2 * RATE, 0.5, np.float32))
    assert np.allclose(played[-RATE // 2 :], 0.5)


def test_sound_that_arrives_late_raises_the_delay_instead_of_punching_holes(
    clock: Clock,
) -> None:
    voice = _voice()
    sound = np.full(6 * RATE, 0.5, np.float32)
    played, delays = _run(voice, clock, sound, arrival_ms=90)  # later than 0.1 - AHEAD
    assert delays[-1] > 0.1
    assert abs(delays[-1] - voice.least_delay) < 0.01
    assert np.abs(played[-3 * RATE :] - 0.5).max() < 1e-3  # once settled, no gaps


def test_sound_at_another_rate_goes_out_at_the_outputs_rate(clock: Clock) -> None:
    """The microphone's sound may come at 16 kHz (or 44.1, stereo): the 48 kHz output plays it
    resampled, channels averaged, still delayed by the target."""
    from scipy.signal import resample_poly

    out_rate = 48_000
    rng = np.random.default_rng(1)
    reference = resample_poly(rng.uniform(-0.5, 0.5, 3 * RATE), 3, 1).astype(np.float32)
    fed = resample_poly(reference, 1, 3).astype(np.float32)  # what a 16 kHz input captured
    stereo = np.stack([fed, fed], axis=1)
    voice = VoiceOut("test", rate=out_rate)
    voice.set_picture_delay(0.1)
    played = []
    for i in range(len(fed) // BLOCK):
        clock.ns = 1_000_000_000 + i * 10_000_000
        voice.feed(AudioChunk(stereo[i * BLOCK : (i + 1) * BLOCK], RATE, clock.ns - 10_000_000))
        buffer = np.zeros((out_rate // 100, 1), np.float32)
        now = clock.ns / 1e9
        voice._callback(
            buffer,
            len(buffer),
            SimpleNamespace(currentTime=now, outputBufferDacTime=now + AHEAD),
            None,
        )
        played.append(buffer[:, 0].copy())
    out = np.concatenate(played)
    # Sample k of the output is heard at (k / out_rate + AHEAD) and shows what was captured
    # 0.1 s before; chunks are stamped 10 ms before they arrive: reference sample k + shift.
    shift = round((AHEAD - 0.1 + 0.01) * out_rate)
    part = slice(out_rate, len(out) - out_rate // 2)
    expected = reference[part.start + shift : part.stop + shift]
    assert np.corrcoef(out[part], expected)[0, 1] > 0.99
    assert abs(voice.delay - 0.1) < 1e-3
