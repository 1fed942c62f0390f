#!/usr/bin/env bash
# Build the one-folder desktop app with PyInstaller: dist/lobule/ (executable dist/lobule/lobule)
# and the artefact dist/lobule-VERSION-linux-x86_64.tar.gz.
#
# Needs a Python with Lobule's dependencies and the `packaging` extra installed:
#   pip install -c constraints.txt -e '.[packaging]'
# Usage: packaging/build.sh  (from anywhere; run it with `nice -n 10` on a shared machine)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python}"
WORK=build/pyinstaller
SITE="$WORK/site"

start=$(date +%s)
# A plain (non-editable) install of the lobule package alone, so the build does not depend on
# how the developer installed it; the dependencies come from the current environment.
rm -rf "$SITE"
"$PYTHON" -m pip install --quiet --no-deps --target "$SITE" .
VERSION="$(PYTHONPATH="$SITE" "$PYTHON" -c 'from importlib.metadata import version; print(version("lobule"))')"

PYTHONPATH="$SITE" "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath "$WORK/work" packaging/lobule.spec

# Desktop integration beside the executable: the .desktop entry and its icon.
install -m 644 packaging/lobule.desktop dist/lobule/lobule.desktop
install -m 644 resources/icons/lobule.png dist/lobule/lobule.png
install -m 755 packaging/install-desktop-entry.sh dist/lobule/install-desktop-entry.sh

ARCHIVE="dist/lobule-${VERSION}-linux-$(uname -m).tar.gz"
tar -C dist -czf "$ARCHIVE" lobule
end=$(date +%s)
echo "built dist/lobule ($(du -sh dist/lobule | cut -f1)) and $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)) in $((end - start)) s"
