"""Finds the FaceLandmarker model file (``face_landmarker.task``) without a model hub."""

import hashlib
import os
from pathlib import Path

from engines.errors import ModelMissing
from engines.resources import resources_dir

FILE_NAME = "face_landmarker.task"
SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
ENV_VAR = "AVATAR_FACE_LANDMARKER"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def face_landmarker_path() -> Path:
    """``$AVATAR_FACE_LANDMARKER``, else the copy bundled in ``resources/models``."""
    override = os.environ.get(ENV_VAR)
    candidates = [Path(override)] if override else [resources_dir() / "models" / FILE_NAME]
    for path in candidates:
        if path.is_file():
            return path
    raise ModelMissing(
        f"The face landmark model {FILE_NAME} was not found at {candidates[0]}. "
        f"Reinstall avatar-app, or point {ENV_VAR} at a copy of the file."
    )
