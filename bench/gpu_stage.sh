#!/usr/bin/env bash
# Run HERE, around a device call of issue 37's check: the device tool sends at most 64 MiB of
# working tree (tracked and untracked-not-ignored files, carried paths) and weights/ alone is
# ~290 MB. `aside` moves what the check does not read (every shipped checkpoint but the ones
# bench/gpu_check.py's MODELS names, the stored detections, the screenshots, the foreign code bases'
# test fixtures) out of the checkout,
# into $ASIDE (default /tmp/gpu-aside), copies the BCCD data set (8.5 MB; the ../shared beside the
# checkout does not travel) into the ignored .bccd/ for the GPU tests, and prints what would
# travel; `back` puts it all back and removes .bccd.
#   bash bench/gpu_wheels.sh && bash bench/gpu_stage.sh aside
#   device: run(command="bash bench/gpu_check.sh", carry=[".whl", ".bccd"], timeout_s=540)
#   bash bench/gpu_stage.sh back
set -euo pipefail
cd "$(dirname "$0")/.."
ASIDE="${ASIDE:-/tmp/gpu-aside}"
LIMIT=$((64 * 1024 * 1024))
FOREIGN="yolov5 yolox ultralytics"  # fixtures of the loader's tests, not the GPU tests'
BCCD="${ATTENTION_LENS_BCCD:-../shared/datasets/bccd}/BCCD"

travels() {  # bytes the device tool would send: present tracked + untracked-not-ignored files, and .whl
  local tree carried
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
  carried=$(du -scb .whl .bccd 2>/dev/null | tail -1 | cut -f1); echo $((tree + ${carried:-0}))
}

case "${1:-}" in
  aside)
    [ -e "$ASIDE" ] && { echo "$ASIDE exists: run 'back' first (or remove it)" >&2; exit 1; }
    keep=$(python3 -c "import sys; sys.path.insert(0, '.'); from bench.gpu_check import MODELS; print(' '.join(MODELS))")
    mkdir -p "$ASIDE/weights" "$ASIDE/docs" "$ASIDE/fixtures"
    for d in weights/*/; do
      name=$(basename "$d")
      case " $keep " in *" $name "*) ;; *) mv "$d" "$ASIDE/weights/$name" ;; esac
    done
    mv docs/screenshots "$ASIDE/docs/screenshots"
    for f in $FOREIGN; do mv "tests/fixtures/$f" "$ASIDE/fixtures/$f"; done
    grep -qx '/.bccd/' .git/info/exclude 2>/dev/null || echo '/.bccd/' >> .git/info/exclude
    mkdir -p .bccd && cp -r "$BCCD" .bccd/BCCD
    size=$(travels)
    echo "kept: $keep; would travel: $((size / 1024 / 1024)) MiB of 64"
    [ "$size" -lt "$LIMIT" ] || { echo "still over the device tool's limit" >&2; exit 1; }
    ;;
  back)
    [ -d "$ASIDE" ] || { echo "nothing set aside at $ASIDE" >&2; exit 1; }
    for d in "$ASIDE"/weights/*/; do mv "$d" "weights/$(basename "$d")"; done
    mv "$ASIDE/docs/screenshots" docs/screenshots
    for f in $FOREIGN; do mv "$ASIDE/fixtures/$f" "tests/fixtures/$f"; done
    rm -rf "$ASIDE" .bccd
    git status --short -- weights docs | head -5
    ;;
  *) echo "usage: bash bench/gpu_stage.sh aside|back" >&2; exit 2 ;;
esac
