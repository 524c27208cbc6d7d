"""The ``avatar-app`` program: the window with no command, else the command line.

It lives in ``ui`` so that ``avatar_app`` never imports Qt; Qt is imported only when the
window opens, so commands stay fast and work without the ``gui`` extra.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from avatar_app.cli import WindowHooks
from avatar_app.cli import main as cli_main
from avatar_app.exit_codes import EXIT_USER_ERROR


def open_window(start_in_tray: bool) -> int:
    from ui.system_libs import missing_message, missing_packages

    missing = missing_packages()
    if missing:
        print(missing_message(missing), file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        from ui.app import run_app
    except ImportError as exc:
        print(
            f"error: the window needs Qt ({exc}): run `pip install 'avatar-app[gui]'`.",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    return run_app(start_in_tray=start_in_tray)


def bench_gui(seconds: float) -> dict[str, Any]:
    from ui.bench_gui import bench_gui as run

    return run(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(argv, WindowHooks(open_window, bench_gui))


if __name__ == "__main__":
    sys.exit(main())
