# ruff: noqa  (a measurement script kept as it was run)
# before = /tmp/wt-base (d64ee02: baa1ad6's code, this benchmark's kernel-time column),
# after = /work/main (HEAD); alternating, 4 pairs; ../../registration-inits-2026-12-07/cpu.sh
OUT=${OUT:-/tmp/s15/res/cpu}
for r in ${PAIRS:-1 2 3 4}; do
 for lab in before after; do
  d=/work/main; [[ $lab == before ]] && d=/tmp/wt-base
  cd $d
  l0=$(cut -d' ' -f1 /proc/loadavg)
  .venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot --json $OUT/$lab-$r.json > $OUT/$lab-$r.log 2>&1
  echo "$lab $r load $l0 $(grep -o 'server [0-9.]* us (kernel [0-9.]* us)' $OUT/$lab-$r.log) $(grep -o '[0-9,]* registrations/s' $OUT/$lab-$r.log | head -1) $(grep -o '"mode": "[a-z]*' $OUT/$lab-$r.json | head -1)"
 done
done
