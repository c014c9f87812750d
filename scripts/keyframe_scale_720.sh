#!/bin/bash
# keyframes at a smaller scale at 1280x720: is a fresher, smaller keyframe better than an older full-size one?
cd "$(dirname "$0")/.."
CLIP=${1:-/tmp/kf/clips/person63_720.avi}  # a 1280x720 clip; R holds its ideal/, on/, off/ (scripts/live_compare.py)
for STYLE in 7 3; do
  R=/tmp/kf/runs/p63-720-$STYLE
  for X in 0.5 0.625; do
    D=/tmp/kf/runs/p63-720-$STYLE-ms$X; rm -rf $D; mkdir -p $D
    .venv/bin/stylecam stylize $CLIP /tmp/kf/warm$X/ --live --style $STYLE -q --size 1280x720 --max-scale $X > /dev/null 2>&1  # warm the cache
    .venv/bin/stylecam stylize $CLIP $D/on/ --live --style $STYLE -q --size 1280x720 --max-scale $X > /dev/null
    .venv/bin/python scripts/live_compare.py $CLIP $R/ideal $D/on $R/on $R/off --size 1280x720 --skip 60 --json $D/compare.json > /dev/null
    python3 -c "
import json; d=json.load(open('$D/compare.json'))
for r in d: print('$STYLE', '$X', r['live'].split('/')[-2:], r['psnr_db'], r['blurred_l1'], r['worst5_tiles_l1'], r['warp_error'], r['keyframe_age_ms_median'], r['repeats'])"
  done
done
