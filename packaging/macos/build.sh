#!/usr/bin/env bash
# Builds dist/avatar-app.app and a zip of it on macOS (Python 3.11+ as python3). Not run by CI:
# the CI machine is Linux. The app is unsigned: see packaging/README.md for the first start.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=build/package-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# Runtime dependencies and PyInstaller only: no torch, no test tools.
"$venv/bin/python" -m pip install --disable-pip-version-check -r packaging/requirements.txt \
    ".[gui,say]"
"$venv/bin/python" packaging/make_icons.py build/icons
"$venv/bin/python" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller \
    packaging/avatar-app.spec
version="$("$venv/bin/python" -c "from importlib.metadata import version; print(version('avatar-app'))")"
name="avatar-app-$version-macos-$(uname -m)"
# ditto keeps the bundle's symlinks and extended attributes, which a plain zip would break.
ditto -c -k --keepParent dist/avatar-app.app "dist/$name.zip"
echo "Built dist/avatar-app.app and dist/$name.zip"
