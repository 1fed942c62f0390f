#!/usr/bin/env bash
# Smoke check of the frozen app (packaging/build.sh first) in a clean environment: no virtual
# environment, no PYTHONPATH, a minimal PATH and HOME in a temporary folder.
#   packaging/smoke.sh [APP_FOLDER]      (default dist/lobule)
# Checks: `lobule --version` matches pyproject.toml; `lobule view DEMO --screenshot` shows tissue;
# `lobule analyze DEMO` writes the four export files. Prints the folder size and timings; the
# screenshot and the analysis stay in $SMOKE_OUT (default dist/smoke) for a look.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="$(cd "${1:-$REPO/dist/lobule}" && pwd)"
OUT="${SMOKE_OUT:-$REPO/dist/smoke}"
EXE="$APP/lobule"
DEMO="$APP/_internal/lobule/resources/demo/CMU-1-Small-Region.svs"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
rm -rf "$OUT" && mkdir -p "$OUT" "$TMP/home"

clean() {  # run the frozen app as on a machine without Lobule's Python environment
    env -i PATH=/usr/bin:/bin HOME="$TMP/home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "$@"
}
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }

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
clean "$EXE" view "$DEMO" --screenshot "$OUT/view.png" > /dev/null || fail "lobule view failed"
t1=$(seconds)
python3 "$REPO/packaging/png_check.py" "$OUT/view.png" || fail "the screenshot shows no tissue"
echo "view: $(elapsed "$t0" "$t1") s"

t0=$(seconds)
clean "$EXE" analyze "$DEMO" --out "$OUT/analysis" > "$OUT/analyze.txt" 2>&1 || { cat "$OUT/analyze.txt"; fail "lobule analyze failed"; }
t1=$(seconds)
for f in summary.json regions.csv classes.geojson labels.tif; do
    [ -s "$OUT/analysis/$f" ] || fail "analyze did not write $f"
done
echo "analyze: $(elapsed "$t0" "$t1") s; $(tail -1 "$OUT/analyze.txt")"
echo "app folder: $(du -sh "$APP" | cut -f1); results in $OUT"
echo "SMOKE OK"
