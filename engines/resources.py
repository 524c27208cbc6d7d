"""Where the files shipped in ``resources/`` live: in the source tree or inside a bundle."""

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder: ``$AVATAR_APP_RESOURCES``, else the one inside a frozen
    bundle (PyInstaller unpacks data files under ``sys._MEIPASS``), else the one beside the
    packages."""
    override = os.environ.get("AVATAR_APP_RESOURCES")
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
