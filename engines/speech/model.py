"""The shipped lip-sync network, run by ONNX Runtime on the CPU.

The ONNX file describes itself: its metadata holds the window (past context and lookahead in
feature frames), the viseme order and the running mean's starting point.

The shipped model must have the SHA-256 pinned here. Another model (``$AVATAR_LIPSYNC_MODEL``
or a path given in code: a developer trying a retrained network) is checked against the
``sha256`` that training records in the ``.json`` beside it: a mismatch means the file changed
after training wrote it and is refused; a model with no recorded digest is loaded with a
warning naming it, because an override exists to load models this code cannot know in advance.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.errors import EngineUnavailable, ModelMissing
from engines.model_cache import cached_sha256, check_sha256
from engines.resources import resources_dir
from engines.speech.features import BANDS, HOP, RATE, WINDOW
from engines.speech.visemes import VISEMES

log = logging.getLogger(__name__)

MODEL_ENV = "AVATAR_LIPSYNC_MODEL"
SHIPPED_SHA256 = "55f59979c94a5dda954ce06365a8083bddfba0db64ca11ec605913689e45ec6f"
"""Of ``resources/models/lipsync.onnx`` (also in its card, ``lipsync.md``)."""


def shipped_model_path() -> Path:
    return resources_dir() / "models" / "lipsync.onnx"


def default_model_path() -> Path:
    """``$AVATAR_LIPSYNC_MODEL`` if set, else the model shipped in ``resources/models``."""
    override = os.environ.get(MODEL_ENV)
    return Path(override).expanduser() if override else shipped_model_path()


def check_model_digest(path: Path) -> None:
    """Refuse a lip-sync model that is not what was shipped or trained (see the module doc)."""
    if path.resolve() == shipped_model_path().resolve():
        check_sha256(
            path,
            SHIPPED_SHA256,
            "Reinstall avatar-app to restore the shipped model (after retraining it in place, "
            "put its new SHA-256 in SHIPPED_SHA256 in engines/speech/model.py and in its card).",
        )
        return
    card = path.with_suffix(".json")
    try:
        recorded = json.loads(card.read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if isinstance(recorded, str):
        check_sha256(
            path,
            recorded,
            f"It changed after training wrote {card}: train it again, or unset {MODEL_ENV} "
            "to use the shipped model.",
        )
        return
    log.warning(
        "Using the lip-sync model %s (SHA-256 %s), whose digest nothing records: %s has no "
        '"sha256" from training. Unset %s to use the shipped model.',
        path,
        cached_sha256(path),
        card,
        MODEL_ENV,
    )


@dataclass(frozen=True)
class Prediction:
    """Per feature frame: viseme probabilities [n, 15] and jaw opening [n] in 0..1."""

    visemes: np.ndarray
    jaw: np.ndarray


class LipSyncModel:
    """``predict(windows)`` for windows of normalised features, one thread by default."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        self.path = path or default_model_path()
        if not self.path.is_file():
            raise ModelMissing(
                f"The lip-sync model {self.path} is missing. Reinstall avatar-app, or point "
                f"{MODEL_ENV} at a lipsync.onnx trained with "
                "`python -m engines.speech.training.train`."
            )
        check_model_digest(self.path)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineUnavailable(
                "ONNX Runtime is not installed: run `pip install onnxruntime`."
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelMissing(
                f"The lip-sync model {self.path} cannot be loaded ({exc}). Reinstall avatar-app."
            ) from exc
        meta = {
            k: json.loads(v) for k, v in self._session.get_modelmeta().custom_metadata_map.items()
        }
        self.context = int(meta["context"])
        self.lookahead = int(meta["lookahead"])
        self.initial_mean = np.asarray(meta["initial_mean"], np.float64)
        if meta["visemes"] != list(VISEMES) or int(meta["bands"]) != BANDS:
            raise ModelMissing(
                f"The lip-sync model {self.path} was made for other features or visemes; "
                "reinstall avatar-app or retrain it."
            )

    @property
    def window(self) -> int:
        return self.context + 1 + self.lookahead

    @property
    def lookahead_seconds(self) -> float:
        """How far past a frame's centre the audio must reach before it can be predicted."""
        return (self.lookahead * HOP + WINDOW / 2) / RATE

    def predict(self, windows: np.ndarray) -> Prediction:
        """[n, window, BANDS] float32 -> a Prediction of n frames."""
        if len(windows) == 0:
            return Prediction(np.zeros((0, len(VISEMES)), np.float32), np.zeros(0, np.float32))
        probs, jaw = self._session.run(None, {"features": windows.astype(np.float32)})
        return Prediction(np.asarray(probs), np.asarray(jaw).reshape(-1))
