"""A private X display for tests: Xvfb, optionally with openbox and a trayer tray host."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _free_display() -> int:
    for number in range(90, 140):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(
            f"/tmp/.X{number}-lock"
        ):
            return number
    raise RuntimeError("no free X display number")


@contextmanager
def x_display(desktop: bool = False, size: str = "1280x800x24") -> Iterator[dict[str, str]]:
    """Yields the environment for clients of a new Xvfb (with a window manager and tray host
    when ``desktop``); kills everything on exit. Skips the test when a program is missing."""
    needed = ["Xvfb", *(["openbox", "trayer"] if desktop else [])]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: xvfb openbox trayer)")
    number = _free_display()
    env = {**os.environ, "DISPLAY": f":{number}"}
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("WAYLAND_DISPLAY", None)
    processes = [
        subprocess.Popen(
            ["Xvfb", f":{number}", "-screen", "0", size, "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
            if time.monotonic() > deadline or processes[0].poll() is not None:
                pytest.fail("Xvfb did not start")
            time.sleep(0.05)
        if desktop:
            for command in (
                ["openbox"],
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                 "--height", "28", "--transparent", "false", "--tint", "0x333333"],
            ):  # fmt: skip
                processes.append(
                    subprocess.Popen(
                        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                )
            time.sleep(1.0)
        yield env
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
