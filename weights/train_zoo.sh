#!/usr/bin/env bash
# Reproduce the shipped zoo: BCCD through voc2yolo, yolov8n from scratch, one protocol for all.
# Usage: bash weights/train_zoo.sh [WORKDIR]   (runs land in WORKDIR/runs; default /tmp/attention-lens-zoo)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/attention-lens-zoo}
data="$work/bccd-yolo/data.yaml"
[ -f "$data" ] || python -m components voc2yolo ../shared/datasets/bccd/BCCD "$work/bccd-yolo"
common=(--data "$data" --epochs 60 --imgsz 320 --batch 16 --project "$work/runs")
run() { [ -f "$work/runs/$1/summary.json" ] || python -m components train "${common[@]}" --name "$@"; }
run yolov8n-baseline-s0 --base yolov8n --seed 0
for att in EMA CoordAtt; do
  run "yolov8n-${att,,}-neck-s0" --base yolov8n --attention "$att" --placement neck_outputs --seed 0
done
# The baseline's seed-to-seed spread is what every difference is judged against: train it early.
run yolov8n-baseline-s1 --base yolov8n --seed 1
run yolov8n-baseline-s2 --base yolov8n --seed 2
for att in PolarizedSA SE CBAM ECA; do
  run "yolov8n-${att,,}-neck-s0" --base yolov8n --attention "$att" --placement neck_outputs --seed 0
done
# Issue 18, in its order: more seeds for the two largest Δ first (EMA, CBAM), then the tutorials' bases.
for s in 1 2; do for att in EMA CBAM; do
  run "yolov8n-${att,,}-neck-s$s" --base yolov8n --attention "$att" --placement neck_outputs --seed $s
done; done
