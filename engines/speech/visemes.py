"""The 15 visemes (MPEG-4 / OVR set), which phones make them, and the mouth shape of each.

Phones are ARPAbet without stress digits, or ``SIL``. espeak-ng reports IPA, which
``ipa_to_arpabet`` maps to the nearest English phone so that any voice or language can label
training audio.
"""

from __future__ import annotations

from engines.controls import FaceControls

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
VISEME_INDEX = {name: i for i, name in enumerate(VISEMES)}

_VISEME_PHONES = {
    "sil": "SIL",
    "PP": "P B M",
    "FF": "F V",
    "TH": "TH DH",
    "DD": "T D",
    "kk": "K G HH",
    "CH": "CH JH SH ZH",
    "SS": "S Z",
    "nn": "N NG L",
    "RR": "R ER",
    "aa": "AA AE AH AY AW",
    "E": "EH EY",
    "ih": "IH IY Y",
    "oh": "AO OW OY",
    "ou": "UW UH W",
}
PHONE_TO_VISEME = {
    phone: viseme for viseme, phones in _VISEME_PHONES.items() for phone in phones.split()
}
PHONES = tuple(PHONE_TO_VISEME)

# How far each phone opens the jaw, 0..1 (FaceControls.jaw_open): the regression target.
_JAW = {
    "SIL": 0.0, "P": 0.0, "B": 0.0, "M": 0.0, "F": 0.05, "V": 0.05, "TH": 0.12, "DH": 0.1,
    "T": 0.12, "D": 0.12, "K": 0.2, "G": 0.18, "HH": 0.3, "CH": 0.1, "JH": 0.1, "SH": 0.1,
    "ZH": 0.1, "S": 0.06, "Z": 0.06, "N": 0.12, "NG": 0.2, "L": 0.2, "R": 0.15, "ER": 0.25,
    "AA": 0.75, "AE": 0.6, "AH": 0.5, "AY": 0.6, "AW": 0.6, "EH": 0.45, "EY": 0.35,
    "IH": 0.25, "IY": 0.18, "Y": 0.15, "AO": 0.55, "OW": 0.4, "OY": 0.45, "UW": 0.15,
    "UH": 0.25, "W": 0.1,
}  # fmt: skip
PHONE_JAW = _JAW


def mouth_shape(viseme: str) -> FaceControls:
    """The mouth pose of a viseme, held; jaw_open here is the viseme's typical opening."""
    return _SHAPES[viseme]


def _shape(jaw: float, wide: float = 0.0, round_: float = 0.0, press: float = 0.0) -> FaceControls:
    return FaceControls(jaw_open=jaw, mouth_wide=wide, mouth_round=round_, lip_press=press)


_SHAPES = {
    "sil": _shape(0.0),
    "PP": _shape(0.0, press=1.0),
    "FF": _shape(0.07, wide=0.15, press=0.0),
    "TH": _shape(0.12, wide=0.05),
    "DD": _shape(0.14, wide=0.1),
    "kk": _shape(0.2, wide=0.05),
    "CH": _shape(0.1, wide=-0.25, round_=0.45),
    "SS": _shape(0.06, wide=0.3),
    "nn": _shape(0.15, wide=0.05),
    "RR": _shape(0.16, wide=-0.1, round_=0.35),
    "aa": _shape(0.7, wide=0.1),
    "E": _shape(0.42, wide=0.35),
    "ih": _shape(0.22, wide=0.45),
    "oh": _shape(0.48, wide=-0.2, round_=0.6),
    "ou": _shape(0.16, wide=-0.35, round_=1.0),
}

# IPA (as espeak-ng writes it, stress and length marks removed) to the nearest ARPAbet phone.
_IPA = {
    "p": "P", "b": "B", "m": "M", "ɱ": "M", "f": "F", "v": "V", "ʋ": "V", "β": "V", "ɸ": "F",
    "θ": "TH", "ð": "DH", "t": "T", "d": "D", "ɾ": "D", "ʈ": "T", "ɖ": "D", "ʔ": "T",
    "k": "K", "g": "G", "ɡ": "G", "q": "K", "x": "HH", "ɣ": "G", "χ": "HH", "h": "HH",
    "ɦ": "HH", "ħ": "HH", "ç": "HH", "tʃ": "CH", "dʒ": "JH", "ʃ": "SH", "ʒ": "ZH", "ɕ": "SH",
    "ʑ": "ZH", "ʂ": "SH", "ʐ": "ZH", "ts": "S", "dz": "Z", "s": "S", "z": "Z", "n": "N",
    "ɲ": "N", "ɳ": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "ʎ": "L", "ɭ": "L", "ɬ": "L",
    "r": "R", "ɹ": "R", "ʁ": "R", "ʀ": "R", "ɻ": "R", "w": "W", "ʍ": "W", "j": "Y", "ɥ": "W",
    "i": "IY", "iː": "IY", "ɪ": "IH", "ᵻ": "IH", "ɨ": "IH", "y": "UW", "ʏ": "UH", "e": "EY",
    "eɪ": "EY", "ɛ": "EH", "ø": "OW", "œ": "AO", "æ": "AE", "a": "AA", "ɐ": "AH", "ɑ": "AA",
    "ɒ": "AO", "ɔ": "AO", "o": "OW", "oʊ": "OW", "əʊ": "OW", "ʊ": "UH", "u": "UW",
    "ʉ": "UW", "ɯ": "UW",
    "ʌ": "AH", "ə": "AH", "ɚ": "ER", "ɜ": "ER", "ɝ": "ER", "aɪ": "AY", "ɔɪ": "OY",
    "aʊ": "AW", "ɪə": "IH", "eə": "EH", "ʊə": "UH", "ɤ": "UH", "ɵ": "UH", "ɘ": "AH",
}  # fmt: skip
_IGNORED = "ˈˌːˑ̩̯̃͡‿ʰʲʷ̪̥-_'^"


def ipa_to_arpabet(ipa: str) -> str:
    """Map one espeak-ng IPA phoneme to ARPAbet; pauses and unknown symbols become ``SIL``."""
    clean = "".join(ch for ch in ipa if ch not in _IGNORED)
    if not clean:
        return "SIL"
    if clean in _IPA:
        return _IPA[clean]
    # Diphthongs and clusters espeak spells as one phoneme: the first known part shapes the mouth.
    for length in (2, 1):
        if clean[:length] in _IPA:
            return _IPA[clean[:length]]
    return "SIL"
