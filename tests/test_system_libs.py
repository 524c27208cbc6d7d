"""Before the window opens on Linux, missing system libraries are named with the packages to
install, instead of Qt aborting with its plugin message."""

from __future__ import annotations

import sys

import pytest

from avatar_app.exit_codes import EXIT_USER_ERROR
from ui import launcher, system_libs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_nothing_is_missing_here() -> None:
    assert system_libs.missing_packages() == []


def test_a_missing_xcb_library_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(system_libs, "_loadable", lambda soname: soname != "libxcb-cursor.so.0")
    assert system_libs.missing_packages() == ["libxcb-cursor0"]


def test_the_xcb_libraries_are_not_needed_offscreen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(system_libs, "_loadable", lambda soname: soname != "libxcb-cursor.so.0")
    assert system_libs.missing_packages() == []


def test_the_launcher_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(system_libs, "missing_packages", lambda: ["libxcb-cursor0", "libgles2"])
    assert launcher.open_window(start_in_tray=False) == EXIT_USER_ERROR
    assert "sudo apt-get install libxcb-cursor0 libgles2" in capsys.readouterr().err
