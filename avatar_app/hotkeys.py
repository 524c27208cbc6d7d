"""Push-to-talk on a global hotkey: the key works while the call app (Zoom, a browser) has focus.

``parse_hotkey("ctrl+shift+space")`` checks what the user typed; ``GlobalPushToTalk`` watches the
keyboard of the whole desktop through pynput (an X11 RECORD context, a Windows low-level hook, a
macOS event tap) and reports the combination going down and up. It only listens: the keys still
reach the focused app.

Where no global hook is possible (a Wayland session, no X display, macOS without the
accessibility permission) ``global_hotkeys_available()`` and ``GlobalPushToTalk.start()`` say
why, and the window falls back to a key that works while it has focus (``ui/``).

pynput is imported only in ``start()`` (its Linux back end connects to the X server when
imported), so this module imports on every OS, headless too.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from engines.errors import HotkeyUnavailable

__all__ = [
    "GlobalPushToTalk",
    "Hotkey",
    "HotkeyUnavailable",
    "global_hotkeys_available",
    "parse_hotkey",
]

log = logging.getLogger(__name__)

FALLBACK = "push-to-talk works while the avatar window has focus"
INSTALL = "pip install 'avatar-app[gui]'"

# Canonical name (pynput's ``Key`` attribute) -> the name shown, in the portable text of Qt's
# QKeySequence, so ``str(hotkey)`` reads the way the window's key field writes it.
MODIFIERS = {"ctrl": "Ctrl", "shift": "Shift", "alt": "Alt", "cmd": "Meta"}
SPECIAL_KEYS = {
    **{f"f{n}": f"F{n}" for n in range(1, 25)},
    "pause": "Pause",
    "scroll_lock": "ScrollLock",
    "print_screen": "Print",
    "insert": "Ins",
    "delete": "Del",
    "home": "Home",
    "end": "End",
    "page_up": "PgUp",
    "page_down": "PgDown",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "space": "Space",
    "tab": "Tab",
    "enter": "Return",
    "esc": "Esc",
    "backspace": "Backspace",
    "num_lock": "NumLock",
    "caps_lock": "CapsLock",
    "menu": "Menu",
}
CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
_WINDOWS_VK_CHARACTERS = set(CHARACTERS.upper())  # VK_A..VK_Z, VK_0..VK_9 are their ASCII codes
_ALIASES = {
    "control": "ctrl",
    "option": "alt",
    "command": "cmd",
    "super": "cmd",
    "win": "cmd",
    "windows": "cmd",
    "escape": "esc",
    "return": "enter",
    "break": "pause",
    "prtsc": "print_screen",
    "pgdn": "page_down",
    "spacebar": "space",
}
# pynput's left/right variants of a modifier -> the one name a Hotkey uses.
_SIDED_MODIFIERS = {
    f"{base}_{side}": base for base in ("ctrl", "shift", "alt", "cmd") for side in ("l", "r")
} | {"alt_gr": "alt"}


def _squash(name: str) -> str:
    """Case, spaces, dashes and underscores do not matter: "Scroll_Lock" == "scroll lock"."""
    return "".join(ch for ch in name.lower() if ch not in " _-")


_LOOKUP: dict[str, str] = {
    **{_squash(name): name for name in (*MODIFIERS, *SPECIAL_KEYS)},
    **{_squash(shown): name for name, shown in (*MODIFIERS.items(), *SPECIAL_KEYS.items())},
    **_ALIASES,
    **{ch: ch for ch in CHARACTERS},
}


@dataclass(frozen=True)
class Hotkey:
    """One key, held together with zero or more modifiers; names are canonical (see above)."""

    key: str  # "f9", "scroll_lock", "space", "a", "7"
    modifiers: frozenset[str] = field(default_factory=frozenset)  # of "ctrl" "shift" "alt" "cmd"

    @property
    def keys(self) -> frozenset[str]:
        """Every key of the combination."""
        return self.modifiers | {self.key}

    def __str__(self) -> str:
        shown = [MODIFIERS[m] for m in MODIFIERS if m in self.modifiers]
        return "+".join([*shown, SPECIAL_KEYS.get(self.key, self.key.upper())])


def parse_hotkey(text: str) -> Hotkey:
    """``"F9"``, ``"ctrl+shift+space"``, ``"Pause"``, ``"Scroll_Lock"`` -> a Hotkey.

    Case and ``_``/``-``/space inside a name do not matter; ``str()`` of the result parses back.
    Raises ValueError naming the unknown key, or when there is not exactly one non-modifier key.
    """
    parts = [part.strip() for part in text.split("+")]
    if not text.strip() or "" in parts:
        raise ValueError(
            f"{text!r} is not a hotkey: write keys joined by '+', e.g. ctrl+shift+space"
        )
    modifiers: set[str] = set()
    keys: list[str] = []
    for part in parts:
        name = _LOOKUP.get(_squash(part))
        if name is None:
            raise ValueError(
                f"Unknown key {part!r} in {text!r}: use F1-F24, Pause, Scroll_Lock, Space, Insert, "
                "Home, a letter or a digit, optionally with ctrl, shift, alt or cmd "
                "(e.g. ctrl+shift+space)"
            )
        if name in MODIFIERS:
            modifiers.add(name)
        else:
            keys.append(name)
    if len(keys) != 1:
        found = "no key" if not keys else " and ".join(keys)
        raise ValueError(
            f"{text!r} has {found} besides the modifiers: a hotkey needs exactly one, e.g. ctrl+F9"
        )
    return Hotkey(keys[0], frozenset(modifiers))


def global_hotkeys_available() -> tuple[bool, str]:
    """Whether a global hotkey can work in this session, and a sentence for the user saying so.

    On Linux this connects to the X server for a moment to check its RECORD extension.
    """
    if importlib.util.find_spec("pynput") is None:
        return False, f"Global hotkeys need the pynput package ({INSTALL}); {FALLBACK}"
    if sys.platform == "win32":
        return True, (
            "Windows: the push-to-talk key works in every app (except apps run as administrator)"
        )
    if sys.platform == "darwin":
        return _macos_available()
    return _x11_available(os.environ)


def _macos_available() -> tuple[bool, str]:
    try:
        import HIServices  # pyobjc-framework-ApplicationServices, installed with pynput
    except ImportError as error:
        return False, f"Global hotkeys cannot start ({error}; {INSTALL}); {FALLBACK}"
    if not HIServices.AXIsProcessTrusted():
        return False, (
            "macOS has not allowed this app to watch the keyboard: add it (or the terminal that "
            "starts it) under System Settings > Privacy & Security > Accessibility and Input "
            f"Monitoring, then restart it; until then {FALLBACK}"
        )
    return True, "macOS: the push-to-talk key works in every app"


def _x11_available(environ: Mapping[str, str]) -> tuple[bool, str]:
    session = environ.get("XDG_SESSION_TYPE", "").lower()
    if session == "wayland" or (session != "x11" and environ.get("WAYLAND_DISPLAY")):
        return False, f"Wayland session: global hotkeys are not allowed; {FALLBACK}"
    display_name = environ.get("DISPLAY")
    if not display_name:
        return False, f"No X display (DISPLAY is not set): global hotkeys need one; {FALLBACK}"
    try:
        import Xlib.display  # python-xlib, installed with pynput on Linux
        import Xlib.error
    except ImportError as error:
        return False, f"Global hotkeys cannot start ({error}; {INSTALL}); {FALLBACK}"
    # python-xlib leaves the sockets of a failed connection for the garbage collector.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            display = Xlib.display.Display(display_name)
        except (Xlib.error.DisplayError, OSError) as error:
            return False, f"Cannot reach the X display {display_name} ({error}); {FALLBACK}"
    try:
        has_record = display.has_extension("RECORD")
    finally:
        display.close()
    if not has_record:
        return False, (
            f"The X server of {display_name} has no RECORD extension, which global hotkeys "
            f"need; {FALLBACK}"
        )
    return True, "X11: the push-to-talk key works while any app has focus"


class GlobalPushToTalk:
    """Calls ``on_change(True)`` when the whole combination goes down and ``on_change(False)``
    once when any of its keys is released; auto-repeat is ignored, other keys held meanwhile
    do not matter.

    ``on_change`` runs on pynput's thread and must not block (post to a queue or a Qt signal);
    an exception in it is logged and the hook goes on. ``stop()`` does not call it: a caller
    stopping while the key is held closes its own gate.
    """

    def __init__(self, hotkey: Hotkey, on_change: Callable[[bool], None]) -> None:
        self.hotkey = hotkey
        self._on_change = on_change
        self._listener: Any = None  # a pynput.keyboard.Listener while started
        self._down: set[str] = set()  # the combination's keys now held (listener thread only)
        self._vk_names: dict[Any, str] = {}  # virtual key code -> name, for the special key

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        """Start the hook; raises HotkeyUnavailable with a plain reason when none is possible."""
        if self._listener is not None:
            return
        available, reason = global_hotkeys_available()
        if not available:
            raise HotkeyUnavailable(reason)
        try:
            from pynput import keyboard
        except ImportError as error:  # e.g. the X server went away since the check
            raise HotkeyUnavailable(f"Global hotkeys cannot start ({error}); {FALLBACK}") from None
        self._vk_names = {}
        if self.hotkey.key in SPECIAL_KEYS:
            special = getattr(keyboard.Key, self.hotkey.key, None)
            if special is None:
                raise HotkeyUnavailable(
                    f"This computer's keyboard has no {SPECIAL_KEYS[self.hotkey.key]} key: "
                    "choose another push-to-talk key, e.g. F9"
                )
            self._vk_names[special.value.vk] = self.hotkey.key
        self._down.clear()
        listener = keyboard.Listener(on_press=self._on_press, on_release=self._on_release)
        listener.start()
        if not _wait_until_ready(listener, timeout=5.0):
            _stop_listener(listener)
            raise HotkeyUnavailable(f"The global keyboard hook did not start; {FALLBACK}")
        if not getattr(listener, "IS_TRUSTED", True):  # macOS: the permission was taken back
            _stop_listener(listener)
            raise HotkeyUnavailable(_macos_available()[1])
        self._listener = listener
        log.info("Global push-to-talk on %s", self.hotkey)

    def stop(self) -> None:
        """Stop the hook (no callbacks after this returns); calling it again does nothing."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _stop_listener(listener)

    def _on_press(self, key: object) -> None:
        name = self._name(key)
        if name is None or name not in self.hotkey.keys or name in self._down:
            return  # another key, or auto-repeat of one already down
        self._down.add(name)
        if self._down == self.hotkey.keys:
            self._emit(True)

    def _on_release(self, key: object) -> None:
        name = self._name(key)
        if name is None or name not in self._down:
            return
        was_held = self._down == self.hotkey.keys
        self._down.discard(name)
        if was_held:
            self._emit(False)

    def _name(self, key: object) -> str | None:
        """A pynput Key / KeyCode -> a canonical name, or None."""
        if isinstance(key, Enum):  # pynput.keyboard.Key
            return _SIDED_MODIFIERS.get(key.name, key.name)
        vk = getattr(key, "vk", None)
        if vk is not None and vk in self._vk_names:
            return self._vk_names[vk]
        char = getattr(key, "char", None)
        if char and char.isprintable():
            return str(char).lower()
        # Windows gives a control character for a letter typed with Ctrl; its vk is the letter.
        if sys.platform == "win32" and isinstance(vk, int) and chr(vk) in _WINDOWS_VK_CHARACTERS:
            return chr(vk).lower()
        return None

    def _emit(self, held: bool) -> None:
        if self._listener is None:  # stopped (or not started yet): say nothing
            return
        try:
            self._on_change(held)
        except Exception:
            log.exception("The push-to-talk callback failed")


def _wait_until_ready(listener: Any, timeout: float) -> bool:
    """pynput's ``wait()`` has no timeout and never returns if the hook fails to start."""
    ready = threading.Event()

    def wait() -> None:
        listener.wait()
        ready.set()

    threading.Thread(target=wait, name="hotkey-ready", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if not listener.is_alive() or time.monotonic() > deadline:
            return False
    return True


def _stop_listener(listener: Any) -> None:
    listener.stop()
    # pynput 1.8.2 on X11 disables its RECORD context on the connection that is blocked
    # reading it, so the thread lingers until the next key event (moses-palmer/pynput#583):
    # disable it from the other connection, as that pull request does.
    display, context = getattr(listener, "_display_stop", None), getattr(listener, "_context", None)
    if display is not None and context is not None:
        try:
            display.record_disable_context(context)
            display.flush()
        except Exception:  # the thread closed the display meanwhile
            log.debug("RECORD context already gone", exc_info=True)
    listener.join(2.0)
    if listener.is_alive():
        log.warning("The keyboard hook thread did not stop")
