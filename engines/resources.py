"""Where the files shipped in ``resources/`` live."""

import os
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder: ``$AVATAR_APP_RESOURCES`` or the one beside the packages."""
    override = os.environ.get("AVATAR_APP_RESOURCES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "resources"
