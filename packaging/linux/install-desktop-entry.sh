#!/usr/bin/env bash
# Adds avatar-app to this user's application menu (no root needed): copies the icon and writes
# the .desktop entry with the path of this unpacked bundle. Run it again after moving the folder.
# Undo: rm ~/.local/share/applications/avatar-app.desktop \
#          ~/.local/share/icons/hicolor/scalable/apps/avatar-app.svg
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
icon="$here/_internal/resources/icons/avatar-app.svg"
if [ ! -x "$here/avatar-app" ] || [ ! -f "$icon" ]; then
    echo "Run this from the unpacked avatar-app folder (it sits beside the avatar-app program)." >&2
    exit 1
fi
data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/applications" "$data/icons/hicolor/scalable/apps"
cp "$icon" "$data/icons/hicolor/scalable/apps/avatar-app.svg"
# Quoted, so a folder with spaces in its path still starts.
sed "s|^Exec=.*|Exec=\"$here/avatar-app\"|" "$here/avatar-app.desktop" \
    >"$data/applications/avatar-app.desktop"
if command -v update-desktop-database >/dev/null; then
    update-desktop-database "$data/applications" || true
fi
echo "avatar-app is in your application menu (it may take a moment to appear)."
