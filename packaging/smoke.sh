#!/usr/bin/env bash
# Smoke check of the frozen app (packaging/build.sh first) in a clean environment: no virtual
# environment, no PYTHONPATH, a minimal PATH and HOME in a temporary folder.
#   packaging/smoke.sh [APP_FOLDER]      (default dist/lobule)
# Checks: `lobule --version` matches pyproject.toml; `lobule view DEMO --screenshot` shows tissue;
# with Xvfb and xdotool, the GUI (`lobule gui DEMO` on a virtual X11 display, no offscreen platform)
# opens a window showing the slide; `lobule analyze DEMO` writes the four export files; the view
# then shows the saved analysis as an overlay. Prints the folder size and timings; screenshots and
# the analysis stay in $SMOKE_OUT (default dist/smoke) for a look.
# Screenshots of the X11 display and of the terminal (models.png, analyze.png) need a python3 with
# Pillow (and pyte for the terminal) on PATH, e.g. the build environment; without them those
# pictures are skipped, not the checks.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="$(cd "${1:-$REPO/dist/lobule}" && pwd)"
OUT="${SMOKE_OUT:-$REPO/dist/smoke}"
EXE="$APP/lobule"
DEMO="$APP/_internal/lobule/resources/demo/CMU-1-Small-Region.svs"
TMP="$(mktemp -d)"
trap 'kill $(jobs -p) 2> /dev/null || true; rm -rf "$TMP"' EXIT
rm -rf "$OUT" && mkdir -p "$OUT" "$TMP/home"

clean() {  # run the frozen app as on a machine without Lobule's Python environment
    env -i PATH=/usr/bin:/bin HOME="$TMP/home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "$@"
}
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
no_traceback() {  # a Python traceback in a log (e.g. from a Qt slot, which does not stop the app) fails the check
    if grep -q "^Traceback" "$1"; then grep -A30 "^Traceback" "$1" | tail -8; fail "a traceback in $1"; fi
}

gui_check() {  # the desktop app on a virtual X11 display: first window time and a screenshot
    if ! command -v Xvfb > /dev/null || ! command -v xdotool > /dev/null; then
        echo "gui: skipped (needs Xvfb and xdotool)"
        return 0
    fi
    Xvfb -displayfd 5 -screen 0 1600x1000x24 -nolisten tcp 5> "$TMP/display" 2> "$TMP/xvfb.log" &
    local xvfb=$! app waited=0 display t0 t1 t2 window
    while [ ! -s "$TMP/display" ] && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    [ -s "$TMP/display" ] || { kill "$xvfb"; fail "Xvfb did not start: $(tail -1 "$TMP/xvfb.log")"; }
    display=":$(cat "$TMP/display")"
    t0=$(seconds)
    env -i PATH=/usr/bin:/bin HOME="$TMP/home" LANG=C.UTF-8 DISPLAY="$display" "$EXE" gui "$DEMO" \
        > "$OUT/gui.log" 2>&1 &
    app=$!
    window=""
    for _ in $(seq 600); do  # up to 60 s for the main window
        window="$(DISPLAY="$display" xdotool search --onlyvisible --name 'Lobule$' 2> /dev/null | head -1)" || true
        [ -n "$window" ] && break
        kill -0 "$app" 2> /dev/null || break
        sleep 0.1
    done
    t1=$(seconds)
    if [ -z "$window" ]; then
        kill "$app" "$xvfb" 2> /dev/null; cat "$OUT/gui.log"; fail "the GUI opened no window"
    fi
    for _ in $(seq 600); do  # up to 60 s until the title names the demo slide
        DISPLAY="$display" xdotool getwindowname "$window" 2> /dev/null | grep -q "CMU-1-Small-Region" && break
        sleep 0.1
    done
    t2=$(seconds)
    DISPLAY="$display" xdotool getwindowname "$window" | grep -q "CMU-1-Small-Region" \
        || { kill "$app" "$xvfb"; cat "$OUT/gui.log"; fail "the GUI did not open the demo slide"; }
    local shot="skipped (no python3 with Pillow)"
    if python3 -c "import PIL.ImageGrab" 2> /dev/null; then
        for _ in $(seq 30); do  # tiles load off the GUI thread: up to 30 s until tissue shows
            sleep 1
            python3 -c "import sys; from PIL import ImageGrab
x, y, w, h = (int(v) for v in sys.argv[3:])
ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=sys.argv[1]).save(sys.argv[2])" \
                "$display" "$OUT/gui.png" $(DISPLAY="$display" xdotool getwindowgeometry --shell "$window" \
                | sed -n 's/^[XYWIDTHEG]*=//p' | head -4)
            python3 "$REPO/packaging/png_check.py" "$OUT/gui.png" > /dev/null && break
        done
        python3 "$REPO/packaging/png_check.py" "$OUT/gui.png" || { kill "$app" "$xvfb"; fail "the GUI window shows no tissue"; }
        shot="$OUT/gui.png"
    fi
    kill "$app" 2> /dev/null; wait "$app" 2> /dev/null || true
    kill "$xvfb" 2> /dev/null; wait "$xvfb" 2> /dev/null || true
    no_traceback "$OUT/gui.log"
    echo "gui: first window $(elapsed "$t0" "$t1") s, demo slide open $(elapsed "$t0" "$t2") s; screenshot $shot"
}

[ -x "$EXE" ] || fail "no executable $EXE (run packaging/build.sh)"
[ -f "$DEMO" ] || fail "the demo slide is not bundled ($DEMO)"
expected="lobule $(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1)"

t0=$(seconds); got="$(clean "$EXE" --version)"; t1=$(seconds)
[ "$got" = "$expected" ] || fail "--version printed '$got', expected '$expected'"
clean "$EXE" --version > /dev/null; t2=$(seconds)
echo "version: $got (cold start $(elapsed "$t0" "$t1") s, warm $(elapsed "$t1" "$t2") s)"

clean "$EXE" --version --verbose > "$OUT/version.txt"
grep -q "frozen app" "$OUT/version.txt" || fail "--version --verbose does not say it is the frozen app"
clean "$EXE" models > "$OUT/models.txt"
grep -q "^liver-hne " "$OUT/models.txt" || fail "lobule models does not list the bundled liver-hne"

t0=$(seconds)
clean "$EXE" view "$DEMO" --screenshot "$OUT/view.png" > "$OUT/view.log" 2>&1 || { cat "$OUT/view.log"; fail "lobule view failed"; }
no_traceback "$OUT/view.log"
t1=$(seconds)
python3 "$REPO/packaging/png_check.py" "$OUT/view.png" || fail "the screenshot shows no tissue"
echo "view: $(elapsed "$t0" "$t1") s"

gui_check

# analyze in a terminal (progress bars as a user sees them) when the screen can be captured
t0=$(seconds)
if python3 -c "import pyte, PIL" 2> /dev/null; then
    python3 "$REPO/packaging/term_png.py" --size 110x24 --out "$OUT/analyze.png" --text "$OUT/analyze.txt" \
        --mid "$OUT/analyze-progress.png" --mid-when ETA -- env -i PATH=/usr/bin:/bin HOME="$TMP/home" LANG=C.UTF-8 \
        TERM=xterm-256color "$EXE" analyze "$DEMO" --out "$OUT/analysis" || { cat "$OUT/analyze.txt"; fail "lobule analyze failed"; }
    python3 "$REPO/packaging/term_png.py" --size 110x14 --out "$OUT/models.png" -- env -i PATH=/usr/bin:/bin \
        HOME="$TMP/home" LANG=C.UTF-8 TERM=xterm-256color "$EXE" models > /dev/null
else
    clean "$EXE" analyze "$DEMO" --out "$OUT/analysis" > "$OUT/analyze.txt" 2>&1 || { cat "$OUT/analyze.txt"; fail "lobule analyze failed"; }
fi
t1=$(seconds)
for f in summary.json regions.csv classes.geojson labels.tif; do
    [ -s "$OUT/analysis/$f" ] || fail "analyze did not write $f"
done
no_traceback "$OUT/analyze.txt"
# a fast runtime that fails in the frozen app is a missing library (the same run works from Python)
if grep -q "falling back" "$OUT/analyze.txt"; then grep "falling back" "$OUT/analyze.txt"; fail "analyze fell back to another runtime"; fi
echo "analyze: $(elapsed "$t0" "$t1") s; $(grep -v '^$' "$OUT/analyze.txt" | tail -1)"

# the slide opened again shows the saved analysis (kept in the cache folder under HOME)
clean "$EXE" view "$DEMO" --screenshot "$OUT/overlay.png" > "$OUT/overlay.log" 2>&1 \
    || { cat "$OUT/overlay.log"; fail "lobule view after analyze failed"; }
no_traceback "$OUT/overlay.log"
python3 "$REPO/packaging/png_check.py" "$OUT/overlay.png" --overlay "$OUT/view.png" || fail "the view shows no class overlay"
echo "app folder: $(du -sh "$APP" | cut -f1); results in $OUT"
echo "SMOKE OK"
