"""avatar-app doctor: the checks on this machine (no devices, models bundled) and the report."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from avatar_app.live import doctor
from avatar_app.live.doctor import Check, format_report, run_checks


@pytest.fixture(scope="module")
def checks() -> list[Check]:
    return run_checks()


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_checks_are_named_and_unique(checks: list[Check]) -> None:
    names = [c.name for c in checks]
    assert len(names) == len(set(names))
    for expected in (
        "package mediapipe",
        "package onnxruntime",
        "package sounddevice",
        "package pyvirtualcam",
        "package PySide6",
        "audio (PortAudio)",
        "microphone",
        "webcam",
        "virtual camera",
    ):
        assert expected in names
    assert all(c.detail for c in checks)
    assert all(c.fix for c in checks if not c.ok)


def test_bundled_models_pass(checks: list[Check]) -> None:
    by_name = _by_name(checks)
    assert by_name["model face_landmarker.task"].ok
    assert by_name["model lipsync.onnx"].ok


@pytest.mark.skipif(
    platform.system() != "Linux" or Path("/sys/module/v4l2loopback").exists(),
    reason="needs a Linux machine without v4l2loopback",
)
def test_virtual_camera_fails_here_with_the_v4l2loopback_fix(checks: list[Check]) -> None:
    vcam = _by_name(checks)["virtual camera"]
    assert not vcam.ok
    assert vcam.required
    assert "v4l2loopback" in vcam.fix
    assert "modprobe v4l2loopback exclusive_caps=1" in vcam.fix


def test_report_names_every_check_and_its_fix(checks: list[Check]) -> None:
    report = format_report(checks)
    for check in checks:
        assert check.name in report
        if not check.ok:
            assert check.fix in report
    assert ("FAIL" in report) == any(c.required and not c.ok for c in checks)


def test_report_markers() -> None:
    report = format_report(
        [
            Check("alpha", True, "fine"),
            Check("beta", False, "broken", "do this"),
            Check("gamma", False, "absent", "maybe that", required=False),
        ]
    )
    lines = report.splitlines()
    assert any(line.split()[:2] == ["ok", "alpha"] for line in lines)
    assert any(line.split()[:2] == ["FAIL", "beta"] for line in lines)
    assert any(line.split()[:2] == ["warn", "gamma"] for line in lines)
    assert "fix: do this" in report
    assert "1 problem(s) to fix: beta." in report


def test_run_checks_does_not_import_the_gui() -> None:
    # In a fresh interpreter: other tests in this process may have loaded Qt.
    code = (
        "import sys; from avatar_app.live.doctor import run_checks; run_checks(); "
        "sys.exit('PySide6' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_a_crashing_check_becomes_a_failed_check() -> None:
    def boom() -> Check:
        raise RuntimeError("kaput")

    check = doctor._guarded("broken", boom)
    assert not check.ok
    assert "kaput" in check.detail


def test_two_opencv_distributions_are_reported() -> None:
    package = next(p for p in doctor.PACKAGES if p.module == "cv2")
    check = doctor._package(package, {"cv2": ["opencv-python", "opencv-contrib-python"]})
    assert not check.ok
    assert "pip install opencv-contrib-python" in check.fix
    assert "pip uninstall" in check.fix


def test_a_missing_package_names_its_install_command() -> None:
    package = doctor._Package("no_such_module_xyz", "pip install xyz", "nothing")
    check = doctor._package(package, {})
    assert not check.ok
    assert check.fix == "pip install xyz"


def test_high_device_numbers_warn_about_zoom() -> None:
    check = doctor._device_number([(12, "Avatar")])
    assert not check.ok
    assert not check.required
    assert "video_nr=" in check.fix
    assert doctor._device_number([(2, "Avatar")]).ok


@pytest.mark.parametrize("system", ["Darwin", "Windows"])
def test_elsewhere_the_fix_is_the_obs_virtual_camera(system: str) -> None:
    if doctor._obs_install(system) is not None:
        pytest.skip("OBS Studio is installed here")
    check = doctor._obs_virtual_camera(system)
    assert not check.ok
    assert "OBS Studio 30" in check.fix
    assert ("system extension" in check.fix) == (system == "Darwin")


def test_the_neural_engine_check_says_what_to_do_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVATAR_LIVEPORTRAIT_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("AVATAR_LIVEPORTRAIT_ONNX", str(tmp_path / "onnx"))
    check = doctor._neural_engine()
    assert not check.ok and not check.required
    assert "models fetch liveportrait" in check.fix
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "manifest.json").write_text("{}")
    check = doctor._neural_engine()
    assert check.ok and "CPU only" in check.detail
