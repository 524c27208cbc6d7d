"""Finds and verifies the FaceLandmarker model file (``face_landmarker.task``).

Search order: ``$AVATAR_FACE_LANDMARKER``, the copy bundled in ``resources/models``, then the
user cache (``$XDG_CACHE_HOME/avatar-app/models`` or ``~/.cache/avatar-app/models``), where
``avatar_app.model_fetch`` downloads it. Whatever is returned has the expected SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engines.errors import ModelMissing
from engines.resources import resources_dir

FILE_NAME = "face_landmarker.task"
SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
SIZE = 3_758_596
URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/"
    "float16/1/face_landmarker.task"
)
ENV_VAR = "AVATAR_FACE_LANDMARKER"

# (resolved path, size, mtime_ns) -> sha256 hex digest, so a file is hashed once per change.
_digests: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """``sha256_of(path)``, remembered for as long as the file's size and mtime stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_of(path)
    return _digests[key]


def user_model_dir() -> Path:
    """Per-user folder for downloaded models (it may not exist yet)."""
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "avatar-app" / "models"


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
