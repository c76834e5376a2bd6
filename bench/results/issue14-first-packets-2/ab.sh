#!/bin/bash
# alternate base (main 3df1849, /tmp/h14g-base) and new (/work/wt-h14g), each run under the lock
kind=$1; n=$2; tag=$3
for i in $(seq 1 $n); do
  for v in base new; do
    if [ $v = base ]; then dir=/tmp/h14g-base; else dir=/work/wt-h14g; fi
    out=/tmp/h14g/$tag-$kind-$v-$i
    (cd $dir && flock /tmp/mipvpn-integration.lock /work/wt-h14g/.venv/bin/python -m bench.handover_paired --paired $kind --moves 20 --keep-dir --json $out.json > $out.log 2>&1)
    echo "$v $i done $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/h14g/ab-progress.log
  done
done
