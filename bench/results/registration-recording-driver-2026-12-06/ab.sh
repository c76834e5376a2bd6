#!/bin/bash
# ab.sh: bench.registration alternating base (275d13c) and fix (edb32bb), same minutes
for rep in 1 2 3; do
for u in 10000 2000; do
  [ $u = 2000 ] && [ $rep = 3 ] && continue
  for side in base fix; do
    tree=/work/wt-s11base; [ $side = fix ] && tree=/work/wt-s11fix
    echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) $side users=$u rep=$rep" >> ab.log
    (cd $tree && timeout 600 .venv/bin/python -m bench.registration --users $u --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot --json /tmp/s11ab/$side-$u-$rep.json > /tmp/s11ab/$side-$u-$rep.log 2>&1)
  done
done; done
echo "$(date -u +%T) done" >> ab.log
