#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages avatar-app needs, only when one is missing.
# With --test, also what the tests use; with --train, what training the lip-sync model uses.
#   libgl1 libglib2.0-0  needed by opencv-contrib-python (cv2) and mediapipe
#   libgles2          mediapipe's native library (the face landmarks) links libGLESv2
#   libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3  needed by PySide6 (Qt) windows
#   libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0
#   libxcb-cursor0 libxkbcommon-x11-0  Qt's X11 (xcb) platform plugin, for the window
#   libportaudio2     the microphone in live mode (sounddevice)
#   python3-venv      lets `python3 -m venv` create .venv on Debian
#   gcc python3-dev   build evdev, which pynput (the global push-to-talk hotkey, gui extra)
#                     needs on Linux and which PyPI has no wheels of
# --test:
#   ffmpeg            ffprobe checks the videos the tests write
#   festival festvox-kallpc16k festvox-us-slt-hts  a second speech synthesiser for training
#   alsa-utils        ships short recordings of a real human voice ("Front Left", ...)
#   pulseaudio pulseaudio-utils libasound2-plugins  a real sound server for the microphone
#                     end-to-end tests (a null sink played into with paplay)
#   xvfb xdotool xterm  the global push-to-talk hotkey end-to-end test: an X server, XTest
#                     key presses, and another app holding the keyboard focus
#   openbox trayer imagemagick  a window manager, a tray host and `import` for the window's
#                     screenshots under Xvfb
#   desktop-file-utils  desktop-file-validate checks packaging/linux/avatar-app.desktop
#   strace            tests/test_no_network.py watches every command for DNS lookups and
#                     connections (mediapipe's native usage logger among them)
# --train (adds to --test):
#   asterisk-core-sounds-en-g722 asterisk-core-sounds-en  ~500 recorded voice prompts with
#                     their transcripts: real human speech for training and measuring
set -euo pipefail

packages=(libgl1 libgles2 libglib2.0-0 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3
    libportaudio2 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0
    libxcb-cursor0 libxkbcommon-x11-0 gcc python3-dev)
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--train" ]; then
    packages+=(ffmpeg festival festvox-kallpc16k festvox-us-slt-hts alsa-utils
        pulseaudio pulseaudio-utils libasound2-plugins xvfb xdotool xterm openbox trayer
        imagemagick strace desktop-file-utils)
fi
if [ "${1:-}" = "--train" ]; then
    packages+=(asterisk-core-sounds-en-g722 asterisk-core-sounds-en)
fi
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
