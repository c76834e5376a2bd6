#!/bin/bash
# ab.sh: bench.registration open loop, product GC tuning vs --what-if no-gc-tuning, alternating
cd /work/main
for rep in 1 2; do
  for side in tuned untuned; do
    [ $rep = 2 ] && side=$([ $side = tuned ] && echo untuned || echo tuned)
    w=""; [ $side = untuned ] && w="--what-if no-gc-tuning"
    echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) $side rep=$rep" >> /tmp/s11gc/ab.log
    timeout 600 .venv/bin/python -m bench.registration --users 10000 --windows 8 --loads 500,800 --duration 4 --no-profile --no-reference --no-plot $w --json /tmp/s11gc/$side-$rep.json > /tmp/s11gc/$side-$rep.log 2>&1
  done
done
echo "$(date -u +%T) done load $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/s11gc/ab.log
