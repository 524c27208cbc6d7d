"""Who may import whom: ui -> avatar_app -> engines, and Qt only inside ui."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for name in _imports(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


def test_engines_import_neither_app_nor_ui() -> None:
    assert _violations("engines", ("avatar_app", "ui", "PySide6")) == []


def test_app_imports_neither_ui_nor_qt() -> None:
    assert _violations("avatar_app", ("ui", "PySide6")) == []


@pytest.mark.parametrize("package", ["engines", "avatar_app", "ui"])
def test_no_relative_imports_hide_the_layering(package: str) -> None:
    for path in (REPO / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
        assert relative == [], f"{path.relative_to(REPO)} uses a relative import"


def test_importing_the_app_does_not_load_qt() -> None:
    script = (
        "import sys\n"
        "import avatar_app.cli, avatar_app.framing, avatar_app.sweep, avatar_app.video_writer\n"
        "import engines.controls, engines.renderer, engines.face.landmarker\n"
        "assert 'PySide6' not in sys.modules, sorted(m for m in sys.modules if 'PySide' in m)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
