"""The Linux bundle (``make package``): built here, then the built program is run, never the
source tree: ``--version``, ``demo`` and ``render --say`` into MP4s that ffprobe plays, and the
window on a private X display. The seconds to the window and to the portrait in its preview are
written to ``out/package-start.json`` (measured, never asserted).

``make package-test`` passes the bundle it just built in ``$AVATAR_APP_BUNDLE``; without it, this
module builds the bundle itself: about 4 minutes on this 2-core machine when it is quiet, 5-12
when it is busy, which fits the CI budget, so CI runs it as part of ``make test``.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.xdisplay import x_display

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out"
pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def _package_name() -> str:
    return f"avatar-app-{_version()}-{platform.system().lower()}-{platform.machine()}"


@pytest.fixture(scope="module")
def bundle() -> Path:
    """The bundle's folder: the one given in $AVATAR_APP_BUNDLE, else one built now."""
    if platform.system() != "Linux":
        pytest.skip("the bundle built and tested here is the Linux one")
    given = os.environ.get("AVATAR_APP_BUNDLE")
    if given:
        folder = (ROOT / given).resolve()
    else:
        if shutil.which("make") is None:
            pytest.skip("needs make to build the bundle (Debian: make)")
        from engines.face.mediapipe_task import environment_for_other_programs

        # Not this process's environment: a landmarker made by an earlier test pointed its
        # proxy nowhere (mediapipe_task.block_usage_logging), and pip must reach PyPI.
        done = subprocess.run(
            ["make", "package"],
            cwd=ROOT,
            env=environment_for_other_programs(),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        folder = ROOT / "dist" / _package_name()
    assert (folder / "avatar-app").is_file(), f"no avatar-app program in {folder}"
    return folder


def _env(tmp_path: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which nothing points back at the source tree or its venv."""
    env = dict(os.environ if base is None else base)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "AVATAR_APP_RESOURCES"):
        env.pop(name, None)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["AVATAR_APP_CONFIG_DIR"] = str(tmp_path / "config")
    return env


def _run(bundle: Path, args: list[str], tmp_path: Path) -> str:
    done = subprocess.run(
        [str(bundle / "avatar-app"), *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _streams(video: Path) -> dict[str, float]:
    """Each stream's codec type and the file's duration, as ffprobe reads them."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("needs ffprobe (Debian: ffmpeg)")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(video)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    found = {stream["codec_type"]: float(stream.get("duration", 0)) for stream in info["streams"]}
    return {**found, "file": float(info["format"]["duration"])}


def test_version_comes_from_pyproject(bundle: Path, tmp_path: Path) -> None:
    assert _run(bundle, ["--version"], tmp_path).strip() == f"avatar-app {_version()}"


def test_bundle_holds_the_models_and_leaves_out_torch_and_tests(bundle: Path) -> None:
    inside = bundle / "_internal"
    for name in ("face_landmarker.task", "lipsync.onnx", "lipsync.json"):
        assert (inside / "resources" / "models" / name).is_file(), name
    assert (inside / "resources" / "portraits" / "astronaut.jpg").is_file()
    assert (inside / "resources" / "icons" / "avatar-app.svg").is_file()
    for left_out in ("torch", "pytest", "_pytest", "skimage", "tensorrt", "tests"):
        assert not (inside / left_out).exists(), left_out


def test_demo_on_a_photo_makes_a_playable_mp4(
    bundle: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(astronaut).save(photo)
    video = tmp_path / "demo.mp4"
    _run(bundle, ["demo", "--portrait", str(photo), "--size", "256", "-o", str(video)], tmp_path)
    streams = _streams(video)
    assert streams["video"] > 5, streams


def test_render_say_speaks_into_a_playable_mp4(bundle: Path, tmp_path: Path) -> None:
    video = tmp_path / "say.mp4"
    _run(bundle, ["render", "--say", "Hello, I am a photo.", "--size", "256", "-o", str(video)],
         tmp_path)  # fmt: skip
    streams = _streams(video)
    assert "audio" in streams, streams
    assert streams["video"] > 0.5, streams


def test_window_opens_under_xvfb(bundle: Path, tmp_path: Path) -> None:
    for tool in ("xdotool", "import"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian: xdotool imagemagick)")
    with x_display() as display:
        env = _env(tmp_path, display)
        started = time.monotonic()
        process = subprocess.Popen(
            [str(bundle / "avatar-app")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            window = _wait_for_window(process, env)
            to_window = time.monotonic() - started
            cpu_to_window = _cpu_seconds(process.pid)
            to_preview, last = _wait_for_preview(window, env, started)
            cpu_to_preview = _cpu_seconds(process.pid)
            time.sleep(3)  # still up a few seconds later
            assert process.poll() is None, process.communicate()[1][-3000:]
        finally:
            process.terminate()
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
    assert last.std() > 20, "the window is blank"
    OUT.mkdir(exist_ok=True)
    (OUT / "package-start.json").write_text(
        json.dumps(
            {
                "launch_to_window_s": round(to_window, 2),
                "launch_to_portrait_preview_s": round(to_preview, 2),
                # CPU time the program used by then: what a busy machine inflates the least.
                "cpu_s_to_window": round(cpu_to_window, 2),
                "cpu_s_to_portrait_preview": round(cpu_to_preview, 2),
                "load_average_1min": os.getloadavg()[0],
                "display": "Xvfb",
                "all_figures": "measured in this run",
            },
            indent=2,
        )
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for_window(process: subprocess.Popen[str], env: dict[str, str]) -> str:
    """The id of the app's visible window once it is mapped."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the program exited: {process.communicate()[1][-3000:]}")
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", "^avatar-app$"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.split()
        if found:
            return found[0]
        time.sleep(0.05)
    pytest.fail("no window within 120 s")


def _wait_for_preview(window: str, env: dict[str, str], started: float) -> tuple[float, np.ndarray]:
    """Seconds from launch to the first screenshot showing the checked portrait in the preview
    (recognised by the green box the window draws round the face found), and that screenshot."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        png = subprocess.run(
            ["import", "-window", window, "png:-"], env=env, capture_output=True, check=True
        ).stdout
        taken = time.monotonic() - started
        shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)
        red, green, blue = shot[..., 0], shot[..., 1], shot[..., 2]
        if np.count_nonzero((green > 200) & (red < 80) & (blue < 80)) > 100:
            return taken, shot
        time.sleep(0.05)
    pytest.fail("the portrait never showed in the preview within 90 s")
