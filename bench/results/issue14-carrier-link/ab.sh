#!/bin/bash
# ab.sh KIND N [FIRST]: pairs FIRST..N (FIRST defaults to 1) of bench.handover_paired
# --paired KIND, alternating the link models (carrier then replug in odd pairs, replug
# then carrier in even ones), each run under the integration lock, --keep-dir; load
# average noted before and after each run (runs/progress.log).
set -u
cd "$(dirname "$0")/../../.."
kind=$1; n=$2; first=${3:-1}; out=bench/results/issue14-carrier-link/runs
mkdir -p "$out"
for i in $(seq "$first" "$n"); do
    if (( i % 2 == 1 )); then order="carrier replug"; else order="replug carrier"; fi
    for model in $order; do
        echo "$(date -u +%T) $kind $model $i start load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/progress.log"
        flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired \
            --paired "$kind" --moves 20 --keep-dir --link-model "$model" --no-plot \
            --json "$out/$kind-$model-$i.json" > "$out/$kind-$model-$i.log" 2>&1
        echo "$(date -u +%T) $kind $model $i rc=$? load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/progress.log"
    done
done
