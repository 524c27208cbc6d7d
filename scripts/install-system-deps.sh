#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages avatar-app and its tests need, only when one is missing.
#   ffmpeg            ffprobe checks the videos the tests write
#   libgl1 libglib2.0-0  needed by opencv-contrib-python (cv2) and mediapipe
#   libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3  needed by PySide6 (Qt) windows
#   python3-venv      lets `python3 -m venv` create .venv on Debian
set -euo pipefail

packages=(ffmpeg libgl1 libglib2.0-0 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3)
if ! python3 -c "import ensurepip" 2>/dev/null; then
    packages+=(python3-venv)
fi

if ! command -v dpkg-query >/dev/null; then
    echo "Not a Debian-based system: install the equivalents of ${packages[*]} yourself." >&2
    exit 0
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "Missing system packages: ${missing[*]}. Install them as root:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi
echo "Installing system packages: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
