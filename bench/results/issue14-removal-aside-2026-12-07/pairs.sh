#!/bin/bash
# Alternating seamless-smooth paired runs, before / after, 4 pairs, into OUT (default:
# this folder): before = a worktree of the older revision at BEFORE (default
# /tmp/ab-before, with its own compiled build), after = this checkout.
#   bash pairs.sh [OUT]        (the issue14-*-2026-12-07 folders of the evening)
out=$(cd "${1:-$(dirname "$0")}" && pwd)
before=${BEFORE:-/tmp/ab-before}
here=$(cd "$(dirname "$0")/../../.." && pwd)
for i in 1 2 3 4; do
  for arm in before after; do
    dir=$here; [[ $arm == before ]] && dir=$before
    (cd $dir && flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired --paired seamless-smooth --moves 20 --no-plot --json $out/$i-$arm.json) > $out/$i-$arm.txt 2>&1
    echo "$i $arm rc=$? $(date +%T)"
  done
done
