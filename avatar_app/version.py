"""The app's version: written once, in pyproject.toml, and read from the installed metadata
(which a bundle carries too), so ``--version``, the About dialog and the bundle's name agree."""

from importlib import metadata

DISTRIBUTION = "avatar-app"


def app_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: run `pip install -e .` in the source tree)"
