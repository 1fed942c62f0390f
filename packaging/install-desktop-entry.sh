#!/usr/bin/env bash
# Add Lobule to the desktop menu of the current user: run it from the unpacked lobule/ folder.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
ICONS="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
mkdir -p "$APPS" "$ICONS"
install -m 644 "$HERE/lobule.png" "$ICONS/lobule.png"
sed "s|^Exec=lobule|Exec=\"$HERE/lobule\"|" "$HERE/lobule.desktop" > "$APPS/lobule.desktop"
echo "installed $APPS/lobule.desktop"
