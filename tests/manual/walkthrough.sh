#!/usr/bin/env bash
# The walk-through of docs/walkthrough.md in a real X window: Xvfb + xdotool + screenshots.
# Usage: tests/manual/walkthrough.sh OUT_DIR [SHARED_DATA]   (then LOOK at OUT_DIR/*.png)
# Needs Xvfb and xdotool. Coordinates are screen pixels of this version's layout in a
# 1600x1000 window; the user settings go to OUT_DIR/home, the demo slide is copied to OUT_DIR.
set -euo pipefail
OUT=$(realpath -m "$1"); DATA=${2:-$(dirname "$0")/../../../shared/data}
mkdir -p "$OUT/home" "$OUT/exports"
export DISPLAY=:99 HOME="$OUT/home" XDG_CONFIG_HOME="$OUT/home/.config" LOBULE_RUNTIME=torch
Xvfb :99 -screen 0 1600x1000x24 >/dev/null 2>&1 & XVFB=$!
sleep 2
cp "$(python -c 'from lobule.resources import DEMO_SLIDE; print(DEMO_SLIDE)')" "$OUT/"
lobule gui "$OUT/CMU-1-Small-Region.svs" >"$OUT/gui.log" 2>&1 & APP=$!
trap 'kill $APP $XVFB 2>/dev/null || true' EXIT
sleep 15
for w in $(xdotool search --name Lobule); do xdotool windowmove "$w" 0 0 windowsize "$w" 1600 1000 || true; done
click() { xdotool mousemove "$1" "$2" click 1; sleep "${3:-1}"; }
shot() { sleep "${2:-1}"; python -c "from PIL import ImageGrab; ImageGrab.grab(xdisplay=':99').save('$OUT/$1.png')"; }
drag() { xdotool mousemove "$1" "$2" mousedown 1; for i in $(seq 1 10); do xdotool mousemove $(($1 + ($3 - $1) * i / 10)) $(($2 + ($4 - $2) * i / 10)); sleep 0.05; done; xdotool mouseup 1; }
typepath() { sleep 2; xdotool type "$1"; xdotool key Return; }

shot 01_open
click 1339 234; shot 02_analysing 3                       # Analyze
shot 03_analysed 90                                       # ~30 s on an idle 2-core CPU
click 1320 339; click 1442 365; xdotool key End; shot 04_opacity_100   # Classes tab, opacity 100 %
click 1245 339; click 70 89; drag 553 484 737 645; shot 05_region 5    # Numbers, Rect, draw
click 264 89; click 665 89; click 645 121; click 824 89; xdotool key ctrl+a; xdotool type 60; xdotool key Return
drag 576 553 744 584; shot 06_brush 2; shot 07_brush_numbers 20   # hydropic stroke
click 903 89; shot 08_undo 2; click 951 89; shot 09_redo 2
click 1320 339; click 1220 461; shot 10_untick_parenchyma 2; click 1220 461
click 20 8; click 84 97; typepath "$OUT/exports/new/sub"; shot 11_exporting 3; shot 12_exported 120                   # an export takes 20-70 s on a 2-core CPU
click 20 8; click 84 97; typepath "$OUT/exports/new/sub"; shot 13_replace_question 2; xdotool key Escape
click 76 31; click 1400 73; typepath "$DATA/ffa_nonperfusion/p02-1_016/image.jpg"; shot 14_ffa 3
click 1357 409; shot 15_ffa_segmented 15
click 1400 653; typepath "$DATA/ffa_nonperfusion/p02-1_016/label.png"; shot 16_ffa_truth 8
click 132 31; shot 17_mri_empty 2; click 1333 101; typepath "$DATA/chaos_t2_mri/image_1.nii.gz"; shot 18_mri 4
xdotool mousemove 622 484 click 5 click 5; shot 19_wheel 1; xdotool keydown ctrl click 4 keyup ctrl; shot 20_ctrl_wheel 1
click 1516 306; click 1360 370                             # Fit, Brush: a closed outline around the liver
python - <<'PY'
import math, subprocess, time
pts = [(334 + 86 * math.cos(t), 438 + 121 * math.sin(t)) for t in (2 * math.pi * i / 48 for i in range(50))]
subprocess.run(["xdotool", "mousemove", str(round(pts[0][0])), str(round(pts[0][1])), "mousedown", "1"])
for x, y in pts[1:]:
    subprocess.run(["xdotool", "mousemove", str(round(x)), str(round(y))]); time.sleep(0.03)
subprocess.run(["xdotool", "mouseup", "1"])
PY
shot 21_outline 2; click 1368 624; shot 22_mri_result 40
xdotool key ctrl+q; shot 23_quit_question 2
