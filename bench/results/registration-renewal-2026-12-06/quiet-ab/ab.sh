#!/bin/bash
# ab.sh: bench.registration, before = edb32bb (fake gateway fixed, renewals still call the drivers), after = c9a77cd (renewals keep their tunnels), alternating
for rep in 1 2 3 4; do
  for side in before after; do
    [ $((rep % 2)) = 0 ] && side=$([ $side = before ] && echo after || echo before)
    tree=/work/wt-s11fix; [ $side = after ] && tree=/work/main
    echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) $side rep=$rep" >> ab.log
    (cd $tree && timeout 600 .venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot --json /tmp/s11ab2/$side-$rep.json > /tmp/s11ab2/$side-$rep.log 2>&1)
  done
done
echo "$(date -u +%T) done load $(cut -d' ' -f1-3 /proc/loadavg)" >> ab.log
