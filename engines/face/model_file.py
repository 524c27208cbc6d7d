"""Finds and verifies the FaceLandmarker model file (``face_landmarker.task``).

Search order: ``$AVATAR_FACE_LANDMARKER``, the copy bundled in ``resources/models``, then the
user's model cache (:func:`engines.model_cache.user_model_dir`), where
``avatar_app.model_fetch`` downloads it. Whatever is returned has the expected SHA-256.
"""

from __future__ import annotations

import os
from pathlib import Path

from engines.errors import ModelMissing
from engines.model_cache import cached_sha256, user_model_dir
from engines.resources import resources_dir

FILE_NAME = "face_landmarker.task"
SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
SIZE = 3_758_596
URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/"
    "float16/1/face_landmarker.task"
)
ENV_VAR = "AVATAR_FACE_LANDMARKER"


def candidate_paths() -> list[Path]:
    """Where the model is looked for, in order."""
    paths = [resources_dir() / "models" / FILE_NAME, user_model_dir() / FILE_NAME]
    override = os.environ.get(ENV_VAR)
    if override:
        paths.insert(0, Path(override).expanduser())
    return paths


def face_landmarker_path() -> Path:
    """The first candidate that exists and has the expected SHA-256.

    Raises ModelMissing when none does. A file named by ``$AVATAR_FACE_LANDMARKER`` must
    exist and match: a wrong override is an error, not something to skip silently.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ModelMissing(
                f"{ENV_VAR} points at {path}, which is not a file. Fix the path or unset "
                f"{ENV_VAR} to use the bundled model."
            )
        _check_digest(path, f"the file named by {ENV_VAR}")
        return path
    rejected: list[str] = []
    for path in candidate_paths():
        if not path.is_file():
            continue
        if cached_sha256(path) == SHA256:
            return path
        rejected.append(str(path))
    looked = ", ".join(str(p) for p in candidate_paths())
    damaged = f" Damaged copies (wrong checksum): {', '.join(rejected)}." if rejected else ""
    raise ModelMissing(
        f"The face landmark model {FILE_NAME} was not found (looked in {looked}).{damaged} "
        "Run `avatar-app models fetch face-landmarker` (or download it from "
        f"{URL} into {user_model_dir()}), "
        f"or point {ENV_VAR} at a copy of the file."
    )


def _check_digest(path: Path, what: str) -> None:
    actual = cached_sha256(path)
    if actual != SHA256:
        raise ModelMissing(
            f"{what} ({path}) is not the expected {FILE_NAME}: its SHA-256 is {actual}, "
            f"expected {SHA256}. Replace it with the file from {URL}."
        )
