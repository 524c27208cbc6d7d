"""Where downloaded models live, and SHA-256 checks of model files, for every engine.

Models are cached per user in ``$XDG_CACHE_HOME/avatar-app/models`` (default
``~/.cache/avatar-app/models``).

Every model file is checked against the SHA-256 its manifest records before it is loaded
(:func:`check_sha256`). Hashing runs at roughly 0.7-0.9 GB/s here, so the half gigabyte of
LivePortrait networks would add most of a second to every start: a file of
:data:`SIDECAR_MIN_BYTES` or more gets a small ``<file>.verified`` sidecar recording its digest
with its size, mtime, ctime and inode, and is hashed again only when one of those changes.
Any write, rename or ``touch`` of the file changes its ctime, which no user can set back, so
a replaced or damaged file is always hashed again. The sidecar guards against accidents and
stale files, not against someone who can write to the folder (they could change the code too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from engines.errors import ModelMissing

log = logging.getLogger(__name__)

SIDECAR_MIN_BYTES = 16 << 20
"""Files at least this big remember their verified digest in a sidecar; smaller ones are hashed
(in a few milliseconds) once per process."""
SIDECAR_SUFFIX = ".verified"

# (resolved path, size, mtime_ns, ctime_ns, inode) -> sha256 hex digest, so a file is hashed
# once per change (the ctime catches a rewrite whose size and mtime were put back).
_digests: dict[tuple[str, int, int, int, int], str] = {}


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
    """``sha256_of(path)``, remembered in this process while the file stays the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    if key not in _digests:
        _digests[key] = sha256_of(path)
    return _digests[key]


def check_sha256(path: Path, expected: str, fix: str) -> Path:
    """``path`` if its SHA-256 is ``expected``; otherwise ModelMissing ending with ``fix``.

    ``fix`` tells the user what to do, e.g. "Run `avatar-app models fetch` again (or delete
    the file)."
    """
    try:
        actual = known_sha256(path)
    except OSError as exc:
        raise ModelMissing(f"{path} cannot be read ({exc.strerror or exc}). {fix}") from exc
    if actual != expected:
        raise ModelMissing(
            f"{path} is damaged or not the expected file: its SHA-256 is {actual}, the manifest "
            f"records {expected}. {fix}"
        )
    return path


def known_sha256(path: Path) -> str:
    """``path``'s SHA-256, from its ``.verified`` sidecar when the file has not changed since."""
    stat = path.stat()
    if stat.st_size < SIDECAR_MIN_BYTES:
        return cached_sha256(path)
    identity = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
    }
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        recorded = json.loads(sidecar.read_text())
        if isinstance(recorded, dict) and recorded.get("file") == identity:
            digest = recorded.get("sha256")
            if isinstance(digest, str):
                return digest
    except (OSError, ValueError):
        pass  # no sidecar yet, or an unreadable one: hash the file
    digest = cached_sha256(path)
    try:
        sidecar.write_text(json.dumps({"sha256": digest, "file": identity}) + "\n")
    except OSError as exc:  # a read-only folder: hash again next time
        log.debug("Cannot remember the digest of %s in %s: %s", path, sidecar, exc)
    return digest
