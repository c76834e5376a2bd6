#!/bin/bash
OUT=${OUT:-/tmp/s10cg/ab1}   # where the JSONs and logs go (ab/ here); before = /work/main, after = /work/wt-s10
for r in 1 2 3 4 5; do
 for lab in base worker; do
  d=/work/main; [[ $lab == worker ]] && d=/work/wt-s10
  cd $d
  l0=$(cut -d' ' -f1 /proc/loadavg)
  .venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot --json $OUT/$lab-$r.json > $OUT/$lab-$r.log 2>&1
  echo "$lab $r load $l0 $(grep -o 'server [0-9.]* us' $OUT/$lab-$r.log) $(grep -o "by thread: .*" $OUT/$lab-$r.log) $(grep -o 'server: .*mode.: .[a-z]*' $OUT/$lab-$r.log)"
 done
done
