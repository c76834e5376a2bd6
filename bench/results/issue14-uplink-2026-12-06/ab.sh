#!/bin/bash
# ruff: noqa  (a measurement script kept as it was run)
# ab.sh N [FIRST]: pairs FIRST..N of `bench.handover_paired --paired seamless --moves 20`,
# alternating the code: base (main, in the worktree /work/wt-h14-base, the uplink held)
# and fix (this branch, /work/wt-h14: not held with a standing CHILD_SA); base first in
# odd pairs, fix first in even ones.  Each run from its worktree's root (its own
# controller package and compiled build), under the integration lock, --keep-dir; load
# average before and after each run in runs/progress.log.
set -u
here=/work/wt-h14/bench/results/issue14-uplink-2026-12-06
out=$here/runs; n=$1; first=${2:-1}
mkdir -p "$out"
declare -A tree=([base]=/work/wt-h14-base [fix]=/work/wt-h14)
for i in $(seq "$first" "$n"); do
    if (( i % 2 == 1 )); then order="base fix"; else order="fix base"; fi
    for side in $order; do
        cd "${tree[$side]}"
        echo "$(date -u +%T) $side $i start $(git rev-parse --short HEAD) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/progress.log"
        flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired \
            --paired seamless --moves 20 --keep-dir --no-plot \
            --json "$out/seamless-$side-$i.json" > "$out/seamless-$side-$i.log" 2>&1
        echo "$(date -u +%T) $side $i rc=$? load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/progress.log"
    done
done
