"""English sentences to speak for training: prose from the docstrings of Python's own
standard library (always present, plenty of varied wording), cleaned to plain words.
The list depends on the Python version (the model was trained on CPython 3.11.7)."""

from __future__ import annotations

import importlib
import re
import sys
import warnings

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"^[A-Za-z][A-Za-z',-]*[.,!?;:]?$")


def _docstrings() -> list[str]:
    texts: list[str] = []
    names = sorted(name for name in sys.stdlib_module_names if not name.startswith("_"))
    for name in names:
        if name in {"antigravity", "this", "idlelib", "turtledemo", "tkinter", "test"}:
            continue
        # Old modules warn about deprecations when imported or read: not our concern here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                module = importlib.import_module(name)
            except Exception:  # any module that cannot be imported on this system is skipped
                continue
            texts.append(module.__doc__ or "")
            for value in vars(module).values():
                doc = getattr(value, "__doc__", None)
                if isinstance(doc, str) and getattr(value, "__module__", None) == name:
                    texts.append(doc)
    return texts


def sentences(min_words: int = 4, max_words: int = 22) -> list[str]:
    """Distinct sentences made only of ordinary words, sorted so the list is reproducible."""
    found: set[str] = set()
    for text in _docstrings():
        for chunk in _SENTENCE_END.split(" ".join(text.split())):
            words = chunk.split()
            if not min_words <= len(words) <= max_words:
                continue
            if all(_WORD.match(word) for word in words) and chunk[-1] in ".!?":
                found.add(chunk)
    return sorted(found)
