"""Checks what going live needs on this machine and says how to fix what is missing.

``run_checks()`` never raises: a check that crashes is reported as a failed check. It imports
no GUI and opens no virtual camera; on Windows and macOS it does not open webcams either (that
could raise the OS permission prompt), so those are checked when live starts.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import plistlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from avatar_app.live.virtual_camera import LOAD_LOOPBACK, open_fix, virtual_camera_backends

LOOPBACK_MARKERS = ("loopback", "avatar", "obs")
"""A /sys/class/video4linux/*/name containing one of these (any case) is a virtual camera."""
ZOOM_MAX_DEVICE = 9
"""Zoom is known to miss video devices numbered above about 10."""
OBS_MIN_MAJOR = 30

LINUX_VCAM_FIX = (
    "Run packaging/linux/setup-virtual-camera.sh (in the app's folder; it explains each step "
    "and asks before using sudo), or by hand: install v4l2loopback (`sudo apt install "
    f"v4l2loopback-dkms`, or your distribution's v4l2loopback package), then run "
    f"`{LOAD_LOOPBACK}`. To load it at every boot, put `v4l2loopback` in "
    "/etc/modules-load.d/v4l2loopback.conf and `options v4l2loopback exclusive_caps=1 "
    'card_label="Avatar Camera"` in /etc/modprobe.d/v4l2loopback.conf.'
)
RELOAD_LOOPBACK = f"sudo modprobe -r v4l2loopback && {LOAD_LOOPBACK} video_nr=9"


@dataclass(frozen=True)
class Check:
    """One line of the report; ``fix`` says what to do when ``ok`` is False.

    A check that is not ``required`` (e.g. the GUI package, a webcam) only warns.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


@dataclass(frozen=True)
class _Package:
    module: str
    install: str
    purpose: str
    required: bool = True
    keep: str | None = None  # the one distribution to keep when several share the folder


PACKAGES = (
    _Package("mediapipe", "pip install mediapipe==1.2.2", "face landmarks"),
    _Package("cv2", "pip install opencv-contrib-python", "images", keep="opencv-contrib-python"),
    _Package(
        "onnxruntime",
        "pip install onnxruntime (for CUDA: onnxruntime-gpu instead, never both)",
        "the lip-sync model",
        keep="onnxruntime",
    ),
    _Package("sounddevice", "pip install sounddevice", "the microphone"),
    _Package("pyvirtualcam", "pip install pyvirtualcam", "the virtual camera"),
    _Package(
        "PySide6",
        "pip install 'avatar-app[gui]' (PySide6-Essentials)",
        "the window app only",
        required=False,
    ),
)


def run_checks() -> list[Check]:
    """Every check, in the order a user would fix them."""
    system = platform.system()
    distributions = metadata.packages_distributions()
    checks = [_guarded(f"package {p.module}", _package_check(p, distributions)) for p in PACKAGES]
    checks.append(_guarded("model face_landmarker.task", _face_model))
    checks.append(_guarded("model lipsync.onnx", _lipsync_model))
    checks.append(_guarded("neural engine (optional)", _neural_engine))
    checks.append(_guarded("audio (PortAudio)", lambda: _portaudio(system)))
    checks.append(_guarded("microphone", lambda: _microphone(system)))
    checks.append(_guarded("webcam", lambda: _webcam(system)))
    checks.extend(_virtual_camera_checks(system))
    return checks


def format_report(checks: list[Check]) -> str:
    """Plain text: ``ok``/``FAIL``/``warn``, the name, the detail, and the fix under failures."""
    width = max((len(c.name) for c in checks), default=0)
    python = sys.version.split()[0]
    lines = [f"avatar-app doctor: {platform.system()} {platform.release()}, Python {python}"]
    for check in checks:
        marker = "ok" if check.ok else ("FAIL" if check.required else "warn")
        lines.append(f"  {marker:<4}  {check.name:<{width}}  {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"  {'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = [c.name for c in checks if c.required and not c.ok]
    lines.append(
        f"{len(failed)} problem(s) to fix: {', '.join(failed)}."
        if failed
        else "Everything needed to go live is in place."
    )
    return "\n".join(lines)


def main() -> int:
    """Print the report; exit status 1 when a required check fails."""
    checks = run_checks()
    print(format_report(checks))
    return 1 if any(c.required and not c.ok for c in checks) else 0


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; a crash becomes a failed check instead of ending the report."""
    try:
        return check()
    except Exception as exc:
        return Check(name, False, f"the check itself failed: {exc!r}", "Report this as a bug.")


# Packages


def _package_check(
    package: _Package, distributions: Mapping[str, list[str]]
) -> Callable[[], Check]:
    return lambda: _package(package, distributions)


def _package(package: _Package, distributions: Mapping[str, list[str]]) -> Check:
    name = f"package {package.module}"
    if importlib.util.find_spec(package.module) is None:
        return Check(
            name,
            False,
            f"not installed (needed for {package.purpose})",
            package.install,
            package.required,
        )
    dists = sorted(set(distributions.get(package.module, [])))
    if package.keep is not None and len(dists) > 1:
        return Check(
            name,
            False,
            f"{' and '.join(dists)} are installed into the same {package.module}/ folder",
            f"pip uninstall -y {' '.join(dists)} && pip install {package.keep}",
            package.required,
        )
    versions = ", ".join(f"{d} {metadata.version(d)}" for d in dists) or "installed"
    return Check(name, True, versions, "", package.required)


# Models


def _face_model() -> Check:
    from engines.errors import ModelMissing
    from engines.face.model_file import face_landmarker_path

    name = "model face_landmarker.task"
    try:
        return Check(name, True, str(face_landmarker_path()))
    except ModelMissing as exc:
        return Check(name, False, str(exc), "Run `avatar-app models fetch face-landmarker`.")


def _lipsync_model() -> Check:
    from engines.speech.model import MODEL_ENV, default_model_path

    name = "model lipsync.onnx"
    path = default_model_path()
    if path.is_file() and path.stat().st_size > 0:
        return Check(name, True, str(path))
    return Check(
        name,
        False,
        f"{path} is missing or empty",
        f"Reinstall avatar-app (the model ships in resources/models), or point {MODEL_ENV} "
        "at a lipsync.onnx.",
    )


def _neural_engine() -> Check:
    """LivePortrait's state: weights, exported models, and what ONNX Runtime can run them on."""
    import onnxruntime

    from engines.errors import ModelMissing
    from engines.liveportrait.renderer import EXPORT_COMMAND, onnx_dir
    from engines.liveportrait.weights import FETCH_COMMAND, find_weights

    name = "neural engine (optional)"
    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    device = "CUDA" if cuda else "CPU only (about 10 s a frame; a GPU needs onnxruntime-gpu)"
    if (onnx_dir() / "manifest.json").is_file():
        return Check(name, True, f"LivePortrait ready in {onnx_dir()}, on {device}", required=False)
    try:
        find_weights()
    except ModelMissing:
        return Check(
            name, False, "LivePortrait weights not downloaded", f"Run `{FETCH_COMMAND}`, then "
            f"`{EXPORT_COMMAND}` (needs a GPU to be useful).", required=False,
        )  # fmt: skip
    return Check(
        name, False, "LivePortrait weights downloaded, not exported",
        f"Run `{EXPORT_COMMAND}`.", required=False,
    )  # fmt: skip


# Audio


def _portaudio_fix(system: str) -> str:
    if system == "Linux":
        return (
            "Install PortAudio: `sudo apt install libportaudio2` (Fedora: "
            "`sudo dnf install portaudio`, Arch: `sudo pacman -S portaudio`)."
        )
    return (
        "Reinstall sounddevice, whose wheel bundles PortAudio: "
        "`pip install --force-reinstall sounddevice`."
    )


def _microphone_fix(system: str) -> str:
    if system == "Linux":
        return (
            "Plug in a microphone and check it with `arecord -l`; make sure PulseAudio or "
            "PipeWire is running for your user, and that you are in the `audio` group."
        )
    if system == "Darwin":
        return (
            "Plug in a microphone, and allow your terminal (or avatar-app) in System Settings > "
            "Privacy & Security > Microphone."
        )
    return (
        "Plug in a microphone, and turn on 'Let desktop apps access your microphone' in "
        "Settings > Privacy & security > Microphone."
    )


def _portaudio(system: str) -> Check:
    name = "audio (PortAudio)"
    try:
        import sounddevice
    except ImportError:
        return Check(name, False, "sounddevice is not installed", "pip install sounddevice")
    except OSError as exc:
        return Check(name, False, f"PortAudio cannot be loaded: {exc}", _portaudio_fix(system))
    return Check(name, True, sounddevice.get_portaudio_version()[1].split(",")[0])


def _microphone(system: str) -> Check:
    name = "microphone"
    try:
        import sounddevice
    except (ImportError, OSError):
        return Check(name, False, "PortAudio is not available (see above)", _portaudio_fix(system))
    inputs = [d["name"] for d in sounddevice.query_devices() if d["max_input_channels"] > 0]
    if not inputs:
        return Check(name, False, "no input device found", _microphone_fix(system))
    shown = ", ".join(inputs[:3]) + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else "")
    return Check(name, True, f"{len(inputs)} input device(s): {shown}")


# Webcam


def _webcam(system: str) -> Check:
    name = "webcam"
    if system != "Linux":
        return Check(name, True, "checked when live starts", required=False)
    loopback = {f"/dev/video{n}" for n, _ in _loopback_devices()}
    paths = [p for p in sorted(glob.glob("/dev/video*")) if p not in loopback]
    opened = [p for p in paths if _opens(p)]
    if opened:
        return Check(name, True, ", ".join(opened), required=False)
    detail = f"none of {', '.join(paths)} opens" if paths else "no /dev/video* capture device"
    fix = (
        "Plug in a webcam (list them with `v4l2-ctl --list-devices`) and close other apps "
        "using it. Without one the avatar still talks from the microphone."
    )
    return Check(name, False, detail, fix, required=False)


def _opens(path: str) -> bool:
    import cv2

    capture = cv2.VideoCapture(path, cv2.CAP_V4L2)
    try:
        return bool(capture.isOpened())
    finally:
        capture.release()


# Virtual camera


def _virtual_camera_checks(system: str) -> list[Check]:
    if system == "Linux":
        devices = _loopback_devices()
        checks = [
            _guarded("virtual camera", lambda: _linux_virtual_camera(devices)),
            _guarded("video group", lambda: _video_group(devices)),
        ]
        if devices:
            checks.append(_guarded("exclusive_caps", _exclusive_caps))
            checks.append(_guarded("virtual camera number", lambda: _device_number(devices)))
        return checks
    return [_guarded("virtual camera", lambda: _obs_virtual_camera(system))]


def _loopback_devices() -> list[tuple[int, str]]:
    """(number, card label) of each v4l2loopback-looking video device, lowest number first."""
    found = []
    for node in Path("/sys/class/video4linux").glob("video*"):
        try:
            label = (node / "name").read_text().strip()
        except OSError:
            continue
        if any(marker in label.lower() for marker in LOOPBACK_MARKERS):
            found.append((int(node.name.removeprefix("video")), label))
    return sorted(found)


def _linux_virtual_camera(devices: list[tuple[int, str]]) -> Check:
    name = "virtual camera"
    if devices:
        listed = ", ".join(f"/dev/video{n} ({label})" for n, label in devices)
        return Check(name, True, listed)
    if Path("/sys/module/v4l2loopback").exists():
        detail = "v4l2loopback is loaded but no loopback device is listed"
    else:
        detail = "no v4l2loopback device (the module is not loaded)"
    return Check(name, False, detail, LINUX_VCAM_FIX)


def _video_group(devices: list[tuple[int, str]]) -> Check:
    import grp
    import pwd

    name = "video group"
    if os.geteuid() == 0:
        return Check(name, True, "running as root")
    try:
        video = grp.getgrnam("video")
    except KeyError:
        return Check(name, True, "this system has no `video` group")
    if video.gr_gid in os.getgroups():
        return Check(name, True, "you are in the `video` group")
    paths = [f"/dev/video{n}" for n, _ in devices]
    if paths and all(os.access(p, os.R_OK | os.W_OK) for p in paths):
        return Check(name, True, "not in `video`, but the loopback devices are writable")
    user = pwd.getpwuid(os.getuid()).pw_name
    if user in video.gr_mem:
        return Check(
            name,
            False,
            "added to `video`, but not in this login session",
            "Log out and back in (or reboot).",
        )
    return Check(
        name,
        False,
        "you are not in the `video` group",
        "Run `sudo usermod -aG video $USER`, then log out and back in.",
    )


def _exclusive_caps() -> Check:
    """Browsers (Meet in Chrome) list a loopback camera only with exclusive_caps=1."""
    name = "exclusive_caps"
    path = Path("/sys/module/v4l2loopback/parameters/exclusive_caps")
    try:
        value = path.read_text().strip()
    except OSError:
        return Check(
            name, True, "unknown; Meet in a browser needs exclusive_caps=1", required=False
        )
    if "Y" in value.upper().split(","):
        return Check(
            name, True, "on: apps see the camera only while avatar-app is live", required=False
        )
    return Check(
        name,
        False,
        "off: Meet and other browser apps will not list the camera",
        f"Reload the module with exclusive_caps=1: `{RELOAD_LOOPBACK}`.",
        required=False,
    )


def _device_number(devices: list[tuple[int, str]]) -> Check:
    name = "virtual camera number"
    lowest = devices[0][0]
    if lowest <= ZOOM_MAX_DEVICE:
        return Check(name, True, f"/dev/video{lowest}", required=False)
    return Check(
        name,
        False,
        f"/dev/video{lowest}: Zoom may miss devices numbered above ~10",
        f"Reload the module with a low number: `{RELOAD_LOOPBACK}`.",
        required=False,
    )


def _obs_virtual_camera(system: str) -> Check:
    name = "virtual camera"
    fix = f"{open_fix(system)}."
    if "obs" not in virtual_camera_backends():
        return Check(name, False, "pyvirtualcam has no OBS backend here", fix)
    found = _obs_install(system)
    if found is None:
        return Check(name, False, "OBS Studio not found", fix)
    path, version = found
    major = _major(version)
    if major is not None and major < OBS_MIN_MAJOR:
        return Check(name, False, f"OBS Studio {version} at {path} is older than 30", fix)
    shown = f"OBS Studio {version}" if version else "OBS Studio"
    return Check(name, True, f"{shown} at {path}; its virtual camera is opened when live starts")


def _obs_install(system: str) -> tuple[Path, str] | None:
    """(where, version or "") of an OBS Studio install, or None."""
    if system == "Darwin":
        app = Path("/Applications/OBS.app")
        if not app.exists():
            return None
        try:
            with (app / "Contents" / "Info.plist").open("rb") as f:
                return app, str(plistlib.load(f).get("CFBundleShortVersionString", ""))
        except (OSError, plistlib.InvalidFileException):
            return app, ""
    roots = [os.environ.get("PROGRAMFILES", r"C:\Program Files"), os.environ.get("PROGRAMW6432")]
    for root in filter(None, roots):
        if (Path(root) / "obs-studio").exists():
            return Path(root) / "obs-studio", ""
    return None


def _major(version: str) -> int | None:
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


if __name__ == "__main__":
    raise SystemExit(main())
