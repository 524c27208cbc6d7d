#!/usr/bin/env bash
# Sets up the "Avatar Camera" that avatar-app sends its picture to on Linux: the v4l2loopback
# kernel module, loaded now and at every boot, with the options call apps need, and the user in
# the `video` group. Explains each step and asks before each command that needs root.
#
#   setup-virtual-camera.sh            ask before each step
#   setup-virtual-camera.sh --yes      do every step without asking
#   setup-virtual-camera.sh --dry-run  print what it would do; change nothing
#
# Options given to the module, and why:
#   exclusive_caps=1            browsers (Meet in Chrome) list the camera only with this
#   card_label="Avatar Camera"  the name Zoom, Meet, Teams and OBS show
#   video_nr=N                  a fixed /dev/videoN (9, or the next free one below) that stays put
#                               across reboots, clear of real webcams
#   devices=1                   one camera
set -euo pipefail

LABEL="Avatar Camera"
MODULES_LOAD=/etc/modules-load.d/avatar-app-v4l2loopback.conf
MODPROBE_OPTIONS=/etc/modprobe.d/avatar-app-v4l2loopback.conf

assume_yes=0
dry_run=0
for arg in "$@"; do
    case "$arg" in
        -y | --yes) assume_yes=1 ;;
        -n | --dry-run) dry_run=1 ;;
        -h | --help)
            sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "Unknown option: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

if [ "$(uname -s)" != "Linux" ]; then
    echo "This script is for Linux. On Windows and macOS use OBS's virtual camera" \
        "(see packaging/README.md)." >&2
    exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
fi
# The user to add to the video group: the one who ran sudo, if any.
target_user="${SUDO_USER:-$(id -un)}"

say() {
    printf '\n%s\n' "$*"
}

# Asks whether to run what $1 describes; yes with --yes. Reads the answer from the terminal.
confirm() {
    [ "$assume_yes" -eq 1 ] && return 0
    local answer=""
    read -r -p "  Run: $1 ? [y/N] " answer || true
    case "$answer" in
        y | Y | yes | Yes) return 0 ;;
        *)
            echo "  Skipped."
            return 1
            ;;
    esac
}

# Runs a command as root after asking; in a dry run only prints it.
as_root() {
    local shown
    shown="$(printf '%q ' "${sudo_cmd[@]}" "$@")"
    shown="${shown% }"
    if [ "$dry_run" -eq 1 ]; then
        echo "  would run: $shown"
        return 0
    fi
    confirm "$shown" || return 1
    "${sudo_cmd[@]}" "$@"
}

# Writes stdin to a root-owned file, after asking; in a dry run only prints it.
write_root_file() {
    local path="$1" content
    content="$(cat)"
    if [ "$dry_run" -eq 1 ]; then
        echo "  would write $path:"
        printf '%s\n' "$content" | sed 's/^/    /'
        return 0
    fi
    echo "  $path will hold:"
    printf '%s\n' "$content" | sed 's/^/    /'
    confirm "${sudo_cmd[*]:+${sudo_cmd[*]} }tee $path" || return 1
    printf '%s\n' "$content" | "${sudo_cmd[@]}" tee "$path" >/dev/null
}

module_installed() {
    modinfo v4l2loopback >/dev/null 2>&1
}

module_loaded() {
    [ -d /sys/module/v4l2loopback ]
}

# The Avatar Camera's number if it exists already, else the first free /dev/videoN from 9
# down (Zoom misses devices numbered above about 10; webcams take the low numbers), else from
# 10 up.
free_video_nr() {
    local n name
    for name in /sys/devices/virtual/video4linux/video*/name; do
        if [ -r "$name" ] && [ "$(cat "$name")" = "$LABEL" ]; then
            n="${name%/name}"
            echo "${n##*/video}"
            return 0
        fi
    done
    for n in 9 8 7 6 5 4 3 2 $(seq 10 63); do
        if [ ! -e "/dev/video$n" ]; then
            echo "$n"
            return 0
        fi
    done
    echo "No free /dev/videoN between 2 and 63." >&2
    return 1
}

install_commands() {
    local kernel
    kernel="$(uname -r)"
    if command -v apt-get >/dev/null; then
        echo "apt-get install -y v4l2loopback-dkms linux-headers-$kernel"
    elif command -v dnf >/dev/null; then
        # Fedora ships it in RPM Fusion (free), which must be enabled first.
        echo "dnf install -y akmod-v4l2loopback"
    elif command -v pacman >/dev/null; then
        echo "pacman -S --needed --noconfirm v4l2loopback-dkms linux-headers"
    fi
}

step_install() {
    say "Step 1 of 4: install the v4l2loopback kernel module."
    if module_installed; then
        echo "  Already installed ($(modinfo -F version v4l2loopback 2>/dev/null || echo "version unknown"))."
        return 0
    fi
    local command
    command="$(install_commands)"
    if [ -z "$command" ]; then
        echo "  No apt-get, dnf or pacman here: install v4l2loopback with your package manager," \
            "then run this script again." >&2
        return 1
    fi
    echo "  It is built for your kernel ($(uname -r)) by DKMS/akmods, which can take a minute."
    if command -v apt-get >/dev/null; then
        as_root apt-get update || true
    fi
    # shellcheck disable=SC2086  # the command is a list of words
    as_root $command
}

step_load() {
    local video_nr="$1"
    say "Step 2 of 4: load the module now, as /dev/video$video_nr named \"$LABEL\"."
    if module_loaded; then
        echo "  v4l2loopback is loaded already; its options change only when it is reloaded."
        echo "  Reloading fails while an app uses one of its cameras: close them first."
        as_root modprobe -r v4l2loopback || return 1
    fi
    as_root modprobe v4l2loopback devices=1 "video_nr=$video_nr" "card_label=$LABEL" \
        exclusive_caps=1
}

step_persist() {
    local video_nr="$1"
    say "Step 3 of 4: load it the same way at every boot."
    echo "  $MODULES_LOAD loads the module; $MODPROBE_OPTIONS gives its options."
    write_root_file "$MODULES_LOAD" <<<"v4l2loopback"
    write_root_file "$MODPROBE_OPTIONS" <<EOF
# Written by avatar-app's setup-virtual-camera.sh; delete this file and
# $MODULES_LOAD to undo.
options v4l2loopback devices=1 video_nr=$video_nr card_label="$LABEL" exclusive_caps=1
EOF
}

step_group() {
    say "Step 4 of 4: let $target_user use video devices (the video group)."
    if id -nG "$target_user" 2>/dev/null | tr ' ' '\n' | grep -qx video; then
        echo "  $target_user is in the video group already."
        return 0
    fi
    as_root usermod -aG video "$target_user" || return 1
    echo "  Log out and back in for the new group to count."
}

main() {
    if [ "$dry_run" -eq 0 ] && [ "$assume_yes" -eq 0 ] && [ ! -t 0 ]; then
        echo "No terminal to ask on: run with --yes to do every step, or --dry-run to see them." >&2
        exit 2
    fi
    if [ "$dry_run" -eq 1 ]; then
        echo "Dry run: nothing is changed; each command is printed instead."
    fi
    local video_nr
    video_nr="$(free_video_nr)"
    local failed=0
    step_install || failed=1
    if [ "$failed" -eq 0 ]; then
        step_load "$video_nr" || failed=1
    fi
    step_persist "$video_nr" || failed=1
    step_group || failed=1
    if [ "$failed" -ne 0 ]; then
        say "Not every step was done. Run the script again to finish, or see packaging/README.md."
        exit 1
    fi
    if [ "$dry_run" -eq 1 ]; then
        say "Dry run finished: nothing was changed."
    else
        say "Done: \"$LABEL\" is /dev/video$video_nr. Start avatar-app and press Go live;" \
            "pick \"$LABEL\" as the camera in your call app."
    fi
}

main
