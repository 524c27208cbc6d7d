"""Recorded speech with exact transcripts from The Ur-Quan Masters' 3DO voice pack.

Debian ``uqm-voice`` (non-free) holds ``uqm-0.8.0-voice.uqm``, a zip of Ogg Vorbis clips
(11.025 kHz mono) in one folder per alien race, each race voiced by its own actor; Debian
``uqm-content`` holds the game text. The voice pack's ``3dovoice.rmp`` names, per race, the
dialogue text file (``#(KEY)<TAB>clip.ogg`` then the spoken lines) and the clip folder.

Licence: CC BY-NC-SA 2.5 (non-commercial). Used for evaluation only, never to train the model
we ship. Several voices are processed (pitched, filtered, vocoded) to sound alien; callers
filter them by how well the alignment agrees with free phone recognition.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.speech.training.utterance import to_16k

LICENCE = "CC BY-NC-SA 2.5 (The Ur-Quan Masters content; evaluation only)"
VOICE_PACK = "usr/share/games/uqm/content/addons/uqm-0.8.0-voice.uqm"
CONTENT_PACK = "usr/share/games/uqm/content/packages/uqm-0.8.0-content.uqm"
PACKAGES = ("uqm-voice", "uqm-content")

# Folders that may share an actor are one speaker, so a held-out speaker is never split.
SAME_SPEAKER = {
    "commander": "starbase",  # Commander Hayes, before and after the starbase is freed
    "yehatrebels": "yehat",
    "kohrah": "urquan",
}
NOT_HUMAN = frozenset({"probe"})  # a synthesised robot voice

_RMP_LINE = re.compile(r"comm\.(\w+)\.dialogue\s*=\s*CONVERSATION:([^:]+):([^:]+):")
_KEY_LINE = re.compile(r"#\((\w+)\)\s*(\S+\.ogg)?")


@dataclass(frozen=True)
class UqmClip:
    race: str  # the clip's folder
    speaker: str  # "uqm-<race>" after merging folders that may share an actor
    name: str  # path of the Ogg file inside the voice pack
    transcript: str


def speaker_of(race: str) -> str:
    return "uqm-" + SAME_SPEAKER.get(race, race)


def parse_dialogue(text: str) -> dict[str, str]:
    """``#(KEY)<TAB>clip.ogg`` blocks -> {clip file name: its lines joined by spaces}."""
    clips: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []

    def close() -> None:
        if current is not None and " ".join(lines).strip():
            clips[current] = " ".join(" ".join(lines).split())

    for line in text.splitlines():
        match = _KEY_LINE.match(line)
        if match:
            close()
            current, lines = match.group(2), []
        elif current is not None:
            lines.append(line.strip())
    close()
    return clips


def _pack_path(reference: str) -> tuple[str, str]:
    """An rmp path (``addons/3dovoice/x.txt`` or ``base/comm/x.txt``) -> (pack, name inside)."""
    if reference.startswith("addons/"):
        return "voice", reference.removeprefix("addons/")
    return "content", reference


def uqm_clips(root: Path) -> list[UqmClip]:
    """Every voiced line with its transcript, from the packages unpacked under ``root``."""
    packs = {
        "voice": zipfile.ZipFile(root / VOICE_PACK),
        "content": zipfile.ZipFile(root / CONTENT_PACK),
    }
    try:
        names = set(packs["voice"].namelist())
        rmp = packs["voice"].read("3dovoice/3dovoice.rmp").decode("latin-1")
        clips = []
        for race, dialogue, folder in _RMP_LINE.findall(rmp):
            if race in NOT_HUMAN:
                continue
            pack, inside = _pack_path(dialogue)
            text = packs[pack].read(inside).decode("latin-1")
            clip_folder = _pack_path(folder)[1]
            for ogg, transcript in sorted(parse_dialogue(text).items()):
                name = clip_folder.rstrip("/") + "/" + ogg
                if name in names:
                    clips.append(UqmClip(race, speaker_of(race), name, transcript))
        return clips
    finally:
        for zipped in packs.values():
            zipped.close()


def load_clip(root: Path, clip: UqmClip) -> np.ndarray:
    """The clip as float32 mono 16 kHz."""
    import av

    with zipfile.ZipFile(root / VOICE_PACK) as pack:
        data = pack.read(clip.name)
    with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        parts = [frame.to_ndarray() for frame in container.decode(stream)]
    pcm = np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1).mean(axis=0)
    if np.issubdtype(pcm.dtype, np.integer):
        pcm = pcm.astype(np.float32) / 32768.0
    return to_16k(pcm.astype(np.float32), rate)
