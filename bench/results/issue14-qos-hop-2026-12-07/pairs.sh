#!/bin/bash
# alternating seamless-smooth paired runs: before (4d7a89d, a worktree at /tmp/ab-before
# with its own compiled build) / after (this checkout: no QoS hop where there is none)
out=$(cd "$(dirname "$0")" && pwd)
for i in 1 2 3 4; do
  for arm in before after; do
    dir=/work/main; [[ $arm == before ]] && dir=/tmp/ab-before
    (cd $dir && flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired --paired seamless-smooth --moves 20 --no-plot --json $out/$i-$arm.json) > $out/$i-$arm.txt 2>&1
    echo "$i $arm rc=$? $(date +%T)"
  done
done
