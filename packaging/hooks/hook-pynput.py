"""pynput chooses its back end (X11 or uinput, Win32, macOS) by name at run time. The stock hook
lists them by importing pynput, which fails on a build machine with no X display; this one
lists this platform's back ends from the files instead."""

import importlib.util
import sys
from pathlib import Path

BACKENDS = {"win32": ("win32",), "darwin": ("darwin",)}.get(sys.platform, ("xorg", "uinput"))

spec = importlib.util.find_spec("pynput")  # finds the package without running it
assert spec is not None and spec.submodule_search_locations
package = Path(next(iter(spec.submodule_search_locations)))
hiddenimports = [
    f"pynput.{folder}.{module.stem}"
    for folder in ("keyboard", "mouse", "_util")
    for module in sorted((package / folder).glob("*.py"))
    if module.stem.lstrip("_").startswith((*BACKENDS, "dummy", "base"))
]
