"""One version, in pyproject.toml, shown by ``--version`` and the About dialog; resources found
in the source tree and inside a frozen bundle."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from avatar_app.cli import main
from engines.resources import resources_dir

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def test_version_option_prints_the_pyproject_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"avatar-app {_pyproject_version()}"


def test_about_shows_the_version_and_where_the_log_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("PySide6.QtWidgets")
    from ui.dialogs import about_text

    monkeypatch.setenv("AVATAR_APP_CONFIG_DIR", str(tmp_path))
    text = about_text()
    assert f"avatar-app {_pyproject_version()}" in text
    assert str(tmp_path / "logs" / "avatar-app.log") in text
    assert "Apache-2.0" in text  # the face landmarker's licence


def test_resources_in_the_source_tree() -> None:
    assert resources_dir() == ROOT / "resources"
    assert (resources_dir() / "models" / "lipsync.onnx").is_file()


def test_resources_inside_a_frozen_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AVATAR_APP_RESOURCES", raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources_dir() == tmp_path / "resources"
