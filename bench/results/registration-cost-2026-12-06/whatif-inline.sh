#!/bin/bash
OUT=${OUT:-/tmp/s10cg/wi}   # where the JSONs and logs go (whatif-inline/ here)
cd /work/main
for r in 1 2 3; do
 for lab in base inline; do
  wi=""; [[ $lab == inline ]] && wi="--what-if inline-gateways"
  l0=$(cut -d' ' -f1 /proc/loadavg)
  .venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot $wi --json $OUT/$lab-$r.json > $OUT/$lab-$r.log 2>&1
  echo "$lab $r load $l0 $(grep -o 'server [0-9.]* us' $OUT/$lab-$r.log) $(grep -o "by thread: .*" $OUT/$lab-$r.log)"
 done
done
