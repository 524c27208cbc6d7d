"""From labelled utterances to training arrays: augmentation, features, per-frame targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import fftconvolve, lfilter

from engines.speech import features
from engines.speech.training.utterance import SAMPLE_RATE, Utterance
from engines.speech.visemes import PHONE_JAW, PHONE_TO_VISEME, VISEME_INDEX

JAW_SMOOTH_SECONDS = 0.03  # the jaw moves continuously between phone targets


@dataclass
class Example:
    """One utterance as the network sees it: features [n, BANDS], viseme ids, jaw targets."""

    features: np.ndarray
    visemes: np.ndarray
    jaw: np.ndarray
    source: str


def frame_targets(utterance: Utterance, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Viseme index and jaw openness at the centre of each feature frame."""
    centres = np.asarray(features.frame_centre(np.arange(frames)))
    starts = np.array([span.start for span in utterance.phones])
    which = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(starts) - 1)
    phones = [utterance.phones[i].phone for i in which]
    visemes = np.array([VISEME_INDEX[PHONE_TO_VISEME.get(p, "sil")] for p in phones], np.int64)
    jaw = np.array([PHONE_JAW.get(p, 0.0) for p in phones], np.float32)
    jaw = gaussian_filter1d(jaw, JAW_SMOOTH_SECONDS * features.FRAME_RATE, mode="nearest")
    return visemes, jaw.astype(np.float32)


def example(
    utterance: Utterance, initial_mean: np.ndarray, audio: np.ndarray | None = None
) -> Example:
    feats = features.features_of(utterance.audio if audio is None else audio, initial_mean)
    visemes, jaw = frame_targets(utterance, len(feats))
    return Example(feats, visemes, jaw, utterance.source)


class Augmenter:
    """Noise at 5-40 dB SNR, room reverb, EQ tilt, band limits and gain: the network must not
    care about level, microphone or room."""

    def __init__(self, rng: np.random.Generator, babble: list[np.ndarray]) -> None:
        self.rng = rng
        self.babble = babble

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        rng = self.rng
        out = audio.astype(np.float64)
        if rng.random() < 0.5:
            out = self._reverb(out)
        if rng.random() < 0.6:
            out = self._tilt(out)
        if rng.random() < 0.15:
            out = self._telephone(out)
        if rng.random() < 0.8:
            out = out + self._noise(out)
        out *= 10.0 ** (rng.uniform(-30.0, 6.0) / 20.0) / max(np.abs(out).max(), 1e-6) * 0.5
        if rng.random() < 0.05:
            out = np.clip(out * 4.0, -1.0, 1.0)  # clipped microphone
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def _reverb(self, audio: np.ndarray) -> np.ndarray:
        rt60 = self.rng.uniform(0.1, 0.7)
        length = int(rt60 * SAMPLE_RATE)
        t = np.arange(length) / SAMPLE_RATE
        tail = self.rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
        tail[0] = 1.0 / self.rng.uniform(0.2, 1.0)  # direct sound against the room
        wet = fftconvolve(audio, tail)[: audio.size]
        return wet / max(np.abs(wet).max(), 1e-9) * max(np.abs(audio).max(), 1e-9)

    def _tilt(self, audio: np.ndarray) -> np.ndarray:
        """A one-pole shelf: a dull or a bright microphone."""
        pole = self.rng.uniform(-0.7, 0.9)
        return np.asarray(lfilter([1.0 - abs(pole)], [1.0, -pole], audio))

    def _telephone(self, audio: np.ndarray) -> np.ndarray:
        spectrum = np.fft.rfft(audio)
        freqs = np.fft.rfftfreq(audio.size, 1.0 / SAMPLE_RATE)
        spectrum[(freqs < 300) | (freqs > 3400)] = 0
        return np.fft.irfft(spectrum, n=audio.size)

    def _noise(self, audio: np.ndarray) -> np.ndarray:
        rng = self.rng
        kind = rng.integers(4)
        n = audio.size
        if kind == 0:
            noise = rng.standard_normal(n)
        elif kind == 1:  # pink-ish
            noise = np.asarray(lfilter([1.0], [1.0, -0.97], rng.standard_normal(n)))
        elif kind == 2 and self.babble:  # other speech in the background
            other = self.babble[rng.integers(len(self.babble))]
            noise = np.resize(other, n).astype(np.float64)
        else:  # mains hum and a fan
            t = np.arange(n) / SAMPLE_RATE
            hum = np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t)
            noise = hum + 0.3 * np.asarray(lfilter([1.0], [1.0, -0.9], rng.standard_normal(n)))
        snr_db = rng.uniform(5.0, 40.0)
        speech_power = np.mean(audio[np.abs(audio) > 0.02 * np.abs(audio).max()] ** 2)
        noise_power = max(np.mean(noise**2), 1e-12)
        return noise * np.sqrt(speech_power / noise_power / 10.0 ** (snr_db / 10.0))


def non_speech(rng: np.random.Generator, seconds: float) -> Utterance:
    """Sounds that must leave the mouth shut: breaths, clicks, hum, keyboard-like taps, hiss."""
    from engines.speech.training.utterance import PhoneSpan

    n = int(seconds * SAMPLE_RATE)
    out = rng.standard_normal(n) * 10 ** (rng.uniform(-70, -40) / 20)
    t = np.arange(n) / SAMPLE_RATE
    for _ in range(int(rng.integers(1, 5))):
        kind = rng.integers(3)
        start = int(rng.uniform(0, max(seconds - 0.7, 0.01)) * SAMPLE_RATE)
        if kind == 0:  # a breath: smoothed noise swelling for 0.3-0.8 s
            length = int(rng.uniform(0.3, 0.8) * SAMPLE_RATE)
            swell = np.sin(np.pi * np.arange(length) / length) ** 2
            smooth = int(rng.integers(2, 16))
            noise = np.convolve(rng.standard_normal(length), np.ones(smooth) / smooth, "same")
            burst = noise * swell * 10 ** (rng.uniform(-40, -15) / 20)
        elif kind == 1:  # a click or tap
            length = int(0.02 * SAMPLE_RATE)
            burst = rng.standard_normal(length) * np.exp(-np.arange(length) / 40.0) * 0.3
        else:  # a hum
            length = int(rng.uniform(0.3, 1.0) * SAMPLE_RATE)
            burst = np.sin(2 * np.pi * rng.choice([50.0, 60.0, 120.0]) * t[:length]) * 0.05
        end = min(n, start + length)
        out[start:end] += burst[: end - start]
    audio = np.clip(out, -1, 1).astype(np.float32)
    return Utterance(audio, (PhoneSpan(0.0, seconds, "SIL"),), "noise", "")
