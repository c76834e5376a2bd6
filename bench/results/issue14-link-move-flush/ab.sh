#!/bin/bash
# alternate base (83a6192: revalidator/purge at each move, /tmp/s10p-base) and new (/work/wt-s10p: the moved port's flows only)
kind=$1; n=$2
for i in $(seq 1 $n); do
  for v in base new; do
    if [ $v = base ]; then dir=/tmp/s10p-base; else dir=/work/wt-s10p; fi
    out=/tmp/s10p/$kind-$v-$i
    l0=$(cut -d' ' -f1-3 /proc/loadavg)
    (cd $dir && flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired --paired $kind --moves 20 --keep-dir --json $out.json > $out.log 2>&1)
    echo "$v $i rc=$? done $(date -u +%T) load before $l0 after $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/s10p/ab-progress.log
  done
done
