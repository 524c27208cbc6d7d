"""The bundle's entry point: the same program as the ``avatar-app`` console script."""

import sys

from ui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
