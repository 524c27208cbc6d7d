"""Where downloaded models live, and SHA-256 checks of model files, for every engine.

Models are cached per user in ``$XDG_CACHE_HOME/avatar-app/models`` (default
``~/.cache/avatar-app/models``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# (resolved path, size, mtime_ns) -> sha256 hex digest, so a file is hashed once per change.
_digests: dict[tuple[str, int, int], str] = {}


def user_model_dir() -> Path:
    """Per-user folder for downloaded models (it may not exist yet)."""
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "avatar-app" / "models"


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
