#!/bin/bash
# ab.sh KIND N: N pairs of bench.handover_paired --paired KIND, alternating the link
# models (carrier, replug; the order swaps each pair), each run under the integration
# lock, --keep-dir; load average noted before and after each run.
set -u
cd "$(dirname "$0")/../../.."
kind=$1; n=$2; out=bench/results/issue14-carrier-link/runs
mkdir -p "$out"
for i in $(seq 1 "$n"); do
    if (( i % 2 == 1 )); then order="carrier replug"; else order="replug carrier"; fi
    for model in $order; do
        echo "$(date -u +%T) $kind $model $i start load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/progress.log"
        flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired \
            --paired "$kind" --moves 20 --keep-dir --link-model "$model" --no-plot \
            --json "$out/$kind-$model-$i.json" > "$out/$kind-$model-$i.log" 2>&1
        echo "$(date -u +%T) $kind $model $i rc=$? load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/progress.log"
    done
done
