#!/bin/bash
# ab2.sh: open loop p99, product GC tuning (freeze, 10000/20/20) vs freeze + gc-threshold:700:10:10000, alternating
cd /work/main
for rep in 1 2; do
  for side in tuned small; do
    [ $rep = 2 ] && side=$([ $side = tuned ] && echo small || echo tuned)
    w=""; [ $side = small ] && w="--what-if gc-threshold:700:10:10000"
    echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) $side rep=$rep" >> /tmp/s11gc/ab2.log
    timeout 600 .venv/bin/python -m bench.registration --users 10000 --windows 8 --loads 500,800 --duration 4 --no-profile --no-reference --no-plot $w --json /tmp/s11gc/b-$side-$rep.json > /tmp/s11gc/b-$side-$rep.log 2>&1
  done
done
echo "$(date -u +%T) done load $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/s11gc/ab2.log
