"""Global push-to-talk: hotkey parsing, why a global hook is (not) possible, and real key events.

The end-to-end tests run a private Xvfb server with an xterm that has the keyboard focus, start
the hook on it and press keys through XTest with xdotool (Debian: xvfb xdotool xterm).
"""

from __future__ import annotations

import os
import queue
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from avatar_app.hotkeys import (
    GlobalPushToTalk,
    Hotkey,
    HotkeyUnavailable,
    global_hotkeys_available,
    parse_hotkey,
)
from engines.errors import AvatarError

REPO = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland only")


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "modifiers", "shown"),
    [
        ("F9", "f9", set(), "F9"),
        ("f24", "f24", set(), "F24"),
        ("ctrl+shift+space", "space", {"ctrl", "shift"}, "Ctrl+Shift+Space"),
        (" Shift + Control + Space ", "space", {"ctrl", "shift"}, "Ctrl+Shift+Space"),
        ("Pause", "pause", set(), "Pause"),
        ("Scroll_Lock", "scroll_lock", set(), "ScrollLock"),
        ("scroll lock", "scroll_lock", set(), "ScrollLock"),
        ("Page-Down", "page_down", set(), "PgDown"),
        ("alt+m", "m", {"alt"}, "Alt+M"),
        ("cmd+option+7", "7", {"cmd", "alt"}, "Alt+Meta+7"),
        ("Escape", "esc", set(), "Esc"),
    ],
)
def test_parse_hotkey(text: str, key: str, modifiers: set[str], shown: str) -> None:
    hotkey = parse_hotkey(text)
    assert hotkey == Hotkey(key, frozenset(modifiers))
    assert str(hotkey) == shown
    assert parse_hotkey(str(hotkey)) == hotkey  # what is shown parses back
    assert hotkey.keys == frozenset(modifiers) | {key}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("F99", "Unknown key 'F99'"),
        ("ctrl+Hyperspace", "Unknown key 'Hyperspace'"),
        ("", "not a hotkey"),
        ("ctrl++", "not a hotkey"),
        ("ctrl+shift", "no key besides the modifiers"),
        ("a+b", "a and b besides the modifiers"),
    ],
)
def test_parse_hotkey_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hotkey(text)


def test_importing_does_not_import_the_backend() -> None:
    code = "import sys, avatar_app.hotkeys; assert 'pynput' not in sys.modules, 'pynput imported'"
    env = {**os.environ, "DISPLAY": ""}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)


# --- availability ----------------------------------------------------------------------------


@linux_only
@pytest.mark.parametrize(
    "env",
    [
        {"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"},  # XWayland's DISPLAY does not help
        {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"},
    ],
)
def test_wayland_has_no_global_hotkeys(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    _session_env(monkeypatch, env)
    available, reason = global_hotkeys_available()
    assert not available
    assert reason == (
        "Wayland session: global hotkeys are not allowed; "
        "push-to-talk works while the avatar window has focus"
    )
    with pytest.raises(HotkeyUnavailable, match=r"^Wayland session") as raised:
        GlobalPushToTalk(parse_hotkey("F9"), lambda held: None).start()
    assert isinstance(raised.value, AvatarError)


@linux_only
def test_no_display_has_no_global_hotkeys(monkeypatch: pytest.MonkeyPatch) -> None:
    _session_env(monkeypatch, {})
    available, reason = global_hotkeys_available()
    assert not available
    assert reason.startswith("No X display (DISPLAY is not set)")
    assert reason.endswith("push-to-talk works while the avatar window has focus")


@linux_only
def test_unreachable_display_has_no_global_hotkeys(monkeypatch: pytest.MonkeyPatch) -> None:
    free = next(n for n in range(400, 500) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    _session_env(monkeypatch, {"XDG_SESSION_TYPE": "x11", "DISPLAY": f":{free}"})
    available, reason = global_hotkeys_available()
    assert not available
    assert reason.startswith(f"Cannot reach the X display :{free}")


def _session_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# --- real key events on an X server ----------------------------------------------------------


class XServer:
    """A private Xvfb with an xterm holding the keyboard focus; keys go in through xdotool."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.env = {**os.environ, "DISPLAY": display}

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=20
        )
        assert done.returncode == 0, f"xdotool {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()


@pytest.fixture(scope="module")
def x_server() -> Iterator[XServer]:
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool"), ("xterm", "xterm")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian package {package})")
    children: list[subprocess.Popen[bytes]] = []
    read_end, write_end = os.pipe()
    try:
        # -displayfd: Xvfb picks a free display number and writes it once it accepts clients.
        children.append(
            subprocess.Popen(
                [
                    "Xvfb",
                    "-displayfd",
                    str(write_end),
                    "-nolisten",
                    "tcp",
                    "-screen",
                    "0",
                    "640x480x24",
                ],
                pass_fds=(write_end,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        os.close(write_end)
        write_end = -1
        if not select.select([read_end], [], [], 20)[0]:
            pytest.fail("Xvfb did not start within 20 s")
        server = XServer(f":{os.read(read_end, 64).decode().strip()}")
        # Another app owns the focus, as Zoom or the browser would during a call.
        children.append(
            subprocess.Popen(
                ["xterm", "-class", "HotkeyTestTerm", "-e", "sleep", "300"],
                env=server.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        window = server.xdotool(
            "search", "--sync", "--onlyvisible", "--class", "HotkeyTestTerm"
        ).split()[0]
        server.xdotool("windowfocus", "--sync", window)
        assert server.xdotool("getwindowfocus") == window
        yield server
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)
        for child in reversed(children):  # xterm (its sleep dies with its terminal), then Xvfb
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@pytest.fixture
def push_to_talk(
    x_server: XServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[XServer, queue.Queue[bool], list[GlobalPushToTalk]]]:
    """The X session's environment, the queue on_change feeds, and started hooks to stop."""
    _session_env(monkeypatch, {"XDG_SESSION_TYPE": "x11", "DISPLAY": x_server.display})
    changes: queue.Queue[bool] = queue.Queue()
    started: list[GlobalPushToTalk] = []
    try:
        yield x_server, changes, started
    finally:
        for hook in started:
            hook.stop()


def _start(
    text: str,
    fixture: tuple[XServer, queue.Queue[bool], list[GlobalPushToTalk]],
) -> GlobalPushToTalk:
    """Start a hook and wait until it sees keys (pynput reports ready just before it listens)."""
    server, changes, started = fixture
    hook = GlobalPushToTalk(parse_hotkey(text), changes.put)
    started.append(hook)
    hook.start()
    keys = [SYM[name] for name in sorted(hook.hotkey.keys, key=_modifiers_first)]
    deadline = time.monotonic() + 10
    while True:
        server.xdotool("key", "+".join(keys))
        try:
            assert changes.get(timeout=0.2) is True
            break
        except queue.Empty:
            assert time.monotonic() < deadline, "the hook never saw the hotkey"
    assert changes.get(timeout=5) is False
    _assert_quiet(changes)
    return hook


SYM = {"f9": "F9", "ctrl": "ctrl", "shift": "shift", "space": "space"}  # names -> X keysyms


def _modifiers_first(name: str) -> tuple[bool, str]:
    return name not in ("ctrl", "shift", "alt", "cmd"), name


def _assert_quiet(changes: queue.Queue[bool], seconds: float = 0.3) -> None:
    time.sleep(seconds)
    leftover = [changes.get_nowait() for _ in range(changes.qsize())]
    assert leftover == [], f"unexpected on_change calls: {leftover}"


@linux_only
def test_global_hotkey_while_another_window_has_focus(
    push_to_talk: tuple[XServer, queue.Queue[bool], list[GlobalPushToTalk]],
) -> None:
    server, changes, _ = push_to_talk
    assert global_hotkeys_available() == (
        True,
        "X11: the push-to-talk key works while any app has focus",
    )
    threads_before = threading.active_count()
    hook = _start("F9", push_to_talk)

    server.xdotool("keydown", "F9")
    assert changes.get(timeout=5) is True
    # Held past the X server's auto-repeat delay (660 ms): repeated presses change nothing.
    _assert_quiet(changes, seconds=1.2)
    server.xdotool("keyup", "F9")
    assert changes.get(timeout=5) is False
    _assert_quiet(changes)

    server.xdotool("key", "F8", "space", "ctrl+F8")  # other keys: nothing
    _assert_quiet(changes)

    hook.stop()
    hook.stop()  # idempotent
    server.xdotool("key", "F9")
    _assert_quiet(changes)
    deadline = time.monotonic() + 5  # the listener's thread is gone, not waiting for a key
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before


@linux_only
def test_global_hotkey_combination(
    push_to_talk: tuple[XServer, queue.Queue[bool], list[GlobalPushToTalk]],
) -> None:
    server, changes, _ = push_to_talk
    _start("ctrl+shift+space", push_to_talk)

    server.xdotool("keydown", "ctrl")
    server.xdotool("keydown", "shift")
    _assert_quiet(changes)  # not yet: space is missing
    server.xdotool("keydown", "space")
    assert changes.get(timeout=5) is True
    server.xdotool("keyup", "shift")  # letting go of any key of it ends the talk
    assert changes.get(timeout=5) is False
    server.xdotool("keyup", "space")
    server.xdotool("keyup", "ctrl")
    _assert_quiet(changes)

    server.xdotool("key", "space", "shift+space", "ctrl+space", "F9")  # part of it: nothing
    _assert_quiet(changes)

    # Pressed in any order, with another modifier held too.
    server.xdotool("keydown", "space", "alt", "shift", "ctrl")
    assert changes.get(timeout=5) is True
    server.xdotool("keyup", "ctrl", "shift", "alt", "space")
    assert changes.get(timeout=5) is False
    _assert_quiet(changes)


@linux_only
def test_a_failing_callback_does_not_stop_the_hook(
    push_to_talk: tuple[XServer, queue.Queue[bool], list[GlobalPushToTalk]],
) -> None:
    server, changes, started = push_to_talk
    calls: list[bool] = []

    def on_change(held: bool) -> None:
        calls.append(held)
        changes.put(held)
        raise RuntimeError("a broken callback")

    hook = GlobalPushToTalk(parse_hotkey("F9"), on_change)
    started.append(hook)
    hook.start()
    deadline = time.monotonic() + 10
    while not calls:
        server.xdotool("key", "F9")
        time.sleep(0.2)
        assert time.monotonic() < deadline, "the hook never saw the hotkey"
    server.xdotool("key", "F9")
    time.sleep(0.3)
    assert calls[-2:] == [True, False]
    assert len(calls) >= 4
