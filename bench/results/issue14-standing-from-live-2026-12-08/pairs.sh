#!/bin/bash
# Alternating paired runs (KIND, default seamless-smooth), before / after, PAIRS pairs
# (default 4), into OUT (default: this folder): before = a worktree of the older
# revision at BEFORE (default /tmp/ab-before, with its own compiled build), after =
# this checkout.
#   [KIND=seamless] [PAIRS=3] bash pairs.sh [OUT]   (the issue14-*-2026-12-07 folders)
out=$(cd "${1:-$(dirname "$0")}" && pwd)
before=${BEFORE:-/tmp/ab-before}
here=$(cd "$(dirname "$0")/../../.." && pwd)
kind=${KIND:-seamless-smooth}
for i in $(seq 1 ${PAIRS:-4}); do
  for arm in before after; do
    dir=$here; [[ $arm == before ]] && dir=$before
    (cd $dir && flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired --paired $kind --moves 20 --no-plot --json $out/$i-$arm.json) > $out/$i-$arm.txt 2>&1
    echo "$i $arm rc=$? $(date +%T)"
  done
done
